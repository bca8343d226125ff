"""Accepting events from outside: validate against the catalog, append, or reject into the dead-letter store."""
from __future__ import annotations

from pipelines.jsonbody import load_json_body

import json
from dataclasses import dataclass

from pipelines.deadletter import DeadLetterStore
from schemas.registry import REGISTRY, SchemaError
from streams.log.port import EventLog, Position
from streams.topics import publish

MAX_EVENT_BYTES = 1_000_000


class Rejected(ValueError):
    def __init__(self, reason: str, dead_letter_id: str):
        super().__init__(reason)
        self.reason, self.dead_letter_id = reason, dead_letter_id


@dataclass
class EventIntake:
    log: EventLog
    dead_letters: DeadLetterStore
    channel: str = "event-json"

    def submit(self, body: bytes, source: str, *, file_rejects: bool = True) -> list[Position]:
        """Append one envelope or a JSON array of envelopes (all or nothing); raise :class:`Rejected` otherwise.

        ``file_rejects=False`` is for replaying a dead letter: a body that still fails is not filed a second time.
        """
        try:
            envelopes = self._parse(body)
        except SchemaError as exc:
            letter = "" if not file_rejects else self.dead_letters.put(
                channel=self.channel, source=source, reason=exc.reason, body=body)
            raise Rejected(exc.reason, letter) from None
        return publish(self.log, envelopes)

    @staticmethod
    def _parse(body: bytes) -> list:
        try:
            doc = load_json_body(body, MAX_EVENT_BYTES)
        except ValueError as exc:
            raise SchemaError(str(exc)) from None
        items = doc if isinstance(doc, list) else [doc]
        out = []
        for i, item in enumerate(items):
            try:
                out.append(REGISTRY.parse_bytes(json.dumps(item).encode()))
            except SchemaError as exc:
                prefix = f"event #{i}: " if isinstance(doc, list) else ""
                raise SchemaError(prefix + exc.reason) from None
        return out
