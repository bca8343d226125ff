"""The cache's bytes on disk with an SQLite index: one file per cached response, least recently used evicted first.

Files are written to a temporary name and renamed, and the index row is written after the rename, so a crash
leaves at worst an orphan file, removed by :meth:`CacheStore.reconcile` at the next start.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
md = sa.MetaData()
entries = sa.Table(
    "cache_entries", md,
    sa.Column("key", sa.String(64), primary_key=True),  # SHA-256 of the request key (which may hold a name)
    sa.Column("file", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("headers", sa.Text, nullable=False),  # JSON: content-type, etag, ...
    sa.Column("study_uid", sa.String(64), index=True),
    sa.Column("fetched_at", sa.Float, nullable=False),
    sa.Column("last_used", sa.Float, nullable=False, index=True),
)
views = sa.Table(  # audit outbox: views served here, until the centre has recorded them
    "cache_views", md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_uid", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("viewed_at", sa.String(40), nullable=False),
)


@dataclass(frozen=True)
class Entry:
    key: str
    path: Path
    size: int
    status: int
    headers: dict
    study_uid: str | None
    fetched_at: float


class CacheStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.engine = sa.create_engine(f"sqlite:///{(self.root / 'cache.sqlite').resolve()}",
                                       connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(self.engine, "connect")
        def _wal(conn, _record):
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")

        md.create_all(self.engine)
        self._lock = threading.Lock()
        self.evictions = 0
        self.reconcile()

    def temp_path(self) -> Path:
        return self.blobs / f".tmp-{uuid.uuid4().hex}"

    @staticmethod
    def file_name(key: str) -> str:
        return key if _HEX64.match(key) else hashlib.sha256(key.encode()).hexdigest()

    def get(self, key: str, *, touch: bool = True) -> Entry | None:
        key = self.file_name(key)  # request keys hold query strings (names): only their hash is kept
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(entries).where(entries.c.key == key)).first()
        if row is None:
            return None
        path = self.blobs / row.file
        if not path.exists():  # removed behind our back: forget it
            self._delete([key])
            return None
        if touch:
            with self._lock, self.engine.begin() as conn:
                conn.execute(entries.update().where(entries.c.key == key).values(last_used=time.time()))
        return Entry(row.key, path, row.size, row.status, json.loads(row.headers), row.study_uid, row.fetched_at)

    def put_file(self, key: str, tmp: Path, *, status: int, headers: dict, study_uid: str | None) -> Entry:
        """Adopt a fully written temporary file as the entry for ``key``, then evict down to the byte budget."""
        name = key = self.file_name(key)
        final = self.blobs / name
        os.replace(tmp, final)
        size, now = final.stat().st_size, time.time()
        with self._lock, self.engine.begin() as conn:
            conn.execute(entries.delete().where(entries.c.key == key))
            conn.execute(entries.insert().values(key=key, file=name, size=size, status=status,
                                                 headers=json.dumps(headers), study_uid=study_uid, fetched_at=now,
                                                 last_used=now))
        self.evict(keep=key)
        return Entry(key, final, size, status, headers, study_uid, now)

    def put_bytes(self, key: str, data: bytes, **kw) -> Entry:
        tmp = self.temp_path()
        tmp.write_bytes(data)
        return self.put_file(key, tmp, **kw)

    def refreshed(self, key: str) -> None:
        key = self.file_name(key)
        with self._lock, self.engine.begin() as conn:
            conn.execute(entries.update().where(entries.c.key == key).values(fetched_at=time.time()))

    def total_bytes(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.coalesce(sa.func.sum(entries.c.size), 0))).scalar_one()

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(entries)).scalar_one()

    def evict(self, keep: str | None = None) -> int:
        """Drop least recently used entries until the cache fits its budget (``keep`` goes last)."""
        dropped = []
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(entries.c.size), 0))).scalar_one()
            if total <= self.max_bytes:
                return 0
            for key, size in conn.execute(sa.select(entries.c.key, entries.c.size).order_by(
                    (entries.c.key == (keep or "")).asc(), entries.c.last_used)):
                if total <= self.max_bytes:
                    break
                dropped.append(key)
                total -= size
        self._delete(dropped)
        self.evictions += len(dropped)
        return len(dropped)

    def drop(self, study_uids: list[str] | None = None) -> int:
        """Forget some studies (or everything, ``None``); returns how many entries went."""
        q = sa.select(entries.c.key)
        if study_uids is not None:
            q = q.where(entries.c.study_uid.in_(study_uids))
        with self.engine.connect() as conn:
            keys = [k for (k,) in conn.execute(q)]
        self._delete(keys)
        return len(keys)

    def _delete(self, keys: list[str]) -> None:
        if not keys:
            return
        with self._lock, self.engine.begin() as conn:
            for key in keys:
                (self.blobs / self.file_name(key)).unlink(missing_ok=True)
            conn.execute(entries.delete().where(entries.c.key.in_(keys)))

    def reconcile(self) -> None:
        """At start: forget rows whose file is gone, delete files no row names (and leftovers of a crash)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(entries.c.key, entries.c.file)).all()
        names = {f for _, f in rows}
        self._delete([k for k, f in rows if not (self.blobs / f).exists()])
        for path in self.blobs.iterdir():
            if path.name not in names:
                path.unlink(missing_ok=True)
        self.evict()

    # ------------------------------------------------------------------ audit outbox

    def record_view(self, study_uid: str, actor: str, role: str, viewed_at: str) -> None:
        with self._lock, self.engine.begin() as conn:
            conn.execute(views.insert().values(study_uid=study_uid, actor=actor, role=role, viewed_at=viewed_at))

    def pending_views(self, limit: int = 1000) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(views).order_by(views.c.id).limit(limit))]

    def views_sent(self, ids: list[int]) -> None:
        with self._lock, self.engine.begin() as conn:
            conn.execute(views.delete().where(views.c.id.in_(ids)))
