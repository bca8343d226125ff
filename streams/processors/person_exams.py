"""What the doctor-side processors know of one person: exams with their standard items, QC grade and report
status, links from hospital-scoped keys, and the recognition rules applied to one earlier exam.

Shared by :mod:`streams.processors.reminders` and :mod:`streams.processors.recognition`; pure, no I/O.

A hospital-scoped key's events sit on another partition than the national key it is linked to, so its exams are
handed over by events, each decided in partition order so that a replay decides exactly the same ones:
``PatientLinked`` (national partition) decides ``HospitalKeyLinked`` on the hospital-scoped partition; there, after
that partition's earlier events, it decides a ``PersonHistoryMerged`` with every exam known, and one more after each
later event on that key. The national key's state takes them as they come.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel

from schemas.envelope import Envelope, stable_event_id
from schemas.events import HospitalKeyLinked, MergedExam, PersonHistoryMerged
from schemas.hospitals import HospitalDirectory
from schemas.recognition_rules import RuleVersion
from schemas.registry import REGISTRY
from streams.processors.history import ExamHistory

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
SOURCE = "wanying-doctor"
GRADE_RANK = {"甲": 0, "乙": 1, "丙": 2, "废片": 3}

#: Events the person fold takes.
FOLDED = frozenset(
    {"VisitStarted", "PatientUpdated", "ExamOrdered", "ExamCancelled", "StudyReceived", "StudyCompleted",
     "ReportFinalized", "ReportAmended", "QCScored", "ExamItemsResolved", "PatientLinked", "HospitalKeyLinked",
     "PersonHistoryMerged"}
)
_MERGED_FIELDS = tuple(MergedExam.model_fields)


# ---------------------------------------------------------------------------------------------- decided events


def derived_id(cause: Envelope, *discriminator: object) -> uuid.UUID:
    """A UUIDv7 at the cause's time whose random bits come from the cause's id and ``discriminator``: deciding
    again on the same event gives the same id, so the log keeps one copy."""
    return stable_event_id(int(cause.occurred_at.timestamp() * 1000), cause.event_id, *discriminator)


def decided(payload: BaseModel, cause: Envelope, *discriminator: object, key: str | None = None) -> Envelope:
    """An envelope for an event decided because of ``cause``: deterministic id, time and causation."""
    return REGISTRY.new(
        payload, key=key or cause.key, source=SOURCE, occurred_at=cause.occurred_at,
        event_id=derived_id(cause, type(payload).__name__, *discriminator), recorded_at=cause.recorded_at,
        **cause.caused(),
    )


def local_day(at: datetime) -> date:
    return at.astimezone(CHINA).date()


# ---------------------------------------------------------------------------------------------- the fold


def initial() -> dict[str, Any]:
    return {"exams": {}, "links": {}, "merged_into": None, "birth_year": None}


def _blank(hospital: str) -> dict[str, Any]:
    return {"hospital": hospital, "order_id": None, "accession_number": None, "study_uid": None, "study_date": None,
            "ordered_at": None, "modality": None, "patient_class": None, "standard_items": [], "status": "ordered",
            "report_status": "none", "report_id": None, "qc": {}, "local_item_name": None, "doctor_id": None}


def find_exam(state: dict[str, Any], p: dict[str, Any]) -> str | None:
    return ExamHistory._find(state["exams"], p)


def fold_copy(state: dict[str, Any]) -> dict[str, Any]:
    """A copy :func:`evolve` may change without touching ``state``: much cheaper than a deep copy, it copies only
    what the fold mutates in place (the top level, the links, each exam and its QC grades); other values, such as
    ``orders`` or an exam's ``standard_items``, are shared and the fold only ever replaces them."""
    return {**state, "links": dict(state["links"]),
            "exams": {i: {**e, "qc": dict(e["qc"])} for i, e in state["exams"].items()}}


def evolve(state: dict[str, Any], event: Envelope) -> dict[str, Any]:
    """Fold one event into the person's exams (events of other types are left alone)."""
    p, t = event.payload, event.type
    if t not in FOLDED:
        return state
    if t in ("VisitStarted", "PatientUpdated"):
        state["birth_year"] = p["person"].get("birth_year") or state["birth_year"]
        return state
    if t == "PatientLinked":  # the handover starts on the other partition (HospitalKeyLinked)
        return state
    if t == "HospitalKeyLinked":  # processed in the hospital-scoped key's state
        state["merged_into"] = p["person_key"]
        return state
    if t == "PersonHistoryMerged":
        state["links"][p["linked_key"]] = p["hospital"]
        for merged in p["exams"]:
            exam = state["exams"].setdefault(merged["exam_id"], _blank(merged["hospital"]))
            exam.update({k: v for k, v in merged.items() if k not in ("exam_id", "qc_grade")})
            exam["qc"] = {"merged": merged["qc_grade"]} if merged.get("qc_grade") else {}
        return state
    exams = state["exams"]
    exam_id = find_exam(state, p) or ExamHistory._new_id(p)
    exam = exams.setdefault(exam_id, _blank(p["hospital"]))
    if t == "ExamOrdered":
        exam.update(order_id=p["order_id"], ordered_at=event.occurred_at.isoformat(),
                    modality=p.get("modality") or exam["modality"], patient_class=p.get("patient_class"),
                    accession_number=p.get("accession_number") or exam["accession_number"],
                    local_item_name=p["local_item_name"], doctor_id=p.get("doctor_id"))
    elif t == "ExamCancelled":
        if exam["status"] == "ordered":
            exam["status"] = "cancelled"
    elif t in ("StudyReceived", "StudyCompleted"):
        exam.update(study_uid=p["study_uid"], study_date=p.get("study_date") or exam["study_date"],
                    accession_number=p.get("accession_number") or exam["accession_number"],
                    order_id=p.get("order_id") or exam["order_id"])
        if t == "StudyCompleted":
            exam["status"] = "imaged"
            exam["modality"] = exam["modality"] or "/".join(p["modalities"])
        elif exam["modality"] is None:
            exam["modality"] = p.get("modality")
    elif t in ("ReportFinalized", "ReportAmended"):
        exam.update(report_id=p["report_id"], report_status="final" if t == "ReportFinalized" else "amended",
                    study_uid=p.get("study_uid") or exam["study_uid"],
                    accession_number=p.get("accession_number") or exam["accession_number"])
    elif t == "QCScored":
        exam["study_uid"] = p["study_uid"]
        exam["qc"][p["series_uid"]] = p["grade"]
    elif t == "ExamItemsResolved":
        exam["standard_items"] = list(dict.fromkeys(p["standard_items"]))
        for field in ("order_id", "accession_number", "study_uid"):
            exam[field] = exam[field] or p.get(field)
    return state


def qc_grade(exam: dict[str, Any]) -> str | None:
    """The exam's grade: its worst series grade, ``None`` while no series is scored."""
    grades = [g for g in exam["qc"].values() if g]
    return max(grades, key=lambda g: GRADE_RANK.get(g, len(GRADE_RANK))) if grades else None


def performed(exam: dict[str, Any]) -> bool:
    return exam["status"] != "cancelled" and bool(exam["study_uid"]) and bool(exam["study_date"])


def snapshot(exam_id: str, exam: dict[str, Any]) -> MergedExam:
    values = {k: exam.get(k) for k in _MERGED_FIELDS if k in exam}
    return MergedExam(exam_id=exam_id, qc_grade=qc_grade(exam), **values)


def forwarded(state: dict[str, Any], event: Envelope) -> list[Envelope]:
    """``PersonHistoryMerged`` events owed to the national key this hospital-scoped state is linked to."""
    p = event.payload
    if event.type == "PatientLinked":
        return [decided(HospitalKeyLinked(person_key=p["person_key"], linked_key=p["linked_key"],
                                          hospital=p["hospital"]), event, key=p["linked_key"])]
    if event.type == "HospitalKeyLinked":
        exams = [snapshot(i, e) for i, e in sorted(state["exams"].items())]
        return [decided(PersonHistoryMerged(person_key=p["person_key"], linked_key=p["linked_key"],
                                            hospital=p["hospital"], exams=exams), event, key=p["person_key"])]
    target = state["merged_into"]
    if target is None or event.type not in FOLDED or event.type in ("PersonHistoryMerged", "VisitStarted",
                                                                      "PatientUpdated", "PatientLinked"):
        return []
    after = evolve(fold_copy(state), event)
    changed = [(i, e) for i, e in sorted(after["exams"].items()) if state["exams"].get(i) != e]
    if not changed:
        return []
    hospital = event.payload.get("hospital") or changed[0][1]["hospital"]
    return [decided(PersonHistoryMerged(person_key=target, linked_key=event.key, hospital=hospital,
                                        exams=[snapshot(i, e) for i, e in changed]), event, key=target)]


# ---------------------------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class OrderContext:
    """Where and when an item is being ordered: what an earlier exam is judged against."""

    hospital: str
    day: date
    patient_class: str | None = None
    age_years: int | None = None


def age_at(state: dict[str, Any], day: date) -> int | None:
    return day.year - state["birth_year"] if state.get("birth_year") else None


def problems(exam: dict[str, Any], item: str, order: OrderContext, rules: RuleVersion,
             hospitals: HospitalDirectory) -> list[str]:
    """Why an earlier exam cannot be recognised for ``item`` ordered under ``order`` (empty: it can)."""
    out = []
    if item not in exam["standard_items"]:
        out.append("other_item")
    if not performed(exam):
        out.append("cancelled" if exam["status"] == "cancelled" else "not_performed")
        return out
    age = (order.day - date.fromisoformat(exam["study_date"])).days
    window = rules.window_days(item, order.patient_class, order.age_years)
    if age < 0:
        out.append("after_order")
    elif age > window:
        out.append("outside_window")
    if not rules.report_accepted(exam["report_status"]):
        out.append("report_not_final")
    if not rules.qc_accepted(qc_grade(exam)):
        out.append("qc_grade")
    if not rules.level_accepted(hospitals.get(exam["hospital"]), hospitals.get(order.hospital)):
        out.append("hospital_level")
    return out
