"""The embedded log: one SQLite file in WAL mode.

Durability: ``synchronous=FULL`` (the default here) fsyncs the WAL at every commit, so an append that returned
survives a power cut; ``normal`` survives a crash of the process but may lose the last commits on power loss.
Appends are batched in one transaction, so the fsync cost is paid per batch, not per event.
"""
from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from schemas.envelope import Envelope
from streams.log.port import Consumer, EventLog, LogRecord, Position, partition_for, positions_after

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS heads (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    event_id BLOB NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (topic, partition, offset)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS records_event_id ON records (event_id);
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, partition)) WITHOUT ROWID;
"""

FSYNC = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}


class SqliteLog(EventLog):
    def __init__(self, path: str | Path, *, fsync: str = "full") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._appended = threading.Condition(self._lock)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={FSYNC[fsync]}")
        self._db.executescript(_SCHEMA)
        # Readers get their own connection: on the writer's, they would see an append before it commits (and
        # after it rolls back). In WAL mode they never block the writer.
        self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._read_lock = threading.Lock()
        self._partitions: dict[str, int] = dict(self._query("SELECT topic, partitions FROM topics"))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------ topics

    def create_topic(self, topic: str, partitions: int) -> None:
        with self._lock:
            existing = self._partitions.get(topic)
            if existing is not None:
                if existing != partitions:
                    raise ValueError(f"topic {topic} exists with {existing} partitions, not {partitions}")
                return
            with self._transaction():
                self._db.execute("INSERT OR IGNORE INTO topics VALUES (?, ?)", (topic, partitions))
                # Another process may have created it first, with another count.
                (stored,) = self._db.execute("SELECT partitions FROM topics WHERE topic = ?", (topic,)).fetchone()
                self._db.executemany(
                    "INSERT OR IGNORE INTO heads VALUES (?, ?, 0)", [(topic, p) for p in range(stored)]
                )
            self._partitions[topic] = stored
            if stored != partitions:
                raise ValueError(f"topic {topic} exists with {stored} partitions, not {partitions}")

    def partitions(self, topic: str) -> int:
        if topic not in self._partitions:
            rows = self._query("SELECT partitions FROM topics WHERE topic = ?", (topic,))
            if not rows:
                raise KeyError(f"no topic {topic!r}")
            self._partitions[topic] = rows[0][0]
        return self._partitions[topic]

    # ------------------------------------------------------------------ append and read

    def append(self, topic: str, envelopes: Sequence[Envelope]) -> list[Position]:
        n = self.partitions(topic)
        if not envelopes:
            return []
        rows = [(e.event_id.bytes, e.key, e.to_bytes()) for e in envelopes]
        with self._transaction():
            positions = self._append_locked(topic, n, rows)
        with self._appended:
            self._appended.notify_all()
        return positions

    def _append_locked(self, topic: str, n: int, rows: list[tuple[bytes, str, bytes]]) -> list[Position]:
        existing = self._existing(rows)
        heads = dict(self._db.execute("SELECT partition, next_offset FROM heads WHERE topic = ?", (topic,)))
        out: list[Position] = []
        new: list[tuple] = []
        for event_id, key, value in rows:
            if event_id in existing:
                out.append(existing[event_id])
                continue
            p = partition_for(key, n)
            pos = Position(topic, p, heads[p])
            heads[p] += 1
            existing[event_id] = pos
            out.append(pos)
            new.append((topic, p, pos.offset, event_id, key, value))
        if new:
            self._db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", new)
            self._db.executemany(
                "UPDATE heads SET next_offset = ? WHERE topic = ? AND partition = ?",
                [(o, topic, p) for p, o in heads.items()],
            )
        return out

    def _existing(self, rows: list[tuple[bytes, str, bytes]]) -> dict[bytes, Position]:
        found: dict[bytes, Position] = {}
        ids = [r[0] for r in rows]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for eid, t, p, o in self._db.execute(
                f"SELECT event_id, topic, partition, offset FROM records WHERE event_id IN ({marks})", chunk
            ):
                found[eid] = Position(t, p, o)
        return found

    def read(self, topic: str, partition: int, offset: int, limit: int = 1000) -> list[LogRecord]:
        rows = self._query(
            "SELECT offset, key, event_id, value FROM records WHERE topic = ? AND partition = ? AND offset >= ?"
            " ORDER BY offset LIMIT ?",
            (topic, partition, offset, limit),
        )
        return [LogRecord(topic, partition, o, k, str(uuid.UUID(bytes=e)), v) for o, k, e, v in rows]

    def end_offsets(self, topic: str) -> dict[int, int]:
        return dict(self._query("SELECT partition, next_offset FROM heads WHERE topic = ?", (topic,)))

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    # ------------------------------------------------------------------ groups

    def consumer(self, group: str, topics: Iterable[str]) -> Consumer:
        return SqliteConsumer(self, group, list(topics))

    def committed(self, group: str, topic: str) -> dict[int, int]:
        sql = "SELECT partition, offset FROM group_offsets WHERE grp = ? AND topic = ?"
        return dict(self._query(sql, (group, topic)))

    def _commit(self, group: str, positions: dict[tuple[str, int], int]) -> None:
        with self._transaction():
            self._db.executemany(
                "INSERT INTO group_offsets VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, partition)"
                " DO UPDATE SET offset = excluded.offset",
                [(group, t, p, o) for (t, p), o in positions.items()],
            )

    def wait_for_append(self, timeout: float) -> None:
        """Wake when this process appends, or after ``timeout`` (appends by other processes are seen then)."""
        with self._appended:
            self._appended.wait(timeout)

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._db.close()
            self._reader.close()


class SqliteConsumer(Consumer):
    """A group member that owns every partition of its topics (the embedded runtime is one process)."""

    def __init__(self, log: SqliteLog, group: str, topics: list[str]) -> None:
        self.log, self.group, self.topics = log, group, topics
        self._next: dict[tuple[str, int], int] = {}
        for topic in topics:
            committed = log.committed(group, topic)
            for p in range(log.partitions(topic)):
                self._next[(topic, p)] = committed.get(p, 0)
        self._polled: dict[tuple[str, int], int] = {}
        self._cursor = 0

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[LogRecord]:
        deadline = time.monotonic() + timeout
        while True:
            out = self._fetch(max_records)
            if out or time.monotonic() >= deadline:
                return out
            self.log.wait_for_append(min(0.05, max(0.0, deadline - time.monotonic())))

    def _fetch(self, max_records: int) -> list[LogRecord]:
        slots = list(self._next)
        out: list[LogRecord] = []
        # Rotate the starting partition so a busy partition cannot starve the others.
        for i in range(len(slots)):
            tp = slots[(self._cursor + i) % len(slots)]
            room = max_records - len(out)
            if room <= 0:
                break
            got = self.log.read(tp[0], tp[1], self._next[tp], room)
            if got:
                self._next[tp] = got[-1].offset + 1
                self._polled[tp] = got[-1].offset + 1
                out.extend(got)
        self._cursor = (self._cursor + 1) % max(1, len(slots))
        return out

    def commit(self, records: Sequence[LogRecord] | None = None) -> None:
        positions = dict(self._polled) if records is None else positions_after(records)
        if positions:
            self.log._commit(self.group, positions)

    def seek(self, position: Position) -> None:
        self._next[(position.topic, position.partition)] = position.offset

    def close(self) -> None:
        pass
