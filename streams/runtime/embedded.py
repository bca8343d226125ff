"""The embedded runtime: poll the log, apply to the projector, append decided events, commit.

It resumes from the positions the projector stored with its rows, not from the consumer group, so a crash
between the view commit and the group commit loses nothing and repeats nothing. The group's positions are only a
hint for operators, so they are committed at most once a second (each is a durable write to the log's file).

Batches size themselves: a poll takes what is waiting, up to ``batch``, so catching up goes in large batches and
live traffic in a few records each; the events a batch decides are appended right after it
(:class:`OutboxRelay`).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Sequence

from streams.log.port import EventLog, LogRecord, Position
from streams.runtime.outbox import OutboxRelay
from streams.views.projector import Projector

log = logging.getLogger(__name__)


GROUP_COMMIT_EVERY = 1.0  # seconds


class EmbeddedRunner:
    def __init__(self, event_log: EventLog, projector: Projector, topics: Sequence[str], *, batch: int = 1000):
        self.event_log, self.projector, self.topics, self.batch = event_log, projector, list(topics), batch
        projector.check_current()
        self._commit_due = 0.0
        self._last: dict[tuple[str, int], LogRecord] = {}  # the last applied record per partition, to commit
        self.outbox = OutboxRelay(event_log, projector)
        self.consumer = event_log.consumer(projector.name, self.topics)
        self._seek_to_views()
        self.applied = 0

    def _seek_to_views(self) -> None:
        stored = self.projector.positions()
        for topic in self.topics:
            for partition in range(self.event_log.partitions(topic)):
                self.consumer.seek(Position(topic, partition, stored.get((topic, partition), 0)))

    def step(self, timeout: float = 0.2) -> int:
        """One poll-apply-commit round; returns how many records were applied."""
        records = self.consumer.poll(self.batch, timeout)
        if records:
            result = self.outbox.apply(records)
            self.applied += result.applied
            self._last.update(((r.topic, r.partition), r) for r in records)
            self.commit_group(force=False)
        else:
            self.flush_outbox()
        return len(records)

    def commit_group(self, force: bool = True) -> None:
        """Commit everything applied so far as the group's position (a hint: see the module docstring)."""
        if self._last and (force or time.monotonic() >= self._commit_due):
            self.consumer.commit(list(self._last.values()))
            self._last.clear()
            self._commit_due = time.monotonic() + GROUP_COMMIT_EVERY

    def flush_outbox(self) -> int:
        """Mark what batches appended, and append every decided event still pending (see :class:`OutboxRelay`)."""
        return self.outbox.flush()

    def run_until_caught_up(self) -> int:
        # First what an earlier process decided but did not append: no step would otherwise read it back.
        self.flush_outbox()
        total = 0
        while n := self.step(timeout=0):
            total += n
        if total:
            self.commit_group()
        self.flush_outbox()
        return total

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # a bad batch must not kill the runtime; it is retried after a pause
                log.exception("projector step failed; retrying")
                stop.wait(1.0)
                try:  # the failed batch was polled: read it again from where the views are
                    self._seek_to_views()
                except Exception:
                    log.exception("cannot read the views' positions; retrying")
        try:
            self.flush_outbox()
            self.commit_group()
        finally:
            self.consumer.close()
