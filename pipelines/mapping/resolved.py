"""The one way to state an exam's standard items as a fact (``ExamItemsResolved``).

Whichever path resolves an exam (the order arriving, a re-sent order, a mapping accepted later, a study without an
order), the same resolution gets the same event id, so the log keeps it once; a different resolution is a new fact.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from schemas.envelope import Envelope, stable_event_id
from schemas.events import ExamItemsResolved
from schemas.registry import REGISTRY


def items_resolved_event(*, hospital: str, person_key: str, items: Sequence[str], catalog_version: str,
                         method: str, exam_ms: int, order_id: str | None = None, study_uid: str | None = None,
                         accession_number: str | None = None, occurred_at: datetime | None = None,
                         **envelope_fields: Any) -> Envelope:
    """``exam_ms`` is the time of the order (or study) in ms: with the reference and the items it fixes the id."""
    payload = ExamItemsResolved(hospital=hospital, person_key=person_key, order_id=order_id, study_uid=study_uid,
                                accession_number=accession_number, standard_items=list(items),
                                catalog_version=catalog_version, method=method)
    ref = order_id or f"study:{study_uid}"
    event_id = stable_event_id(exam_ms, hospital, ref, ";".join(items), catalog_version, method)
    return REGISTRY.new(payload, key=person_key, source=hospital, occurred_at=occurred_at or datetime.now(timezone.utc),
                        event_id=event_id, **envelope_fields)
