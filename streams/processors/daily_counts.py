"""Events per hospital, per local day (Asia/Shanghai), per event type: the operator's and regulator's pulse."""
from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import sqlalchemy as sa

from schemas.envelope import Envelope
from streams.processors.base import Processor, ViewTable
from streams.processors.history import metadata

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")

hospital_daily_counts = sa.Table(
    "hospital_daily_counts",
    metadata,
    sa.Column("hospital", sa.String(32), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("event_type", sa.String(64), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

COUNTED = frozenset(
    {"VisitStarted", "PatientOpened", "ExamOrdered", "ExamCancelled", "StudyReceived", "StudyCompleted",
     "ReportFinalized", "ReportAmended", "ReminderRaised", "DuplicateFound", "RecognitionDecided", "QCScored"}
)


class HospitalDailyCounts(Processor[dict[str, int]]):
    name = "hospital_daily_counts"
    handles = COUNTED
    views = (ViewTable(hospital_daily_counts, ("hospital", "day")),)

    def state_key(self, event: Envelope) -> str | None:
        hospital = event.payload.get("hospital")
        if not hospital:
            return None
        return f"{hospital}|{event.occurred_at.astimezone(CHINA).date().isoformat()}"

    def initial(self) -> dict[str, int]:
        return {}

    def evolve(self, state: dict[str, int], event: Envelope) -> dict[str, int]:
        state[event.type] = state.get(event.type, 0) + 1
        return state

    def key_values(self, key: str) -> dict[str, Any]:
        hospital, day = key.split("|")
        return {"hospital": hospital, "day": day}

    def rows(self, key: str, state: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
        hospital, day = key.split("|")
        return {
            "hospital_daily_counts": [
                {"hospital": hospital, "day": day, "event_type": t, "count": n} for t, n in sorted(state.items())
            ]
        }
