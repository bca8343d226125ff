"""Duplicate check and mutual recognition (互认) of an ordered item, and the regulator's figures.

:class:`Recognition` (per person): when an order's standard items are resolved (``ExamItemsResolved``), each item
is checked against the person's earlier exams under the rule version in force on the order's local date; every
earlier exam that passes becomes a ``DuplicateFound``. ``RecognitionDecided`` records the doctor's answer;
accepting marks the order item "HR" (已互认). :class:`RecognitionStats` counts per hospital, item and month.
"""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from schemas.envelope import Envelope
from schemas.events import DuplicateFound
from schemas.hospitals import HospitalDirectory, default_hospitals
from schemas.recognition_rules import RuleSet, default_rules
from streams.processors import person_exams as px
from streams.processors.base import Processor, ViewTable
from streams.processors.history import metadata

HR_MARK, HR_LABEL = "HR", "已互认"
#: Events that can make an earlier exam recognisable for an order already checked and still open.
RECHECK = frozenset({"StudyReceived", "StudyCompleted", "ReportFinalized", "ReportAmended", "QCScored",
                     "PersonHistoryMerged"})

order_items = sa.Table(
    "order_items",
    metadata,
    sa.Column("person_key", sa.String(80), primary_key=True),
    sa.Column("hospital", sa.String(32), primary_key=True),
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("standard_item", sa.String(64), primary_key=True),
    sa.Column("ordered_at", sa.String(40)),
    sa.Column("local_item_name", sa.String(256)),
    sa.Column("rule_version", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),  # see Recognition.item_status
    sa.Column("mark", sa.String(8)),
    sa.Column("label", sa.String(16)),
    sa.Column("exception", sa.String(32)),
    sa.Column("candidate_count", sa.Integer, nullable=False),
    sa.Column("candidates", sa.Text, nullable=False),  # JSON list, newest first
    sa.Column("decisions", sa.Text, nullable=False),  # JSON list of the doctor's answers, in order
    sa.Index("ix_order_items_order", "hospital", "order_id"),
)

#: One row per order item that had candidates or a decision, per local month of the events: the statistics
#: (:func:`recognition_statistics`) are sums over these rows. Per order item rather than one running total per
#: hospital, item and month, whose state had to remember every order of the month and grew with each one.
recognition_outcomes = sa.Table(
    "recognition_outcomes",
    metadata,
    sa.Column("hospital", sa.String(32), primary_key=True),
    sa.Column("standard_item", sa.String(64), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("person_key", sa.String(80), primary_key=True),
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("candidates", sa.Integer, nullable=False),  # 0 when only a decision fell in this month
    sa.Column("decision", sa.String(16)),  # accepted if any candidate's last answer was; NULL while undecided
)

recognition_outcome_reasons = sa.Table(
    "recognition_outcome_reasons",
    metadata,
    sa.Column("hospital", sa.String(32), primary_key=True),
    sa.Column("standard_item", sa.String(64), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("person_key", sa.String(80), primary_key=True),
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("reason_code", sa.String(64), primary_key=True),
)

STAT_KEYS = ("hospital", "standard_item", "month")


def recognition_statistics(conn: sa.Connection, **filters: str | None) -> tuple[list[dict], list[dict]]:
    """Per ordering hospital, standard item and month: duplicates found (order items with a candidate),
    candidates, decided, accepted (= duplicates avoided), declined, the rate; and the refusal reasons' counts."""
    o, r = recognition_outcomes, recognition_outcome_reasons
    decided = sa.func.sum(sa.case((o.c.decision.is_not(None), 1), else_=0))
    accepted = sa.func.sum(sa.case((o.c.decision == "accepted", 1), else_=0))
    q = sa.select(*(o.c[k] for k in STAT_KEYS),
                  sa.func.sum(sa.case((o.c.candidates > 0, 1), else_=0)).label("duplicates_found"),
                  sa.func.sum(o.c.candidates).label("candidates"), decided.label("decided"),
                  accepted.label("accepted"),
                  sa.func.sum(sa.case((o.c.decision == "declined", 1), else_=0)).label("declined"))
    q2 = sa.select(*(r.c[k] for k in STAT_KEYS), r.c.reason_code, sa.func.count().label("count"))
    for column, value in filters.items():
        if value:
            q, q2 = q.where(o.c[column] == value), q2.where(r.c[column] == value)
    q = q.group_by(*(o.c[k] for k in STAT_KEYS)).order_by(*(o.c[k] for k in STAT_KEYS))
    q2 = q2.group_by(*(r.c[k] for k in STAT_KEYS), r.c.reason_code).order_by(
        *(r.c[k] for k in STAT_KEYS), r.c.reason_code)
    rows = []
    for row in conn.execute(q).mappings():
        row = {k: int(v) if k not in STAT_KEYS else v for k, v in row.items()}
        row["recognition_rate"] = round(row["accepted"] / row["decided"], 4) if row["decided"] else None
        rows.append(row)
    return rows, [{**row, "count": int(row["count"])} for row in conn.execute(q2).mappings()]


class Recognition(Processor[dict[str, Any]]):
    name = "recognition"
    handles = px.FOLDED | {"DuplicateFound", "RecognitionDecided"}
    views = (ViewTable(order_items, ("person_key",)),)

    def __init__(self, rules: RuleSet | None = None, hospitals: HospitalDirectory | None = None) -> None:
        self.rules = rules or default_rules()
        self.hospitals = hospitals or default_hospitals()

    def initial(self) -> dict[str, Any]:
        return {**px.initial(), "orders": {}}

    # ------------------------------------------------------------------ deciding

    def check(self, state: dict[str, Any], exam_id: str, fallback_at: datetime) -> dict[str, Any] | None:
        """The duplicate check of one order: rule version, exception, and per item its candidates' exam ids."""
        exam = state["exams"].get(exam_id)
        if exam is None or not exam["order_id"] or exam["status"] != "ordered" or not exam["standard_items"]:
            return None
        at = datetime.fromisoformat(exam["ordered_at"]) if exam["ordered_at"] else fallback_at
        day = px.local_day(at)
        rules = self.rules.at(day)
        if rules is None:
            return None
        order = px.OrderContext(exam["hospital"], day, exam["patient_class"], px.age_at(state, day))
        skipped = rules.skipped_by(order.patient_class, order.age_years)
        found: dict[str, list[str]] = {}
        for item in exam["standard_items"]:
            found[item] = [] if skipped else [
                other_id for other_id, other in sorted(state["exams"].items())
                if other_id != exam_id and not px.problems(other, item, order, rules, self.hospitals)
            ]
        return {"rule_version": rules.version, "exception": skipped.code if skipped else None, "day": day,
                "items": found}

    def _rechecked(self, state: dict[str, Any], event: Envelope) -> list[tuple[str, dict[str, Any]]]:
        """The checks an event can change, run on the state after it: the order whose items it resolves, and every
        order already checked and not yet performed when it brings a study, a report, a grade or linked exams."""
        ids = [i for i, order in state["orders"].items() if order.get("rule_version")] if event.type in RECHECK else []
        if event.type == "ExamItemsResolved" and (target := px.find_exam(state, event.payload)):
            ids.append(target)
        out = []
        for exam_id in dict.fromkeys(ids):
            result = self.check(state, exam_id, event.occurred_at)
            if result is not None:
                out.append((exam_id, result))
        return out

    def decide(self, state: dict[str, Any], event: Envelope) -> list[Envelope]:
        if event.type != "ExamItemsResolved" and not (event.type in RECHECK and _open_orders(state)):
            return []
        after = px.evolve(px.fold_copy(state), event)
        out = []
        for exam_id, result in self._rechecked(after, event):
            exam = after["exams"][exam_id]
            known = state["orders"].get(exam_id, {}).get("items", {})
            for item, candidates in result["items"].items():
                seen = known.get(item, {}).get("candidates", {})
                for cand_id in candidates:
                    cand = after["exams"][cand_id]
                    if cand["study_uid"] in seen:
                        continue
                    out.append(px.decided(DuplicateFound(
                        hospital=exam["hospital"], order_id=exam["order_id"], person_key=event.key,
                        standard_item=item, candidate_study_uid=cand["study_uid"], candidate_hospital=cand["hospital"],
                        rule_version=result["rule_version"]), event, exam_id, item, cand["study_uid"]))
        return out

    # ------------------------------------------------------------------ evolving

    def evolve(self, state: dict[str, Any], event: Envelope) -> dict[str, Any]:
        p = event.payload
        if event.type == "DuplicateFound":
            exam_id = px.find_exam(state, {"hospital": p["hospital"], "order_id": p["order_id"]})
            if exam_id is not None:
                order = state["orders"].setdefault(exam_id, {"rule_version": p["rule_version"], "exception": None,
                                                             "items": {}})
                slot = _slot(order, p["standard_item"])
                slot["candidates"].setdefault(p["candidate_study_uid"], p["rule_version"])
            return state
        if event.type == "RecognitionDecided":
            exam_id = px.find_exam(state, {"hospital": p["hospital"], "order_id": p["order_id"]})
            if exam_id is not None:
                order = state["orders"].setdefault(exam_id, {"rule_version": None, "exception": None, "items": {}})
                _slot(order, p["standard_item"])["decisions"].append({
                    "candidate_study_uid": p["candidate_study_uid"], "decision": p["decision"],
                    "reason_code": p.get("reason_code"), "reason_text": p.get("reason_text"),
                    "doctor_id": p["doctor_id"], "at": event.occurred_at.isoformat(), "event_id": str(event.event_id)})
            return state
        state = px.evolve(state, event)
        for exam_id, result in self._rechecked(state, event):
            order = state["orders"].setdefault(exam_id, {"items": {}})
            order.update(rule_version=result["rule_version"], exception=result["exception"])
            for item, candidates in result["items"].items():
                slot = _slot(order, item)
                for cand_id in candidates:
                    slot["candidates"].setdefault(state["exams"][cand_id]["study_uid"], result["rule_version"])
        return state

    # ------------------------------------------------------------------ views

    @staticmethod
    def item_status(exam: dict[str, Any], order: dict[str, Any], slot: dict[str, Any]) -> str:
        """accepted | declined | candidates | no_candidates | skipped | cancelled"""
        final = _final_decisions(slot)
        if any(d["decision"] == "accepted" for d in final.values()):
            return "accepted"
        if exam["status"] == "cancelled":
            return "cancelled"
        if final and set(final) >= set(slot["candidates"]):
            return "declined"
        if slot["candidates"]:
            return "candidates"
        return "skipped" if order.get("exception") else "no_candidates"

    def rows(self, key: str, state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        out = []
        by_study = {e["study_uid"]: e for e in state["exams"].values() if e["study_uid"]}
        for exam_id, order in sorted(state["orders"].items()):
            exam = state["exams"][exam_id]
            items = dict.fromkeys(exam["standard_items"]) | dict.fromkeys(order["items"])
            for item in items:
                slot = order["items"].get(item) or {"candidates": {}, "decisions": []}
                status = self.item_status(exam, order, slot)
                out.append({
                    "person_key": key, "hospital": exam["hospital"], "order_id": exam["order_id"],
                    "standard_item": item, "ordered_at": exam["ordered_at"], "local_item_name": exam["local_item_name"],
                    "rule_version": order.get("rule_version"), "status": status,
                    "mark": HR_MARK if status == "accepted" else None,
                    "label": HR_LABEL if status == "accepted" else None, "exception": order.get("exception"),
                    "candidate_count": len(slot["candidates"]),
                    "candidates": json.dumps(self._candidates(by_study, slot, exam), ensure_ascii=False),
                    "decisions": json.dumps(slot["decisions"], ensure_ascii=False),
                })
        return {"order_items": out}

    def _candidates(self, by_study: dict[str, dict], slot: dict[str, Any], order_exam: dict) -> list[dict]:
        order_day = px.local_day(datetime.fromisoformat(order_exam["ordered_at"])) if order_exam["ordered_at"] else None
        final = _final_decisions(slot)
        out = []
        for study_uid, rule_version in slot["candidates"].items():
            cand = by_study.get(study_uid, {})
            study_date = cand.get("study_date")
            out.append({
                "study_uid": study_uid, "hospital": cand.get("hospital"),
                "hospital_name": self.hospitals.name(cand["hospital"]) if cand.get("hospital") else None,
                "study_date": study_date, "modality": cand.get("modality"), "item_name": cand.get("local_item_name"),
                "days_before": (order_day - date.fromisoformat(study_date)).days if order_day and study_date else None,
                "report_status": cand.get("report_status"), "report_id": cand.get("report_id"),
                "qc_grade": px.qc_grade(cand) if cand else None, "rule_version": rule_version,
                "decision": final.get(study_uid, {}).get("decision"),
            })
        return sorted(out, key=lambda c: (c["study_date"] or "", c["study_uid"]), reverse=True)


def _open_orders(state: dict[str, Any]) -> bool:
    return any(state["exams"].get(i, {}).get("status") == "ordered" for i in state["orders"])


def _slot(order: dict[str, Any], item: str) -> dict[str, Any]:
    return order.setdefault("items", {}).setdefault(item, {"candidates": {}, "decisions": []})


def _final_decisions(slot: dict[str, Any]) -> dict[str, dict]:
    """The last decision per candidate study (a doctor may change their mind)."""
    return {d["candidate_study_uid"]: d for d in slot["decisions"]}


class RecognitionStats(Processor[dict[str, Any]]):
    """Per order item and local month (of the event): its candidates and the doctor's answers, a row each for
    :func:`recognition_statistics` to sum. An order item counts once however many candidates it had; its last
    decisions count."""

    name = "recognition_stats"
    handles = frozenset({"DuplicateFound", "RecognitionDecided"})
    views = (ViewTable(recognition_outcomes, (*STAT_KEYS, "person_key", "order_id")),
             ViewTable(recognition_outcome_reasons, (*STAT_KEYS, "person_key", "order_id")))

    def state_key(self, event: Envelope) -> str | None:
        p = event.payload
        return json.dumps([p["hospital"], p["standard_item"], f"{px.local_day(event.occurred_at):%Y-%m}",
                           p["person_key"], p["order_id"]], ensure_ascii=False)

    def key_values(self, key: str) -> dict[str, Any]:
        return dict(zip((*STAT_KEYS, "person_key", "order_id"), json.loads(key)))

    def initial(self) -> dict[str, Any]:
        return {"found": [], "decided": {}}

    def evolve(self, state: dict[str, Any], event: Envelope) -> dict[str, Any]:
        p = event.payload
        if event.type == "DuplicateFound":
            if p["candidate_study_uid"] not in state["found"]:
                state["found"].append(p["candidate_study_uid"])
        else:
            state["decided"][p["candidate_study_uid"]] = [p["decision"], p.get("reason_code")]
        return state

    def rows(self, key: str, state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        base = self.key_values(key)
        decisions = state["decided"].values()
        decision = None
        if decisions:
            decision = "accepted" if any(d == "accepted" for d, _ in decisions) else "declined"
        reasons = sorted({r for _, r in decisions if r}) if decision == "declined" else []
        return {"recognition_outcomes": [{**base, "candidates": len(state["found"]), "decision": decision}],
                "recognition_outcome_reasons": [{**base, "reason_code": c} for c in reasons]}
