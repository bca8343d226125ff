"""The dead-letter store: whatever we could not accept, kept with its original bytes and the reason.

Nothing a hospital sends is dropped: a rejected message lands here, is counted per channel, and can be replayed
once the cause is fixed (a code mapped, a hospital registered, a parser corrected).
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_md = sa.MetaData()
dead_letters = sa.Table(
    "dead_letters",
    _md,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("received_at", sa.String(40), nullable=False, index=True),
    sa.Column("channel", sa.String(32), nullable=False, index=True),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default="open"),  # open | replayed | discarded
    sa.Column("resolved_at", sa.String(40)),
)


@dataclass(frozen=True)
class DeadLetter:
    id: str
    received_at: str
    channel: str
    source: str
    reason: str
    sha256: str
    size: int
    body: bytes
    status: str


class DeadLetterStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _md.create_all(engine)

    def put(self, *, channel: str, source: str, reason: str, body: bytes) -> str:
        letter_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(
                dead_letters.insert().values(
                    id=letter_id,
                    received_at=datetime.now(timezone.utc).isoformat(),
                    channel=channel,
                    source=source[:128],
                    reason=reason,
                    sha256=hashlib.sha256(body).hexdigest(),
                    size=len(body),
                    body=body,
                    status="open",
                )
            )
        return letter_id

    def get(self, letter_id: str) -> DeadLetter | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(dead_letters).where(dead_letters.c.id == letter_id)).first()
        return DeadLetter(**{k: row._mapping[k] for k in DeadLetter.__dataclass_fields__}) if row else None

    def list(self, *, channel: str | None = None, status: str = "open", limit: int = 100) -> list[DeadLetter]:
        q = sa.select(dead_letters).where(dead_letters.c.status == status).order_by(dead_letters.c.received_at)
        if channel:
            q = q.where(dead_letters.c.channel == channel)
        with self.engine.connect() as conn:
            return [DeadLetter(**{k: r._mapping[k] for k in DeadLetter.__dataclass_fields__})
                    for r in conn.execute(q.limit(limit))]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per channel, how many letters in each status."""
        q = sa.select(dead_letters.c.channel, dead_letters.c.status, sa.func.count()).group_by(
            dead_letters.c.channel, dead_letters.c.status
        )
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for channel, status, n in conn.execute(q):
                out.setdefault(channel, {})[status] = n
        return out

    def resolve(self, letter_id: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                dead_letters.update()
                .where(dead_letters.c.id == letter_id)
                .values(status=status, resolved_at=datetime.now(timezone.utc).isoformat())
            )

    def replay(self, letter_id: str, handler: Callable[[bytes, str], object]) -> object:
        """Feed the original bytes to ``handler(body, source)`` again; on success the letter is closed.

        A handler that rejects again files a new letter itself, so this one is closed either way only on success.
        """
        letter = self.get(letter_id)
        if letter is None or letter.status != "open":
            raise KeyError(f"no open dead letter {letter_id}")
        outcome = handler(letter.body, letter.source)
        self.resolve(letter_id, "replayed")
        return outcome
