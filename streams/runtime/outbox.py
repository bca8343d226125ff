"""Append what a batch decided once the batch has committed, for either runtime.

The decided events of a batch are appended straight from the apply result, and marked sent in the outbox inside
the *next* batch's transaction: one commit per batch, not two (a separate commit of the marks cost as much as a
small live batch). Until marked they still read as pending, so a process that stops uncleanly appends them again
on its next start; the log and the projector keep one copy of an event id, so that is harmless. :meth:`flush`
marks what is left and appends whatever an earlier process left pending (at start, on a timer, at a clean stop).
"""
from __future__ import annotations

from typing import Sequence

from streams.log.port import EventLog, LogRecord
from streams.topics import publish
from streams.views.projector import ApplyResult, Projector


class OutboxRelay:
    def __init__(self, event_log: EventLog, projector: Projector) -> None:
        self.event_log, self.projector = event_log, projector
        self._unmarked: list[str] = []  # appended, not yet marked sent

    def apply(self, records: Sequence[LogRecord]) -> ApplyResult:
        """Apply a batch (marking the previous batch's appended events in its transaction), then append what it
        decided."""
        if not records:
            return ApplyResult()
        result = self.projector.apply(records, sent=self._unmarked)
        self._unmarked = []
        if result.decided:
            publish(self.event_log, result.decided)
            self._unmarked = [str(e.event_id) for e in result.decided]
        return result

    def mark(self) -> None:
        if self._unmarked:
            self.projector.mark_sent_ids(self._unmarked)
            self._unmarked = []

    def flush(self) -> int:
        """Mark what was appended, then append every decided event still pending; returns how many."""
        self.mark()
        sent = 0
        while pending := self.projector.pending_outbox():
            publish(self.event_log, pending)
            self.projector.mark_sent(pending)
            sent += len(pending)
        return sent
