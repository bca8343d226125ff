"""Every exam of a person, across hospitals: the history a doctor sees when opening a patient.

An exam starts as an order or as a study that arrives without one; a study, a report and a cancellation attach
to it by order ID, accession number or study UID at the same hospital.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from schemas.envelope import Envelope
from streams.processors.base import Processor, ViewTable

metadata = sa.MetaData()

exam_history = sa.Table(
    "exam_history",
    metadata,
    sa.Column("person_key", sa.String(80), primary_key=True),
    sa.Column("exam_id", sa.String(160), primary_key=True),
    sa.Column("hospital", sa.String(32), nullable=False, index=True),
    sa.Column("order_id", sa.String(64)),
    sa.Column("accession_number", sa.String(64)),
    sa.Column("study_uid", sa.String(64), index=True),
    sa.Column("local_item_code", sa.String(256)),
    sa.Column("local_item_name", sa.String(256)),
    sa.Column("modality", sa.String(16)),
    sa.Column("description", sa.String(256)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("report_status", sa.String(16), nullable=False),
    sa.Column("report_id", sa.String(64)),
    sa.Column("ordered_at", sa.String(40)),
    sa.Column("study_date", sa.String(10)),
    sa.Column("reported_at", sa.String(40)),
    sa.Column("instance_count", sa.Integer, nullable=False),
    sa.Column("series_count", sa.Integer, nullable=False),
    sa.Column("last_event_at", sa.String(40), nullable=False),
)

person_links = sa.Table(
    "person_links",
    metadata,
    sa.Column("person_key", sa.String(80), primary_key=True),
    sa.Column("linked_key", sa.String(80), primary_key=True, index=True),
    sa.Column("hospital", sa.String(32), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
)


class ExamHistory(Processor[dict[str, Any]]):
    name = "exam_history"
    handles = frozenset(
        {"ExamOrdered", "ExamCancelled", "StudyReceived", "StudyCompleted", "ReportFinalized", "ReportAmended",
         "PatientLinked"}
    )
    views = (ViewTable(exam_history, ("person_key",)), ViewTable(person_links, ("person_key",)))

    def initial(self) -> dict[str, Any]:
        return {"exams": {}, "links": {}}

    def evolve(self, state: dict[str, Any], event: Envelope) -> dict[str, Any]:
        p = event.payload
        exams: dict[str, dict[str, Any]] = state["exams"]
        at = event.occurred_at.isoformat()
        if event.type == "PatientLinked":
            state["links"][p["linked_key"]] = {"hospital": p["hospital"], "method": p["method"]}
            return state
        exam_id = self._find(exams, p) or self._new_id(p)
        exam = exams.setdefault(exam_id, _blank(p["hospital"]))
        exam["last_event_at"] = at
        if event.type == "ExamOrdered":
            exam.update(
                order_id=p["order_id"],
                local_item_code=p["local_item_code"],
                local_item_name=p["local_item_name"],
                modality=p.get("modality") or exam["modality"],
                accession_number=p.get("accession_number") or exam["accession_number"],
                ordered_at=at,
            )
        elif event.type == "ExamCancelled":
            if exam["status"] == "ordered":
                exam["status"] = "cancelled"
        elif event.type in ("StudyReceived", "StudyCompleted"):
            exam.update(
                study_uid=p["study_uid"],
                accession_number=p.get("accession_number") or exam["accession_number"],
                order_id=p.get("order_id") or exam["order_id"],
                study_date=p.get("study_date") or exam["study_date"],
            )
            if event.type == "StudyReceived":
                exam["modality"] = exam["modality"] or p.get("modality")
                if exam["status"] in ("ordered", "cancelled"):
                    exam["status"] = "imaging"
            else:
                if exam["status"] in ("ordered", "cancelled", "imaging"):  # a report may come before the last image
                    exam["status"] = "imaged"
                exam.update(
                    modality="/".join(p["modalities"]),
                    description=p.get("description") or exam["description"],
                    instance_count=p["instance_count"],
                    series_count=len(p["series"]),
                )
        elif event.type in ("ReportFinalized", "ReportAmended"):
            exam.update(
                report_id=p["report_id"],
                report_status="final" if event.type == "ReportFinalized" else "amended",
                reported_at=p["signed_at"],
                study_uid=p.get("study_uid") or exam["study_uid"],
                accession_number=p.get("accession_number") or exam["accession_number"],
            )
            if exam["status"] in ("ordered", "imaging", "imaged"):
                exam["status"] = "reported"
        return state

    @staticmethod
    def _new_id(p: dict[str, Any]) -> str:
        ref = p.get("order_id") or p.get("study_uid") or p.get("accession_number") or p.get("report_id")
        return f"{p['hospital']}:{ref}"

    @staticmethod
    def _find(exams: dict[str, dict[str, Any]], p: dict[str, Any]) -> str | None:
        if "report_id" in p and "study_uid" not in p and "accession_number" not in p:
            for exam_id, exam in exams.items():
                if exam["hospital"] == p["hospital"] and exam["report_id"] == p["report_id"]:
                    return exam_id
        for field in ("order_id", "accession_number", "study_uid"):
            value = p.get(field)
            if not value:
                continue
            for exam_id, exam in exams.items():
                if exam["hospital"] == p["hospital"] and exam[field] == value:
                    return exam_id
        return None

    def rows(self, key: str, state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return {
            "exam_history": [{"person_key": key, "exam_id": i, **e} for i, e in sorted(state["exams"].items())],
            "person_links": [
                {"person_key": key, "linked_key": k, **v} for k, v in sorted(state["links"].items())
            ],
        }


def _blank(hospital: str) -> dict[str, Any]:
    return {
        "hospital": hospital,
        "order_id": None,
        "accession_number": None,
        "study_uid": None,
        "local_item_code": None,
        "local_item_name": None,
        "modality": None,
        "description": None,
        "status": "ordered",
        "report_status": "none",
        "report_id": None,
        "ordered_at": None,
        "study_date": None,
        "reported_at": None,
        "instance_count": 0,
        "series_count": 0,
        "last_event_at": "",
    }
