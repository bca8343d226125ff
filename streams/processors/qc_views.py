"""Image-quality views: every score kept, the latest per series, and the regulator's aggregates.

- :class:`QCStudies` (per study): the series of each completed study, what batch re-scoring plans from.
- :class:`QCScores` (per series): ``qc_scores`` keeps one row per series and protocol version, so re-scoring under
  a new version never loses the old score; ``qc_latest`` is the score under the newest protocol version.
- :class:`QCStats` (per hospital, month and modality group): grade counts per body part and failed-check counts,
  over the latest score of each series. Modality never changes for a series, so a re-score that recognises
  another body part moves the series between rows of the same state and nothing is counted twice.
"""
from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

import sqlalchemy as sa

from schemas.envelope import Envelope
from streams.processors.base import Processor, ViewTable
from streams.processors.history import metadata

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
DIMENSIONS = ("coverage", "positioning", "artefact", "clarity")

qc_studies = sa.Table(
    "qc_studies",
    metadata,
    sa.Column("study_uid", sa.String(64), primary_key=True),
    sa.Column("series_uid", sa.String(64), primary_key=True),
    sa.Column("hospital", sa.String(32), nullable=False, index=True),
    sa.Column("person_key", sa.String(80), nullable=False),
    sa.Column("study_date", sa.String(10)),
    sa.Column("modality", sa.String(16), nullable=False),
    sa.Column("body_part", sa.String(64)),
    sa.Column("description", sa.String(256)),
    sa.Column("completed_event_id", sa.String(36), nullable=False),
)


def _score_columns() -> list[sa.Column]:
    return [
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("hospital", sa.String(32), nullable=False),
        sa.Column("modality", sa.String(16)),
        sa.Column("study_date", sa.String(10)),
        sa.Column("month", sa.String(7), nullable=False),
        *(sa.Column(d, sa.Float, nullable=False) for d in DIMENSIONS),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("grade", sa.String(16), nullable=False),
        sa.Column("body_part_source", sa.String(64)),
        sa.Column("sop_uid", sa.String(64)),
        sa.Column("failed", sa.String(512), nullable=False),  # comma-separated failed check ids
        sa.Column("failed_checks", sa.Text, nullable=False),  # JSON: what was measured, threshold, where
        sa.Column("failed_data_checks", sa.Text, nullable=False),  # JSON
        sa.Column("scored_at", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
    ]


qc_scores = sa.Table(
    "qc_scores",
    metadata,
    sa.Column("series_uid", sa.String(64), primary_key=True),
    sa.Column("protocol", sa.String(64), primary_key=True),
    sa.Column("protocol_version", sa.String(32), primary_key=True),
    *_score_columns(),
)

qc_latest = sa.Table(
    "qc_latest",
    metadata,
    sa.Column("series_uid", sa.String(64), primary_key=True),
    sa.Column("protocol", sa.String(64), nullable=False),
    sa.Column("protocol_version", sa.String(32), nullable=False),
    *_score_columns(),
    sa.Column("versions_scored", sa.Integer, nullable=False),
    sa.Index("ix_qc_latest_filter", "hospital", "protocol", "month"),
)

qc_grade_stats = sa.Table(
    "qc_grade_stats",
    metadata,
    sa.Column("hospital", sa.String(32), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("modality_group", sa.String(8), primary_key=True),
    sa.Column("body_part", sa.String(64), primary_key=True),
    sa.Column("grade", sa.String(16), primary_key=True),
    sa.Column("series", sa.Integer, nullable=False),
    sa.Column("total_sum", sa.Float, nullable=False),
)

qc_check_stats = sa.Table(
    "qc_check_stats",
    metadata,
    sa.Column("hospital", sa.String(32), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("modality_group", sa.String(8), primary_key=True),
    sa.Column("body_part", sa.String(64), primary_key=True),
    sa.Column("check_id", sa.String(64), primary_key=True),
    sa.Column("label", sa.String(256), nullable=False),
    sa.Column("dimension", sa.String(16), nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("series", sa.Integer, nullable=False),  # series of that body part scored in the bucket
)


def version_key(version: str) -> tuple:
    """Order protocol versions numerically where they are numbers (1.10.0 after 1.9.0)."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in str(version).split("."))


def newer(a: dict[str, Any], b: dict[str, Any] | None) -> bool:
    """Whether score ``a`` supersedes ``b``: newer protocol version, then later scoring."""
    if b is None:
        return True
    return (version_key(a["protocol_version"]), a["scored_at"]) >= (version_key(b["protocol_version"]),
                                                                    b["scored_at"])


def month_of(event: Envelope) -> str:
    day = event.payload.get("study_date")
    return day[:7] if day else event.occurred_at.astimezone(CHINA).strftime("%Y-%m")


def modality_group(modality: str | None) -> str:
    return modality if modality in ("CT", "MR") else "XR"


def score_row(event: Envelope) -> dict[str, Any]:
    p = event.payload
    failed = p.get("failed_checks") or []
    return {
        "series_uid": p["series_uid"], "protocol": p["protocol"], "protocol_version": p["protocol_version"],
        "study_uid": p["study_uid"], "hospital": p["hospital"], "modality": p.get("modality"),
        "study_date": p.get("study_date"), "month": month_of(event),
        **{d: float(p["scores"].get(d, 0.0)) for d in DIMENSIONS},
        "total": float(p["total"]), "grade": p["grade"], "body_part_source": p.get("body_part_source"),
        "sop_uid": p.get("sop_uid"), "failed": ",".join(c["id"] for c in failed)[:512],
        "failed_checks": json.dumps(failed, ensure_ascii=False, sort_keys=True),
        "failed_data_checks": json.dumps(p.get("failed_data_checks") or [], ensure_ascii=False, sort_keys=True),
        "scored_at": event.occurred_at.isoformat(), "event_id": str(event.event_id),
    }


class QCStudies(Processor[dict[str, Any]]):
    name = "qc_studies"
    handles = frozenset({"StudyCompleted"})
    views = (ViewTable(qc_studies, ("study_uid",)),)

    def state_key(self, event: Envelope) -> str | None:
        return event.payload["study_uid"]

    def initial(self) -> dict[str, Any]:
        return {}

    def evolve(self, state: dict[str, Any], event: Envelope) -> dict[str, Any]:
        p = event.payload  # a study completed again (re-opened) replaces what it holds
        return {"hospital": p["hospital"], "person_key": p["person_key"], "study_date": p.get("study_date"),
                "event_id": str(event.event_id),
                "series": [[s["series_uid"], s["modality"], s.get("body_part"), s.get("description")]
                           for s in p["series"]]}

    def rows(self, key: str, state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return {"qc_studies": [
            {"study_uid": key, "series_uid": uid, "hospital": state["hospital"], "person_key": state["person_key"],
             "study_date": state["study_date"], "modality": modality, "body_part": body_part,
             "description": description, "completed_event_id": state["event_id"]}
            for uid, modality, body_part, description in state["series"]]}


class QCScores(Processor[dict[str, Any]]):
    name = "qc_scores"
    handles = frozenset({"QCScored"})
    views = (ViewTable(qc_scores, ("series_uid",)), ViewTable(qc_latest, ("series_uid",)))

    def state_key(self, event: Envelope) -> str | None:
        return event.payload["series_uid"]

    def initial(self) -> dict[str, Any]:
        return {"scores": {}}

    def evolve(self, state: dict[str, Any], event: Envelope) -> dict[str, Any]:
        row = score_row(event)
        state["scores"][f"{row['protocol']}|{row['protocol_version']}"] = row
        return state

    def rows(self, key: str, state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        scores = [state["scores"][k] for k in sorted(state["scores"])]
        latest = None
        for row in scores:
            if newer(row, latest):
                latest = row
        return {"qc_scores": scores, "qc_latest": [{**latest, "versions_scored": len(scores)}] if latest else []}


class QCStats(Processor[dict[str, Any]]):
    name = "qc_stats"
    handles = frozenset({"QCScored"})
    views = (ViewTable(qc_grade_stats, ("hospital", "month", "modality_group")),
             ViewTable(qc_check_stats, ("hospital", "month", "modality_group")))

    def state_key(self, event: Envelope) -> str | None:
        p = event.payload
        return f"{p['hospital']}|{month_of(event)}|{modality_group(p.get('modality'))}"

    def initial(self) -> dict[str, Any]:
        return {"series": {}, "labels": {}}

    def evolve(self, state: dict[str, Any], event: Envelope) -> dict[str, Any]:
        p = event.payload
        entry = {"protocol": p["protocol"], "protocol_version": p["protocol_version"],
                 "scored_at": event.occurred_at.isoformat(), "grade": p["grade"], "total": float(p["total"]),
                 "failed": [c["id"] for c in p.get("failed_checks") or []]}
        if newer(entry, state["series"].get(p["series_uid"])):
            state["series"][p["series_uid"]] = entry
        for c in p.get("failed_checks") or []:
            state["labels"][f"{p['protocol']}|{c['id']}"] = [c["label"], c["dimension"]]
        return state

    def key_values(self, key: str) -> dict[str, Any]:
        hospital, month, group = key.split("|")
        return {"hospital": hospital, "month": month, "modality_group": group}

    def rows(self, key: str, state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        base = self.key_values(key)
        grades: dict[tuple[str, str], list[float]] = {}
        per_part: dict[str, int] = {}
        failed: dict[tuple[str, str], int] = {}
        for entry in state["series"].values():
            part = entry["protocol"]
            grades.setdefault((part, entry["grade"]), []).append(entry["total"])
            per_part[part] = per_part.get(part, 0) + 1
            for check in entry["failed"]:
                failed[(part, check)] = failed.get((part, check), 0) + 1
        return {
            "qc_grade_stats": [{**base, "body_part": part, "grade": grade, "series": len(totals),
                                "total_sum": round(sum(totals), 4)}
                               for (part, grade), totals in sorted(grades.items())],
            "qc_check_stats": [{**base, "body_part": part, "check_id": check,
                                "label": state["labels"].get(f"{part}|{check}", [check, ""])[0],
                                "dimension": state["labels"].get(f"{part}|{check}", ["", ""])[1],
                                "failed": n, "series": per_part[part]}
                               for (part, check), n in sorted(failed.items())],
        }
