"""Apply log records to processors and write their state, view rows and log positions in one transaction.

Because the positions commit with the rows, a crash at any point leaves the views either before or after a
whole batch, and the runtime resumes from the stored positions: no record is applied twice. A copy of an event
already applied (same ``event_id``, another offset) is skipped too. Events a processor
decides go to an outbox in the same transaction and are appended to the log afterwards (idempotently, by
``event_id``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from schemas.envelope import Envelope
from schemas.registry import REGISTRY, SchemaError
from streams.log.port import LogRecord
from streams.processors.base import Processor
from streams.processors.history import metadata

processor_state = sa.Table(
    "processor_state",
    metadata,
    sa.Column("processor", sa.String(64), primary_key=True),
    sa.Column("state_key", sa.String(200), primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
)
view_positions = sa.Table(
    "view_positions",
    metadata,
    sa.Column("projector", sa.String(64), primary_key=True),
    sa.Column("topic", sa.String(64), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("envelope", sa.Text, nullable=False),
    sa.Column("sent", sa.Boolean, nullable=False, default=False, index=True),
)

#: Every event the projector has applied, so a copy at another offset is not applied again. Kafka can hold such
#: copies: an outbox flushed again after a crash, or a rebuild re-publishing what it decides (KafkaLog's
#: dedup by event_id only covers one process).
applied_events = sa.Table(
    "applied_events",
    metadata,
    sa.Column("projector", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(36), primary_key=True),
)

#: Records on the log that are not a valid envelope of the catalog (written by a foreign producer, or a type this
#: reader does not know yet). They are set aside here with their bytes and the reason, in the same transaction
#: that moves past them, so one bad record can never stall the views; `wanying views rejects` lists them.
rejected_records = sa.Table(
    "rejected_records",
    metadata,
    sa.Column("projector", sa.String(64), primary_key=True),
    sa.Column("topic", sa.String(64), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("offset", sa.BigInteger, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
)

BOOKKEEPING = (processor_state, view_positions, outbox, applied_events, rejected_records)
_CHUNK = 500  # keys per DELETE ... IN: well under SQLite's 32766 bound parameters


@dataclass
class ApplyResult:
    applied: int = 0
    skipped: int = 0
    rejected: int = 0
    decided: list[Envelope] = field(default_factory=list)


class Projector:
    def __init__(self, engine: Engine, processors: Iterable[Processor], name: str = "views") -> None:
        self.engine, self.name = engine, name
        self.processors = list(processors)
        self._for_update = engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------ schema

    def view_tables(self) -> list[sa.Table]:
        return [v.table for p in self.processors for v in p.views]

    def create(self) -> None:
        metadata.create_all(self.engine, tables=[*self.view_tables(), *BOOKKEEPING])

    def drop(self) -> None:
        """Drop every view and the bookkeeping, so a replay from offset 0 rebuilds them."""
        metadata.drop_all(self.engine, tables=[*self.view_tables(), *BOOKKEEPING])

    def positions(self) -> dict[tuple[str, int], int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(view_positions.c.topic, view_positions.c.partition, view_positions.c.next_offset).where(
                    view_positions.c.projector == self.name
                )
            )
            return {(t, p): o for t, p, o in rows}

    # ------------------------------------------------------------------ apply

    def apply(self, records: Sequence[LogRecord]) -> ApplyResult:
        result = ApplyResult()
        if not records:
            return result
        with self.engine.begin() as conn:
            positions = self._lock_positions(conn, {(r.topic, r.partition) for r in records})
            fresh: list[tuple[LogRecord, Envelope]] = []
            for r in records:
                tp = (r.topic, r.partition)
                if r.offset < positions.get(tp, 0):
                    result.skipped += 1
                    continue
                positions[tp] = r.offset + 1
                try:
                    fresh.append((r, REGISTRY.validate(r.envelope())))
                except (ValueError, SchemaError) as exc:  # pydantic's ValidationError is a ValueError
                    result.rejected += 1
                    conn.execute(rejected_records.insert().values(
                        projector=self.name, topic=r.topic, partition=r.partition, offset=r.offset,
                        reason=str(exc)[:2000], value=r.value))
            fresh = self._first_copies(conn, fresh, result)
            for proc in self.processors:
                result.decided.extend(self._run(conn, proc, [e for _, e in fresh]))
            if result.decided:
                conn.execute(
                    outbox.insert(),
                    [{"event_id": str(e.event_id), "envelope": e.model_dump_json(), "sent": False}
                     for e in result.decided],
                )
            self._save_positions(conn, positions)
            result.applied = len(fresh)
        return result

    def _first_copies(self, conn: Connection, fresh: list[tuple[LogRecord, Envelope]],
                      result: ApplyResult) -> list[tuple[LogRecord, Envelope]]:
        """Drop records whose event was applied before (at another offset) or earlier in this batch."""
        ids = [str(e.event_id) for _, e in fresh]
        seen: set[str] = set()
        for i in range(0, len(ids), _CHUNK):
            q = sa.select(applied_events.c.event_id).where(
                applied_events.c.projector == self.name, applied_events.c.event_id.in_(ids[i : i + _CHUNK])
            )
            seen.update(conn.execute(q).scalars())
        first: list[tuple[LogRecord, Envelope]] = []
        for (r, e), event_id in zip(fresh, ids):
            if event_id in seen:
                result.skipped += 1
                continue
            seen.add(event_id)
            first.append((r, e))
        if first:
            conn.execute(applied_events.insert(),
                         [{"projector": self.name, "event_id": str(e.event_id)} for _, e in first])
        return first

    def _run(self, conn: Connection, proc: Processor, events: list[Envelope]) -> list[Envelope]:
        keyed = [(proc.state_key(e), e) for e in events if e.type in proc.handles]
        keyed = [(k, e) for k, e in keyed if k is not None]
        if not keyed:
            return []
        states = self._load_states(conn, proc.name, {k for k, _ in keyed})
        decided: list[Envelope] = []
        for key, event in keyed:
            state = states[key] if key in states else proc.initial()
            decided.extend(proc.decide(state, event))
            states[key] = proc.evolve(state, event)
        dirty = {k for k, _ in keyed}
        self._save_states(conn, proc, {k: states[k] for k in dirty})
        return decided

    def _load_states(self, conn: Connection, processor: str, keys: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        key_list = sorted(keys)
        for i in range(0, len(key_list), 500):
            q = sa.select(processor_state.c.state_key, processor_state.c.state).where(
                processor_state.c.processor == processor, processor_state.c.state_key.in_(key_list[i : i + 500])
            )
            if self._for_update:
                q = q.with_for_update()
            out.update({k: json.loads(s) for k, s in conn.execute(q)})
        return out

    def _save_states(self, conn: Connection, proc: Processor, states: dict[str, Any]) -> None:
        """Replace the stored state and every view row of the given keys.

        A batch costs a few statements per table whatever the number of keys: DELETE ... IN per chunk of keys
        (or one executemany for multi-column keys) and one multi-row INSERT.
        """
        keys = sorted(states)
        _delete_keys(conn, processor_state, {"processor": proc.name}, "state_key", keys)
        conn.execute(
            processor_state.insert(),
            [{"processor": proc.name, "state_key": k, "state": json.dumps(states[k], sort_keys=True)} for k in keys],
        )
        if not proc.views:  # a decider with state only
            return
        selectors = [proc.key_values(key) for key in keys]
        columns = list(selectors[0])
        for view in proc.views:
            t = view.table
            if len(columns) == 1:
                _delete_keys(conn, t, {}, columns[0], [sel[columns[0]] for sel in selectors])
            else:  # row-value IN lists defeat the index on some engines: one parameter set per key instead
                delete = t.delete().where(sa.and_(*(t.c[c] == sa.bindparam(f"k_{c}") for c in columns)))
                conn.execute(delete, [{f"k_{c}": sel[c] for c in columns} for sel in selectors])
        inserts: dict[str, list[dict[str, Any]]] = {}
        for key in keys:
            for table, rows in proc.rows(key, states[key]).items():
                inserts.setdefault(table, []).extend(rows)
        tables = {v.table.name: v.table for v in proc.views}
        for table, rows in inserts.items():
            if rows:
                conn.execute(tables[table].insert(), rows)

    def _lock_positions(self, conn: Connection, tps: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        q = sa.select(view_positions.c.topic, view_positions.c.partition, view_positions.c.next_offset).where(
            view_positions.c.projector == self.name
        )
        if self._for_update:
            q = q.with_for_update()
        return {(t, p): o for t, p, o in conn.execute(q) if (t, p) in tps}

    def _save_positions(self, conn: Connection, positions: dict[tuple[str, int], int]) -> None:
        for (topic, partition), offset in positions.items():
            updated = conn.execute(
                view_positions.update()
                .where(
                    view_positions.c.projector == self.name,
                    view_positions.c.topic == topic,
                    view_positions.c.partition == partition,
                )
                .values(next_offset=offset)
            )
            if updated.rowcount == 0:
                conn.execute(
                    view_positions.insert().values(
                        projector=self.name, topic=topic, partition=partition, next_offset=offset
                    )
                )

    def rejects(self, limit: int = 100) -> list[dict[str, Any]]:
        """Records set aside because they are not valid events (without their bytes)."""
        with self.engine.connect() as conn:
            q = sa.select(rejected_records.c.topic, rejected_records.c.partition, rejected_records.c.offset,
                          rejected_records.c.reason).where(rejected_records.c.projector == self.name)
            return [dict(r) for r in conn.execute(q.limit(limit)).mappings()]

    # ------------------------------------------------------------------ outbox

    def pending_outbox(self, limit: int = 1000) -> list[Envelope]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(outbox.c.envelope).where(outbox.c.sent.is_(False)).limit(limit))
            return [Envelope.model_validate_json(r[0]) for r in rows]

    def mark_sent(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        with self.engine.begin() as conn:
            conn.execute(
                outbox.update().where(outbox.c.event_id.in_([str(e.event_id) for e in envelopes])).values(sent=True)
            )

    # ------------------------------------------------------------------ reading

    def dump(self) -> dict[str, list[tuple]]:
        """Every view table's rows, sorted: what equivalence and crash tests compare row for row."""
        out: dict[str, list[tuple]] = {}
        with self.engine.connect() as conn:
            for t in self.view_tables():
                out[t.name] = sorted(tuple(r) for r in conn.execute(sa.select(t)))
        return out

    def count_rows(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                    for t in self.view_tables()}


def _delete_keys(conn: Connection, table: sa.Table, fixed: dict[str, Any], column: str, values: list[Any]) -> None:
    for i in range(0, len(values), _CHUNK):
        where = [table.c[c] == v for c, v in fixed.items()]
        conn.execute(table.delete().where(*where, table.c[column].in_(values[i : i + _CHUNK])))
