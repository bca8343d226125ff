"""The embedded runtime: poll the log, apply to the projector, append decided events, commit.

It resumes from the positions the projector stored with its rows, not from the consumer group, so a crash
between the view commit and the group commit loses nothing and repeats nothing.
"""
from __future__ import annotations

import logging
import threading
from typing import Sequence

from streams.log.port import EventLog, Position
from streams.topics import publish
from streams.views.projector import Projector

log = logging.getLogger(__name__)


class EmbeddedRunner:
    def __init__(self, event_log: EventLog, projector: Projector, topics: Sequence[str], *, batch: int = 1000):
        self.event_log, self.projector, self.topics, self.batch = event_log, projector, list(topics), batch
        self.consumer = event_log.consumer(projector.name, self.topics)
        stored = projector.positions()
        for topic in self.topics:
            for partition in range(event_log.partitions(topic)):
                self.consumer.seek(Position(topic, partition, stored.get((topic, partition), 0)))
        self.applied = 0

    def step(self, timeout: float = 0.2) -> int:
        """One poll-apply-commit round; returns how many records were applied."""
        records = self.consumer.poll(self.batch, timeout)
        if records:
            result = self.projector.apply(records)
            self.applied += result.applied
        self.flush_outbox()
        if records:
            self.consumer.commit(records)
        return len(records)

    def flush_outbox(self) -> int:
        """Append every decided event not yet on the log (a batch can decide more than one page of them)."""
        sent = 0
        while pending := self.projector.pending_outbox():
            publish(self.event_log, pending)
            self.projector.mark_sent(pending)
            sent += len(pending)
        return sent

    def run_until_caught_up(self) -> int:
        # First what an earlier process decided but did not append: no step would otherwise read it back.
        self.flush_outbox()
        total = 0
        while n := self.step(timeout=0):
            total += n
        return total

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # a bad batch must not kill the runtime; it is retried after a pause
                log.exception("projector step failed; retrying")
                stop.wait(1.0)
        self.consumer.close()
