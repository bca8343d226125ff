"""Per-hospital mapping tables (local code -> standard items) with a review queue, in SQL.

Every change returns the events that record it; the caller appends them to the log. A code that cannot be mapped
is queued with ranked suggestions, never dropped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipelines.mapping.catalog import Catalog
from pipelines.mapping.resolve import ItemResolver
from pipelines.mapping.suggest import suggest
from schemas.envelope import Envelope
from pipelines.mapping.resolved import items_resolved_event
from schemas.events import ExamCodeMapped, ExamCodeMappingRemoved, ExamCodeQueued
from schemas.registry import REGISTRY

_md = sa.MetaData()
exam_code_mappings = sa.Table(
    "exam_code_mappings",
    _md,
    sa.Column("hospital", sa.String(32), primary_key=True),
    sa.Column("local_code", sa.String(256), primary_key=True),
    sa.Column("local_name", sa.String(256), nullable=False),
    sa.Column("items", sa.Text, nullable=False, default="[]"),  # JSON list of standard item codes
    sa.Column("status", sa.String(16), nullable=False, index=True),  # auto | confirmed | pending
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("suggestions", sa.Text, nullable=False, default="[]"),  # JSON [[code, name, score, why]]
    sa.Column("catalog_version", sa.String(32), nullable=False),
    sa.Column("seen_count", sa.Integer, nullable=False, default=1),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(64)),
)

#: Orders seen per local code, so that a mapping change re-resolves them (ExamItemsResolved again).
exam_code_orders = sa.Table(
    "exam_code_orders",
    _md,
    sa.Column("hospital", sa.String(32), primary_key=True),
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("local_code", sa.String(256), nullable=False, index=True),
    sa.Column("person_key", sa.String(128), nullable=False),
    sa.Column("accession_number", sa.String(64)),
    sa.Column("ordered_ms", sa.BigInteger, nullable=False),
)

MAPPED = ("auto", "confirmed")


class MappingError(ValueError):
    """A mapping change that cannot be made; the message says what to fix."""


@dataclass(frozen=True)
class Mapping:
    hospital: str
    local_code: str
    local_name: str
    items: tuple[str, ...]
    status: str
    method: str
    reason: str | None
    suggestions: tuple[tuple, ...]
    catalog_version: str
    seen_count: int
    updated_at: str


def _row(r) -> Mapping:
    m = r._mapping
    return Mapping(m["hospital"], m["local_code"], m["local_name"], tuple(json.loads(m["items"])), m["status"],
                   m["method"], m["reason"], tuple(tuple(s) for s in json.loads(m["suggestions"])),
                   m["catalog_version"], m["seen_count"], m["updated_at"])


def _now() -> datetime:
    return datetime.now(timezone.utc)


class MappingStore:
    def __init__(self, engine: Engine, catalog: Catalog) -> None:
        self.engine = engine
        self.catalog = catalog
        self.resolver = ItemResolver(catalog)
        _md.create_all(engine)

    # ------------------------------------------------------------------ reading

    def get(self, hospital: str, local_code: str) -> Mapping | None:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(exam_code_mappings).where(
                exam_code_mappings.c.hospital == hospital, exam_code_mappings.c.local_code == local_code)).first()
        return _row(r) if r else None

    def list(self, *, hospital: str | None = None, status: str | None = None, limit: int = 1000) -> list[Mapping]:
        q = sa.select(exam_code_mappings).order_by(exam_code_mappings.c.hospital, exam_code_mappings.c.local_code)
        if hospital:
            q = q.where(exam_code_mappings.c.hospital == hospital)
        if status:
            q = q.where(exam_code_mappings.c.status == status)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q.limit(limit))]

    def review_queue(self, hospital: str | None = None) -> list[Mapping]:
        return self.list(hospital=hospital, status="pending")

    # ------------------------------------------------------------------ changing

    def observe(self, hospital: str, local_code: str, local_name: str) -> tuple[tuple[str, ...], list[Envelope]]:
        """A code seen in an order: its standard items (empty while it waits for review) and any new events."""
        current = self.get(hospital, local_code)
        if current is not None and current.local_name == local_name:
            with self.engine.begin() as conn:
                conn.execute(exam_code_mappings.update().where(
                    exam_code_mappings.c.hospital == hospital, exam_code_mappings.c.local_code == local_code
                ).values(seen_count=exam_code_mappings.c.seen_count + 1))
            return (current.items if current.status in MAPPED else ()), []
        if current is not None and current.status == "confirmed":
            # The hospital renamed a reviewed code: keep the reviewed mapping but queue it for a second look.
            return current.items, self._queue(hospital, local_code, local_name,
                                              f"name changed from {current.local_name!r}; confirm the mapping")
        res = self.resolver.resolve(local_name)
        if res.complete:
            return res.items, self._set(hospital, local_code, local_name, list(res.items), "auto", "auto", None,
                                        reason="defaults used: " + ", ".join(res.defaults) if res.defaults else None)
        return (), self._queue(hospital, local_code, local_name, "; ".join(res.problems) or "not understood")

    def resolve_order(self, order: Envelope) -> list[Envelope]:
        """For an ExamOrdered event: mapping events for its code if new, and ExamItemsResolved once the standard
        items are known (now, or later when the code is mapped: the order is remembered for that)."""
        p = order.payload
        items, events = self.observe(p["hospital"], p["local_item_code"], p["local_item_name"])
        row = self._remember(order)
        if items:
            method = self.get(p["hospital"], p["local_item_code"]).method
            events.append(self._resolved(p["hospital"], p["order_id"], p["person_key"], p.get("accession_number"),
                                         list(items), method, row["ordered_ms"], causation_id=order.event_id))
        return events

    def _remember(self, order: Envelope) -> dict:
        p = order.payload
        row = dict(local_code=p["local_item_code"], person_key=p["person_key"],
                   accession_number=p.get("accession_number"), ordered_ms=int(order.occurred_at.timestamp() * 1000))
        key = (exam_code_orders.c.hospital == p["hospital"], exam_code_orders.c.order_id == p["order_id"])
        with self.engine.begin() as conn:
            if not conn.execute(exam_code_orders.update().where(*key).values(**row)).rowcount:
                conn.execute(exam_code_orders.insert().values(hospital=p["hospital"], order_id=p["order_id"], **row))
        return row

    def accept(self, hospital: str, local_code: str, *, items: list[str] | None = None, suggestion: int = 1,
               actor: str) -> list[Envelope]:
        """Confirm a mapping: the given items, or the n-th suggestion (1 = best), or the automatic one."""
        current = self.get(hospital, local_code)
        if current is None:
            raise MappingError(f"{hospital} has no local code {local_code!r} (import it or wait for an order)")
        if items is None:
            if current.status == "auto":
                items = list(current.items)
            elif not 1 <= suggestion <= len(current.suggestions):
                raise MappingError(f"suggestion {suggestion} does not exist ({len(current.suggestions)} offered)")
            else:
                items = [current.suggestions[suggestion - 1][0]]
        return self._set(hospital, local_code, current.local_name, items, "confirmed", "manual", actor)

    def remove(self, hospital: str, local_code: str, *, actor: str, reason: str) -> list[Envelope]:
        current = self.get(hospital, local_code)
        if current is None:
            raise MappingError(f"{hospital} has no local code {local_code!r}")
        event = ExamCodeMappingRemoved(hospital=hospital, local_code=local_code, actor=actor, reason=reason)
        return [self._envelope(event, hospital)] + self._queue(hospital, local_code, current.local_name,
                                                               f"mapping removed: {reason}")

    def import_rows(self, rows: list[dict], *, actor: str) -> tuple[list[Envelope], list[str]]:
        """Apply rows (hospital, local_code, local_name, standard_items); bad rows are reported, not applied."""
        events: list[Envelope] = []
        errors: list[str] = []
        for n, row in enumerate(rows, start=2):  # line 1 is the header
            try:
                hospital = str(row.get("hospital") or "").strip()
                code = str(row.get("local_code") or "").strip()
                name = str(row.get("local_name") or "").strip()
                items = [i.strip() for i in str(row.get("standard_items") or "").replace(",", ";").split(";")
                         if i.strip()]
                if not hospital or not code or not name:
                    raise MappingError("hospital, local_code and local_name are required")
                if not items:
                    events += self.observe(hospital, code, name)[1]
                    continue
                events += self._set(hospital, code, name, items, "confirmed", "import", actor)
            except (MappingError, ValueError) as exc:
                errors.append(f"line {n}: {exc}")
        return events, errors

    def apply(self, envelope: Envelope) -> None:
        """Replay one mapping event into the table (to rebuild it from the log; no new events)."""
        p = envelope.payload
        if envelope.type == "ExamOrdered":
            self._remember(envelope)
        elif envelope.type == "ExamCodeMapped":
            status = "auto" if p["method"] == "auto" else "confirmed"
            self._upsert(p["hospital"], p["local_code"], p["local_name"], items=p["standard_items"], status=status,
                         method=p["method"], reason=None, suggestions=[], actor=p.get("actor"))
        elif envelope.type == "ExamCodeQueued":
            previous = self.get(p["hospital"], p["local_code"])
            ranked = {s.code: s for s in suggest(p["local_name"], self.catalog, limit=len(self.catalog.items))}
            suggestions = [[c, ranked[c].name, ranked[c].score, ranked[c].why] if c in ranked else [c, "", 0.0, ""]
                           for c in p["suggestions"]]
            self._upsert(p["hospital"], p["local_code"], p["local_name"],
                         items=list(previous.items) if previous else [], status="pending",
                         method=previous.method if previous else "auto", reason=p["reason"],
                         suggestions=suggestions, actor=None)

    # ------------------------------------------------------------------ internals

    def _check(self, items: list[str]) -> None:
        unknown = [i for i in items if i not in self.catalog.items]
        if unknown:
            raise MappingError(f"unknown standard item(s) {', '.join(unknown)} (catalog {self.catalog.version})")

    def _set(self, hospital: str, local_code: str, local_name: str, items: list[str], status: str, method: str,
             actor: str | None, reason: str | None = None) -> list[Envelope]:
        self._check(items)
        previous = self.get(hospital, local_code)
        event = ExamCodeMapped(hospital=hospital, local_code=local_code, local_name=local_name,
                               standard_items=items, method=method, catalog_version=self.catalog.version,
                               actor=actor, previous_items=list(previous.items) if previous and previous.items
                               else None)
        self._upsert(hospital, local_code, local_name, items=items, status=status, method=method, reason=reason,
                     suggestions=[], actor=actor)
        with self.engine.connect() as conn:
            orders = conn.execute(sa.select(exam_code_orders).where(
                exam_code_orders.c.hospital == hospital, exam_code_orders.c.local_code == local_code)).all()
        return [self._envelope(event, hospital)] + [
            self._resolved(hospital, o.order_id, o.person_key, o.accession_number, items, method, o.ordered_ms)
            for o in orders]

    def _resolved(self, hospital: str, order_id: str, person_key: str, accession: str | None, items: list[str],
                  method: str, ordered_ms: int, **envelope_fields) -> Envelope:
        return items_resolved_event(hospital=hospital, person_key=person_key, order_id=order_id,
                                    accession_number=accession, items=items, catalog_version=self.catalog.version,
                                    method=method, exam_ms=ordered_ms, **envelope_fields)

    def _queue(self, hospital: str, local_code: str, local_name: str, reason: str) -> list[Envelope]:
        ranked = suggest(local_name, self.catalog)
        previous = self.get(hospital, local_code)
        self._upsert(hospital, local_code, local_name, items=list(previous.items) if previous else [],
                     status="pending", method=previous.method if previous else "auto", reason=reason,
                     suggestions=[[s.code, s.name, s.score, s.why] for s in ranked], actor=None)
        event = ExamCodeQueued(hospital=hospital, local_code=local_code, local_name=local_name, reason=reason[:256],
                               suggestions=[s.code for s in ranked], catalog_version=self.catalog.version)
        return [self._envelope(event, hospital)]

    def _upsert(self, hospital: str, local_code: str, local_name: str, **values) -> None:
        values = {**values, "items": json.dumps(values["items"]),
                  "suggestions": json.dumps(values["suggestions"], ensure_ascii=False),
                  "local_name": local_name, "catalog_version": self.catalog.version, "updated_at": _now().isoformat()}
        key = (exam_code_mappings.c.hospital == hospital, exam_code_mappings.c.local_code == local_code)
        for _attempt in range(3):  # two listeners may meet the same new code at once
            try:
                with self.engine.begin() as conn:
                    done = conn.execute(exam_code_mappings.update().where(*key).values(**values)).rowcount
                    if not done:
                        conn.execute(exam_code_mappings.insert().values(hospital=hospital, local_code=local_code,
                                                                        seen_count=1, **values))
                return
            except sa.exc.IntegrityError:
                continue
        raise MappingError(f"could not write the mapping of {hospital} {local_code}")

    def _envelope(self, payload, hospital: str) -> Envelope:
        return REGISTRY.new(payload, key=hospital, source=hospital, occurred_at=_now())
