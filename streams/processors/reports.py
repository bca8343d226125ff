"""The current text of every signed report, by hospital and report id, for the report page a doctor opens from a
reminder or a duplicate popup. The text stays encrypted here as on the log; the API decrypts it for the reader.

An amendment replaces the text and keeps a count and the last reason. Events are applied by signing time, so an
amendment that arrives before its original (two HIS feeds) is not overwritten by it.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from schemas.envelope import Envelope
from streams.processors.base import Processor, ViewTable
from streams.processors.history import metadata

report_texts = sa.Table(
    "report_texts",
    metadata,
    sa.Column("hospital", sa.String(32), primary_key=True),
    sa.Column("report_id", sa.String(64), primary_key=True),
    sa.Column("person_key", sa.String(80), nullable=False, index=True),
    sa.Column("study_uid", sa.String(64), index=True),
    sa.Column("accession_number", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),  # final | amended
    sa.Column("findings", sa.Text, nullable=False),  # Encrypted, context "findings"
    sa.Column("impression", sa.Text, nullable=False),  # Encrypted, context "impression"
    sa.Column("critical", sa.Boolean, nullable=False),
    sa.Column("author_id", sa.String(64), nullable=False),
    sa.Column("signed_at", sa.String(40), nullable=False),
    sa.Column("first_signed_at", sa.String(40)),
    sa.Column("amendments", sa.Integer, nullable=False),
    sa.Column("amended_reason", sa.String(256)),
)


class ReportTexts(Processor[dict[str, Any]]):
    name = "report_texts"
    handles = frozenset({"ReportFinalized", "ReportAmended"})
    views = (ViewTable(report_texts, ("hospital", "report_id")),)

    def state_key(self, event: Envelope) -> str | None:
        return f"{event.payload['hospital']}|{event.payload['report_id']}"

    def key_values(self, key: str) -> dict[str, Any]:
        hospital, report_id = key.split("|", 1)
        return {"hospital": hospital, "report_id": report_id}

    def initial(self) -> dict[str, Any]:
        return {}

    def evolve(self, state: dict[str, Any], event: Envelope) -> dict[str, Any]:
        p = event.payload
        signed_at = _utc(p["signed_at"])
        amended = event.type == "ReportAmended"
        if amended:
            state["amendments"] = state.get("amendments", 0) + 1
        else:
            state["first_signed_at"] = signed_at
            state.update({k: p.get(k) for k in ("study_uid", "accession_number")})
            state["critical"] = bool(p.get("critical"))
        state.setdefault("person_key", p["person_key"])
        current = state.get("signed_at", "")
        if signed_at > current or (signed_at == current and amended):
            state.update(findings=p["findings"], impression=p["impression"], author_id=p["author_id"],
                         signed_at=signed_at, status="amended" if amended else "final",
                         amended_reason=p.get("reason") if amended else state.get("amended_reason"))
        return state

    def rows(self, key: str, state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return {"report_texts": [{
            **self.key_values(key), "person_key": state["person_key"], "study_uid": state.get("study_uid"),
            "accession_number": state.get("accession_number"), "status": state["status"],
            "findings": state["findings"], "impression": state["impression"],
            "critical": state.get("critical", False), "author_id": state["author_id"],
            "signed_at": state["signed_at"], "first_signed_at": state.get("first_signed_at"),
            "amendments": state.get("amendments", 0), "amended_reason": state.get("amended_reason")}]}


def _utc(value: Any) -> str:
    """Signing times in one zone, so they compare as text whatever offset each HIS sent."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(timezone.utc).isoformat()
