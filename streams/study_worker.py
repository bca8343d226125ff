"""An edge that acts on every completed study: a consumer of ``StudyCompleted`` in its own group.

Work that reads pixels (QC scoring, bundle building) is not a pure processor, so it runs here. The worker commits
after its work and the events it appends, so a crash repeats work and never skips it; the events carry
deterministic ids, so a repeat adds nothing. A completion whose images cannot be used is set aside as a dead letter
with the reason and never stops the worker; a failure of the log or store seeks back and retries the batch.
"""
from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

from schemas.envelope import Envelope
from schemas.registry import REGISTRY, SchemaError
from streams.log.port import EventLog, LogRecord, Position
from streams.topics import publish

log = logging.getLogger(__name__)

#: What a completion's own content can cause (unreadable images, no images here, a bad record): dead-lettered.
#: Anything else (the log or the store is down) is retried.
UNUSABLE = (ValueError, SchemaError, LookupError, OSError)


class CompletedStudyWorker(ABC):
    group: str
    channel: str  # dead letters of this worker
    doing: str  # "QC could not score", in the dead letter's reason
    stats: Any  # a dataclass with at least ``failed``

    def __init__(self, event_log: EventLog, dead_letters=None, *, batch: int, group: str | None = None) -> None:
        self.event_log, self.dead_letters, self.batch = event_log, dead_letters, batch
        self.group = group or self.group
        self.consumer = event_log.consumer(self.group, [REGISTRY.topic_of("StudyCompleted")])

    @abstractmethod
    def on_completed(self, completed: Envelope) -> list[Envelope]:
        """Act on one completion; return the events to append. Raise one of ``UNUSABLE`` to set it aside."""

    def handle(self, record: LogRecord) -> list[Envelope]:
        if b"StudyCompleted" not in record.value:  # cheap filter; the type is checked after parsing
            return []
        try:
            env = REGISTRY.validate(record.envelope())
            if env.type != "StudyCompleted":
                return []
            return self.on_completed(env)
        except UNUSABLE as exc:  # one bad study never stops the worker
            self.stats.failed += 1
            reason = f"{self.doing} this completed study: {type(exc).__name__}: {exc}"[:1000]
            log.warning(reason)
            if self.dead_letters is not None:
                self.dead_letters.put(channel=self.channel, source=self.group, reason=reason, body=record.value)
            return []

    def step(self, timeout: float = 0.5) -> int:
        records = self.consumer.poll(self.batch, timeout)
        if not records:
            return 0
        try:
            events = [e for r in records for e in self.handle(r)]
            if events:
                publish(self.event_log, events)
        except Exception:  # go back to the first uncommitted record, so the batch is tried again
            for tp in dict.fromkeys((r.topic, r.partition) for r in records):
                self.consumer.seek(Position(*tp, min(r.offset for r in records if (r.topic, r.partition) == tp)))
            raise
        self.consumer.commit(records)
        return len(records)

    def run_until_idle(self, max_seconds: float = 600):
        deadline = time.monotonic() + max_seconds
        while self.step(timeout=0) and time.monotonic() < deadline:
            pass
        return self.stats

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # the log or store hiccupped: retry after a pause, never die
                log.exception("%s step failed; retrying", self.group)
                stop.wait(1.0)
        self.consumer.close()


def lag(event_log: EventLog, group: str) -> int:
    """Records on the log a worker group has not yet handled (0: every completion so far is done)."""
    topic = REGISTRY.topic_of("StudyCompleted")
    committed = event_log.committed(group, topic)
    return sum(end - committed.get(p, 0) for p, end in event_log.end_offsets(topic).items())
