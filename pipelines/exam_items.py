"""The standard items of an order (or of a study that came without one), as an ``ExamItemsResolved`` fact.

The HIS intake calls :func:`items_resolved` right after appending an ``ExamOrdered``; a mapping change calls it
again for the orders still open. The duplicate check reads only this event, never the mapping tables.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from pipelines.mapping.resolve import ItemResolver
from pipelines.mapping.store import MAPPED, MappingStore
from schemas.envelope import Envelope
from pipelines.mapping.resolved import items_resolved_event


@dataclass(frozen=True)
class ResolvedItems:
    items: tuple[str, ...]
    method: Literal["auto", "manual", "import"]
    catalog_version: str


#: (hospital, local code or None for a study without an order, local name or description) -> items, or None.
ItemsLookup = Callable[[str, str | None, str], ResolvedItems | None]


def from_resolver(resolver: ItemResolver) -> ItemsLookup:
    """Items read from the name alone (no mapping table): complete resolutions only."""

    def lookup(_hospital: str, _code: str | None, name: str) -> ResolvedItems | None:
        res = resolver.resolve(name)
        return ResolvedItems(res.items, "auto", resolver.catalog.version) if res.complete else None

    return lookup


def from_store(store: MappingStore) -> ItemsLookup:
    """Items of the hospital's mapping table (read only: ``observe`` has already run for the order); a study
    without an order falls back to its description."""
    fallback = from_resolver(store.resolver)

    def lookup(hospital: str, code: str | None, name: str) -> ResolvedItems | None:
        if code is None:
            return fallback(hospital, code, name)
        mapping = store.get(hospital, code)
        if mapping is None or mapping.status not in MAPPED or not mapping.items:
            return None
        return ResolvedItems(mapping.items, mapping.method, mapping.catalog_version)  # type: ignore[arg-type]

    return lookup


def items_resolved(event: Envelope, lookup: ItemsLookup) -> Envelope | None:
    """``ExamItemsResolved`` for an ``ExamOrdered``, or for a ``StudyCompleted`` without an order; ``None`` when
    the items are not known (the code waits for review) or the event is neither. The id derives from the cause and
    the items, so the same answer twice is one event and a changed mapping is a new one."""
    p = event.payload
    if event.type == "ExamOrdered":
        found = lookup(p["hospital"], p["local_item_code"], p["local_item_name"])
        refs = {"order_id": p["order_id"], "accession_number": p.get("accession_number")}
    elif event.type == "StudyCompleted" and not p.get("order_id"):
        description = p.get("description") or ""
        modality = "/".join(p.get("modalities") or ())
        name = description if modality and modality in description else f"{modality} {description}".strip()
        found = lookup(p["hospital"], None, name)
        refs = {"study_uid": p["study_uid"], "accession_number": p.get("accession_number")}
    else:
        return None
    if found is None or not found.items:
        return None
    return items_resolved_event(hospital=p["hospital"], person_key=p["person_key"], items=found.items,
                                catalog_version=found.catalog_version, method=found.method,
                                exam_ms=int(event.occurred_at.timestamp() * 1000), occurred_at=event.occurred_at,
                                **refs, **event.caused())
