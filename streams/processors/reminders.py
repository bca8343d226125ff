"""History reminders: when a doctor opens a patient (or a visit starts), how many exams the patient has at other
hospitals, and which.

:class:`Reminders` (per person) decides ``ReminderRaised`` and keeps the list shown with each reminder (hospital,
date, items, modality, report status, QC grade, recognisable or not at the doctor's hospital); it also hands a
linked hospital-scoped key's exams over to the national key (see :mod:`streams.processors.person_exams`).
:class:`DoctorReminders` keeps each doctor's recent reminders.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from schemas.envelope import Envelope
from schemas.events import ReminderRaised
from schemas.hospitals import HospitalDirectory, default_hospitals
from schemas.recognition_rules import RuleSet, default_rules
from streams.processors import person_exams as px
from streams.processors.base import Processor, ViewTable
from streams.processors.history import metadata

#: A doctor who opens the same patient again within this time, with nothing new, is not reminded again.
REPEAT_QUIET = timedelta(minutes=60)
KEEP_PER_PERSON = 10
TRIGGERS = {"PatientOpened": "patient_opened", "VisitStarted": "visit_started"}

reminder_exams = sa.Table(
    "reminder_exams",
    metadata,
    sa.Column("person_key", sa.String(80), primary_key=True),
    sa.Column("reminder_id", sa.String(36), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("study_uid", sa.String(64), nullable=False),
    sa.Column("hospital", sa.String(32), nullable=False),
    sa.Column("hospital_name", sa.String(128)),
    sa.Column("study_date", sa.String(10)),
    sa.Column("modality", sa.String(16)),
    sa.Column("item_name", sa.String(256)),
    sa.Column("standard_items", sa.Text, nullable=False),  # JSON list
    sa.Column("report_status", sa.String(16), nullable=False),
    sa.Column("report_id", sa.String(64)),
    sa.Column("qc_grade", sa.String(16)),
    sa.Column("recognizable", sa.Boolean, nullable=False),
    sa.Column("why_not", sa.String(128)),  # comma-separated rule checks that failed
    sa.Index("ix_reminder_exams_reminder", "reminder_id"),
)

doctor_reminders = sa.Table(
    "doctor_reminders",
    metadata,
    sa.Column("hospital", sa.String(32), primary_key=True),
    sa.Column("doctor_id", sa.String(64), primary_key=True),
    sa.Column("reminder_id", sa.String(36), primary_key=True),
    sa.Column("person_key", sa.String(80), nullable=False),
    sa.Column("raised_at", sa.String(40), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("exam_count", sa.Integer, nullable=False),
    sa.Column("study_uids", sa.Text, nullable=False),  # JSON list
    sa.Index("ix_doctor_reminders_latest", "hospital", "doctor_id", "raised_at"),
)


class Reminders(Processor[dict[str, Any]]):
    name = "reminders"
    handles = px.FOLDED | {"PatientOpened", "ReminderRaised"}
    views = (ViewTable(reminder_exams, ("person_key",)),)

    def __init__(self, rules: RuleSet | None = None, hospitals: HospitalDirectory | None = None) -> None:
        self.rules = rules or default_rules()
        self.hospitals = hospitals or default_hospitals()

    def initial(self) -> dict[str, Any]:
        return {**px.initial(), "prompted": {}, "reminders": []}

    @staticmethod
    def elsewhere(state: dict[str, Any], hospital: str) -> list[dict[str, Any]]:
        """Performed exams at hospitals other than ``hospital``, newest first."""
        exams = [e for e in state["exams"].values() if e["hospital"] != hospital and px.performed(e)]
        return sorted(exams, key=lambda e: (e["study_date"], e["study_uid"]), reverse=True)

    def _quiet(self, state: dict[str, Any], event: Envelope, studies: list[str]) -> bool:
        p = event.payload
        last = state["prompted"].get(f"{p['hospital']}|{p.get('doctor_id')}")
        return bool(last) and last["studies"] == studies and (
            event.occurred_at - datetime.fromisoformat(last["at"]) < REPEAT_QUIET)

    def decide(self, state: dict[str, Any], event: Envelope) -> list[Envelope]:
        out = px.forwarded(state, event)
        p = event.payload
        if event.type in TRIGGERS and p.get("doctor_id"):
            studies = [e["study_uid"] for e in self.elsewhere(state, p["hospital"])]
            if studies and not self._quiet(state, event, studies):
                out.append(px.decided(ReminderRaised(
                    hospital=p["hospital"], doctor_id=p["doctor_id"], person_key=event.key,
                    trigger=TRIGGERS[event.type], exam_count=len(studies), study_uids=studies), event, "reminder"))
        return out

    def evolve(self, state: dict[str, Any], event: Envelope) -> dict[str, Any]:
        p = event.payload
        if event.type in TRIGGERS and p.get("doctor_id"):
            studies = [e["study_uid"] for e in self.elsewhere(state, p["hospital"])]
            if not self._quiet(state, event, studies):
                state["prompted"][f"{p['hospital']}|{p['doctor_id']}"] = {"at": event.occurred_at.isoformat(),
                                                                          "studies": studies}
        if event.type == "ReminderRaised":
            if all(r["id"] != str(event.event_id) for r in state["reminders"]):
                p = event.payload
                state["reminders"].append({"id": str(event.event_id), "hospital": p["hospital"],
                                           "at": event.occurred_at.isoformat(), "study_uids": p["study_uids"]})
                state["reminders"] = state["reminders"][-KEEP_PER_PERSON:]
            return state
        return px.evolve(state, event)

    def _listed(self, state: dict[str, Any], reminder: dict[str, Any]) -> list[dict[str, Any]]:
        """The reminder's exams as they stand now (a report signed since shows as final), judged against an order
        at the doctor's hospital on the reminder's day. Rendered from the current state rather than kept from
        when the reminder was applied, which would depend on how records of other partitions interleaved."""
        day = px.local_day(datetime.fromisoformat(reminder["at"]))
        rules = self.rules.at(day)
        order = px.OrderContext(reminder["hospital"], day, None, px.age_at(state, day))
        by_study = {e["study_uid"]: e for e in state["exams"].values() if e["study_uid"]}
        listed = []
        for study_uid in reminder["study_uids"]:
            exam = by_study.get(study_uid)
            if exam is None:
                continue
            verdicts = [px.problems(exam, item, order, rules, self.hospitals) if rules else ["no_rules"]
                        for item in exam["standard_items"]] or [["no_standard_item"]]
            best = min(verdicts, key=len)
            listed.append({
                "study_uid": study_uid, "hospital": exam["hospital"], "hospital_name": self.hospitals.name(
                    exam["hospital"]), "study_date": exam["study_date"], "modality": exam["modality"],
                "item_name": exam["local_item_name"], "standard_items": json.dumps(exam["standard_items"]),
                "report_status": exam["report_status"], "report_id": exam["report_id"],
                "qc_grade": px.qc_grade(exam), "recognizable": not best, "why_not": ",".join(best) or None,
            })
        return listed

    def rows(self, key: str, state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return {"reminder_exams": [
            {"person_key": key, "reminder_id": r["id"], "position": i, **exam}
            for r in state["reminders"] for i, exam in enumerate(self._listed(state, r))
        ]}


class DoctorReminders(Processor[dict[str, Any]]):
    """Every reminder a doctor was shown, a row each; the API reads the latest (``ix_doctor_reminders_latest``).

    Keyed by reminder, not by doctor: a per-doctor list re-read and rewrote all of that doctor's rows on each new
    reminder, which cost more than the rest of an order's work at a busy clinic."""

    name = "doctor_reminders"
    handles = frozenset({"ReminderRaised"})
    views = (ViewTable(doctor_reminders, ("hospital", "doctor_id", "reminder_id")),)

    def state_key(self, event: Envelope) -> str | None:
        return f"{event.payload['hospital']}|{event.payload['doctor_id']}|{event.event_id}"

    def key_values(self, key: str) -> dict[str, Any]:
        hospital, rest = key.split("|", 1)
        doctor, reminder = rest.rsplit("|", 1)
        return {"hospital": hospital, "doctor_id": doctor, "reminder_id": reminder}

    def initial(self) -> dict[str, Any]:
        return {}

    def evolve(self, state: dict[str, Any], event: Envelope) -> dict[str, Any]:
        p = event.payload
        return state or {"person_key": p["person_key"], "raised_at": event.occurred_at.isoformat(),
                         "trigger": p["trigger"], "exam_count": p["exam_count"],
                         "study_uids": json.dumps(p["study_uids"])}

    def rows(self, key: str, state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return {"doctor_reminders": [{**self.key_values(key), **state}] if state else []}
