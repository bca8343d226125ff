"""Apply log records to processors and write their state, view rows and log positions in one transaction.

Because the positions commit with the rows, a crash at any point leaves the views either before or after a
whole batch, and the runtime resumes from the stored positions: no record is applied twice. A copy of an event
already applied (same ``event_id``, another offset) is skipped too. Events a processor
decides go to an outbox in the same transaction and are appended to the log afterwards (idempotently, by
``event_id``).

Decided events are also applied in the transaction that decides them, right after the event that caused them:
a doctor's duplicate candidate is readable the moment its order's batch commits, not one more round trip
through the log later (on Kafka that trip was most of the latency). That holds for events bound for their
cause's own partition (same topic and key), whose copy on the log follows the cause there and is then skipped
like any copy; an event for another partition is applied when its copy is read, as before. Decisions are
deterministic (ids derived from the cause), so the views do not depend on where batches start and end, and a
rebuild from the log decides and applies the same events at the same places; any other reader of the log still
sees every decided event.

Durability of the views: on SQLite they run in WAL mode with ``synchronous=NORMAL`` (``wanying.wiring.make_engine``).
That is safe here, unlike for the log: a commit is atomic in either mode, and NORMAL only means that a power cut
(not a process crash) may lose the last commits. Those take their positions with them, so the views come back
as they were a few batches earlier, never half-written, and the runtime re-reads those records from the log,
which keeps them (the log's own fsync policy is separate: ``full`` by default). Decided events that had already
been appended are decided again with the same ids and not appended twice; the views are derived data in any case
(``wanying views rebuild``).

Speed: a batch costs a fixed number of statements per table, not per record (see :class:`_DriverSql`), and the
runtimes size batches by what is waiting: large while catching up, a few records when live. Only the states and
rows that changed are written (:meth:`Projector._save_states`): every row written costs a page in each index of
its table, whatever the size of the batch. That needs the stored rows to come from the same code, so views carry
the version of each processor that built them and the runtimes refuse others (:class:`StaleViews`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import msgspec
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

#: Which version of each processor built these views (see ``Processor.version``).
processor_versions = sa.Table(
    "processor_versions",
    metadata,
    sa.Column("projector", sa.String(64), primary_key=True),
    sa.Column("processor", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

BOOKKEEPING = (processor_state, view_positions, outbox, applied_events, rejected_records, processor_versions)
#: How many generations of decided events one transaction applies (a decided event deciding again); deeper ones
#: are applied when their copies are read back from the log.
CASCADE_DEPTH = 4
_CHUNK = 500  # keys per DELETE ... IN: well under SQLite's 32766 bound parameters
# States are JSON text with sorted keys; msgspec reads and writes it several times faster than the json module,
# which took a third of a live batch's time.
_decode = msgspec.json.decode
_encode = msgspec.json.Encoder(order="sorted").encode


class StaleViews(RuntimeError):
    """The views were built by other processor versions than this release's; they must be rebuilt."""


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
        self._sql = _DriverSql(engine.dialect, for_update=self._for_update)

    # ------------------------------------------------------------------ schema

    def view_tables(self) -> list[sa.Table]:
        return [v.table for p in self.processors for v in p.views]

    def create(self) -> None:
        """Create the tables; views that hold nothing yet are stamped with this release's processor versions."""
        metadata.create_all(self.engine, tables=[*self.view_tables(), *BOOKKEEPING])
        with self.engine.begin() as conn:
            if conn.execute(sa.select(view_positions.c.topic).where(view_positions.c.projector == self.name)
                            .limit(1)).first() is None:
                conn.execute(processor_versions.delete().where(processor_versions.c.projector == self.name))
                conn.execute(processor_versions.insert(), [
                    {"projector": self.name, "processor": p.name, "version": p.version} for p in self.processors])

    def stale(self) -> list[str]:
        """Why these views cannot be applied to by this release (empty when they can)."""
        with self.engine.connect() as conn:
            built = dict(conn.execute(sa.select(processor_versions.c.processor, processor_versions.c.version)
                                      .where(processor_versions.c.projector == self.name)).all())
        out = []
        for p in self.processors:
            if p.name not in built:
                out.append(f"{p.name}: not built into these views")
            elif built[p.name] != p.version:
                out.append(f"{p.name}: built by version {built[p.name]}, this release has {p.version}")
        return out

    def check_current(self) -> None:
        """Refuse views built by other processor versions: applying to them would leave stale rows."""
        if problems := self.stale():
            raise StaleViews("the views were built by other processor versions (" + "; ".join(problems)
                             + "): stop the runtime and run `wanying views rebuild`")

    def drop(self) -> None:
        """Drop every view and the bookkeeping, so a replay from offset 0 rebuilds them."""
        metadata.drop_all(self.engine, tables=[*self.view_tables(), *BOOKKEEPING])

    def holds(self, event_ids: Iterable[str]) -> set[str]:
        """Which of these events the views hold, wherever they were applied from (a decided event is applied with
        its cause, before its copy on the log is read)."""
        ids = sorted(set(event_ids))
        out: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(ids), _CHUNK):
                out.update(self._sql.applied(conn, applied_events, self.name, ids[i : i + _CHUNK]))
        return out

    def positions(self) -> dict[tuple[str, int], int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(view_positions.c.topic, view_positions.c.partition, view_positions.c.next_offset).where(
                    view_positions.c.projector == self.name
                )
            )
            return {(t, p): o for t, p, o in rows}

    # ------------------------------------------------------------------ apply

    def apply(self, records: Sequence[LogRecord], *, sent: Sequence[str] = ()) -> ApplyResult:
        """Apply a batch in one transaction; ``sent``: ids of decided events appended since, marked in it too."""
        result = ApplyResult()
        if not records:
            return result
        with self.engine.begin() as conn:
            if sent:
                self._mark_sent(conn, sent)
            positions = self._lock_positions(conn, {(r.topic, r.partition) for r in records})
            fresh: list[tuple[str, Envelope]] = []
            rejected: list[tuple] = []
            for r in records:
                tp = (r.topic, r.partition)
                if r.offset < positions.get(tp, 0):
                    result.skipped += 1
                    continue
                positions[tp] = r.offset + 1
                try:
                    event = REGISTRY.validate(r.envelope())
                except (ValueError, SchemaError) as exc:  # pydantic's ValidationError is a ValueError
                    rejected.append((self.name, r.topic, r.partition, r.offset, str(exc)[:2000], r.value))
                    continue
                fresh.append((str(event.event_id), event))
            if rejected:
                result.rejected = len(rejected)
                self._sql.insert(conn, rejected_records, rejected_records.c.keys(), rejected)
            events = self._first_copies(conn, fresh, result)
            result.applied = len(events)
            result.decided = self._run(conn, events)
            if result.decided:
                self._sql.insert(conn, outbox, ("event_id", "envelope", "sent"),
                                 [(str(e.event_id), e.to_bytes().decode(), False) for e in result.decided])
            self._sql.upsert(conn, view_positions, ("projector", "topic", "partition"), ("next_offset",),
                             [(self.name, t, p, o) for (t, p), o in positions.items()])
        return result

    def _first_copies(self, conn: Connection, fresh: list[tuple[str, Envelope]], result: ApplyResult) -> list[Envelope]:
        """Drop records whose event was applied before (at another offset) or earlier in this batch: one
        INSERT ... ON CONFLICT DO NOTHING RETURNING per chunk says which ids are new."""
        unique = list(dict.fromkeys(i for i, _ in fresh))
        new: set[str] = set()
        for i in range(0, len(unique), _CHUNK):
            new.update(self._sql.insert_new(conn, applied_events, self.name, unique[i : i + _CHUNK]))
        first: list[Envelope] = []
        for event_id, event in fresh:
            if event_id in new:
                new.discard(event_id)
                first.append(event)
            else:
                result.skipped += 1
        return first

    def _run(self, conn: Connection, events: list[Envelope]) -> list[Envelope]:
        """Every processor over the batch, event by event. What an event decides is applied right after it, before
        the next event of the batch, as if read from the log there; the decided events are returned."""
        states: dict[str, dict[str, Any]] = {}
        stored: dict[str, dict[str, str]] = {}  # the stored states' text, to write only what changes
        looked_up: dict[str, set[str]] = {}
        for proc in self.processors:
            keys = {k for e in events if e.type in proc.handles and (k := proc.state_key(e)) is not None}
            stored[proc.name] = self._load_states(conn, proc.name, keys) if keys else {}
            states[proc.name] = {k: _decode(t) for k, t in stored[proc.name].items()}
            looked_up[proc.name] = keys
        decided: list[Envelope] = []
        todo = [(e, 0) for e in reversed(events)]  # a stack: the next event to apply is on top
        while todo:
            event, depth = todo.pop()
            caused: list[Envelope] = []
            for proc in self.processors:
                if event.type not in proc.handles or (key := proc.state_key(event)) is None:
                    continue
                mine = states[proc.name]
                if key not in looked_up[proc.name]:  # a decided event's state, not loaded with the batch
                    looked_up[proc.name].add(key)
                    found = self._load_states(conn, proc.name, {key})
                    mine.update((k, _decode(t)) for k, t in found.items())
                    stored[proc.name].update(found)
                state = mine[key] if key in mine else proc.initial()
                caused.extend(proc.decide(state, event))
                mine[key] = proc.evolve(state, event)
            if not caused:
                continue
            decided.extend(caused)
            # Only events bound for the cause's own partition: their copy follows the cause there, so applying them
            # right after it is the same wherever batches and other partitions' records fall. Others wait for theirs.
            topic = REGISTRY.topic_of(event.type)
            here = [e for e in caused if e.key == event.key and REGISTRY.topic_of(e.type) == topic]
            if here and depth < CASCADE_DEPTH:
                new = set(self._sql.insert_new(conn, applied_events, self.name,
                                               list(dict.fromkeys(str(e.event_id) for e in here))))
                first = []
                for e in here:
                    if str(e.event_id) in new:
                        new.discard(str(e.event_id))
                        first.append((e, depth + 1))
                todo.extend(reversed(first))
        for proc in self.processors:
            if states[proc.name]:
                self._save_states(conn, proc, states[proc.name], stored[proc.name])
        return decided

    def _load_states(self, conn: Connection, processor: str, keys: set[str]) -> dict[str, str]:
        """The stored states of these keys, as their JSON text."""
        out: dict[str, str] = {}
        key_list = sorted(keys)
        for i in range(0, len(key_list), _CHUNK):
            out.update(self._sql.load_states(conn, processor, key_list[i : i + _CHUNK]))
        return out

    def _save_states(self, conn: Connection, proc: Processor, states: dict[str, Any], stored: dict[str, str]) -> None:
        """Store the states that changed, and write only the view rows that changed.

        A key's stored rows are ``proc.rows`` of its stored state (rows are only ever written from their state),
        so rendering the old state again says which rows to delete, which to insert and which are already there.
        Rewriting a person's unchanged rows touched a page per row in every index of the table: most of what a
        live order wrote. A batch costs a few statements per table whatever the number of keys: one executemany
        each for the states, the deletes (by primary key) and the inserts of a table.
        """
        texts = {k: _encode(v).decode() for k, v in states.items()}
        changed = sorted(k for k, text in texts.items() if stored.get(k) != text)
        if not changed:
            return
        self._sql.upsert(conn, processor_state, ("processor", "state_key"), ("state",),
                         [(proc.name, k, texts[k]) for k in changed])
        if not proc.views:  # a decider with state only
            return
        tables = {v.table.name: v.table for v in proc.views}
        primary_keys = {name: tuple(c.name for c in t.primary_key.columns) for name, t in tables.items()}
        deletes: dict[str, list[tuple]] = {}
        inserts: dict[str, list[dict[str, Any]]] = {}
        for key in changed:
            new = proc.rows(key, states[key])
            old = proc.rows(key, _decode(stored[key])) if key in stored else {}
            for name in new.keys() | old.keys():
                pk = primary_keys[name]
                before = {tuple(r[c] for c in pk): r for r in old.get(name, ())}
                for row in new.get(name, ()):
                    row_key = tuple(row[c] for c in pk)
                    was = before.pop(row_key, None)
                    if was == row:
                        continue
                    if was is not None:
                        deletes.setdefault(name, []).append(row_key)
                    inserts.setdefault(name, []).append(row)
                deletes.setdefault(name, []).extend(before)
        for name, keys in deletes.items():
            if keys:
                self._sql.delete_keys(conn, tables[name], primary_keys[name], keys)
        for name, rows in inserts.items():
            by_columns: dict[tuple[str, ...], list[tuple]] = {}
            for row in rows:
                by_columns.setdefault(tuple(row), []).append(tuple(row.values()))
            for columns, values in by_columns.items():
                self._sql.insert(conn, tables[name], columns, values)

    def _lock_positions(self, conn: Connection, tps: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        q = sa.select(view_positions.c.topic, view_positions.c.partition, view_positions.c.next_offset).where(
            view_positions.c.projector == self.name
        )
        if self._for_update:
            q = q.with_for_update()
        return {(t, p): o for t, p, o in conn.execute(q) if (t, p) in tps}

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
        self.mark_sent_ids([str(e.event_id) for e in envelopes])

    def mark_sent_ids(self, event_ids: Sequence[str]) -> None:
        if event_ids:
            with self.engine.begin() as conn:
                self._mark_sent(conn, event_ids)

    def _mark_sent(self, conn: Connection, event_ids: Sequence[str]) -> None:
        ids = list(event_ids)
        for i in range(0, len(ids), _CHUNK):
            conn.execute(outbox.update().where(outbox.c.event_id.in_(ids[i : i + _CHUNK])).values(sent=True))

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


class _DriverSql:
    """The hot statements as driver SQL, run through the DB-API cursor (``executemany`` for many rows) with
    plain tuples: SQLAlchemy's per-row parameter processing cost more than SQLite's own work on large batches.
    Only portable SQL: ``ON CONFLICT`` upserts and ``RETURNING`` (SQLite 3.35+, PostgreSQL)."""

    def __init__(self, dialect: sa.engine.Dialect, *, for_update: bool) -> None:
        self.mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.quote = dialect.identifier_preparer.quote
        self.for_update = " FOR UPDATE" if for_update else ""
        self._text: dict[tuple, str] = {}

    def _cols(self, columns: Sequence[str]) -> str:
        return ", ".join(self.quote(c) for c in columns)

    def _marks(self, n: int) -> str:
        return ", ".join([self.mark] * n)

    def _cached(self, key: tuple, build) -> str:
        text = self._text.get(key)
        if text is None:
            text = self._text[key] = build()
        return text

    def insert(self, conn: Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple]) -> None:
        sql = self._cached(("insert", table.name, tuple(columns)), lambda: (
            f"INSERT INTO {self.quote(table.name)} ({self._cols(columns)}) VALUES ({self._marks(len(columns))})"))
        conn.exec_driver_sql(sql, rows)

    def upsert(self, conn: Connection, table: sa.Table, keys: Sequence[str], values: Sequence[str],
               rows: list[tuple]) -> None:
        if not rows:
            return
        sql = self._cached(("upsert", table.name, tuple(keys), tuple(values)), lambda: (
            f"INSERT INTO {self.quote(table.name)} ({self._cols([*keys, *values])}) "
            f"VALUES ({self._marks(len(keys) + len(values))}) ON CONFLICT ({self._cols(keys)}) DO UPDATE SET "
            + ", ".join(f"{self.quote(c)} = excluded.{self.quote(c)}" for c in values)))
        conn.exec_driver_sql(sql, rows)

    def insert_new(self, conn: Connection, table: sa.Table, projector: str, event_ids: list[str]) -> list[str]:
        """Insert ``(projector, event_id)`` rows; returns the ids that were not there yet."""
        if not event_ids:
            return []
        sql = (f"INSERT INTO {self.quote(table.name)} (projector, event_id) VALUES "
               + ", ".join([f"({self.mark}, {self.mark})"] * len(event_ids))
               + " ON CONFLICT DO NOTHING RETURNING event_id")
        params = tuple(v for i in event_ids for v in (projector, i))
        return [row[0] for row in conn.exec_driver_sql(sql, params)]

    def applied(self, conn: Connection, table: sa.Table, projector: str, event_ids: list[str]) -> list[str]:
        sql = (f"SELECT event_id FROM {self.quote(table.name)} WHERE projector = {self.mark} AND event_id IN "
               f"({self._marks(len(event_ids))})")
        return [row[0] for row in conn.exec_driver_sql(sql, (projector, *event_ids))]

    def load_states(self, conn: Connection, processor: str, keys: list[str]) -> list[tuple[str, str]]:
        sql = (f"SELECT state_key, state FROM processor_state WHERE processor = {self.mark} AND state_key IN "
               f"({self._marks(len(keys))}){self.for_update}")
        return list(conn.exec_driver_sql(sql, (processor, *keys)))

    def delete_keys(self, conn: Connection, table: sa.Table, columns: tuple[str, ...], keys: list[tuple]) -> None:
        if len(columns) == 1:
            for i in range(0, len(keys), _CHUNK):
                chunk = [k[0] for k in keys[i : i + _CHUNK]]
                conn.exec_driver_sql(f"DELETE FROM {self.quote(table.name)} WHERE {self.quote(columns[0])} IN "
                                     f"({self._marks(len(chunk))})", tuple(chunk))
        else:  # row-value IN lists defeat the index on some engines: one parameter set per key instead
            sql = self._cached(("delete", table.name, columns), lambda: (
                f"DELETE FROM {self.quote(table.name)} WHERE "
                + " AND ".join(f"{self.quote(c)} = {self.mark}" for c in columns)))
            conn.exec_driver_sql(sql, keys)
