"""Conversations as events, and the live conversations a server keeps between a patient's messages.

`started_event` and `turn_event` are pure: a dialogue value in, an event payload out (the text encrypted under
the "conversation" context). `Conversations` holds the dialogue values of recent conversations in memory, bounded;
the log is the record, so losing one (a restart) only means the patient starts a new conversation.
"""
from __future__ import annotations

import json

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace

from interpret.dialogue import Conversation, Turn
from pipelines.crypto import Keyring
from schemas.events import ConversationStarted, ConversationTurnRecorded, MarkedTerm

TEXT_CONTEXT = "conversation"


TERMS_CONTEXT = "conversation-terms"


def started_event(conversation_id: str, conversation: Conversation, keys: Keyring, *, actor: str, role: str,
                  person_key: str | None = None, study_uid: str | None = None,
                  report_id: str | None = None) -> ConversationStarted:
    """The fact that a conversation about a report began, with the terms marked in it (one per canonical term,
    the most telling mention: affirmed over negated)."""
    terms: dict[str, MarkedTerm] = {}
    for span in conversation.spans:
        seen = terms.get(span.canonical)
        if seen is None or (seen.negated and not span.negated):
            terms[span.canonical] = MarkedTerm(canonical=span.canonical, level=span.level,
                                               negated=span.negated, uncertain=span.uncertain)
    return ConversationStarted(
        conversation_id=conversation_id, person_key=person_key, study_uid=study_uid, report_id=report_id,
        glossary_version=conversation.glossary_version, actor=actor, role=role,
        terms=keys.encrypt(json.dumps([t.model_dump() for t in terms.values()], ensure_ascii=False),
                           context=TERMS_CONTEXT),
    )


def started_terms(event: ConversationStarted, keys: Keyring) -> list[MarkedTerm]:
    """The marked terms of a ``ConversationStarted``, decrypted."""
    return [MarkedTerm(**t) for t in json.loads(keys.decrypt(event.terms, context=TERMS_CONTEXT))]


def turn_event(conversation_id: str, turn_index: int, turn: Turn, keys: Keyring, *,
               person_key: str | None = None, model: str | None = None,
               latency_ms: int | None = None) -> ConversationTurnRecorded:
    """One dialogue turn as an event; `model` is recorded only for an answer the model gave."""
    return ConversationTurnRecorded(
        conversation_id=conversation_id, person_key=person_key, turn_index=turn_index, role=turn.role,
        source=turn.source, red_flag=turn.red_flag or None, fallback_reason=turn.fallback_reason or None,
        text=keys.encrypt(turn.text, context=TEXT_CONTEXT),
        model=model if turn.source == "model" else None,
        latency_ms=latency_ms if turn.role == "assistant" else None,
    )


@dataclass(frozen=True)
class Live:
    """A conversation a server is holding: who may continue it and which person it is about."""

    id: str
    owner: str
    conversation: Conversation
    person_key: str | None = None
    last_used: float = 0.0


class Conversations:
    """Recent conversations by id, least recently used dropped beyond `capacity` or after `idle_s` seconds."""

    def __init__(self, capacity: int = 2000, idle_s: float = 6 * 3600):
        self.capacity, self.idle_s = capacity, idle_s
        self._live: OrderedDict[str, Live] = OrderedDict()
        self._turns: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def open(self, owner: str, conversation: Conversation, person_key: str | None = None) -> Live:
        live = Live(str(uuid.uuid4()), owner, conversation, person_key, time.monotonic())
        with self._lock:
            self._live[live.id] = live
            self._turns[live.id] = threading.Lock()
            while len(self._live) > self.capacity:
                dropped, _ = self._live.popitem(last=False)
                self._turns.pop(dropped, None)
        return live

    def turn_lock(self, conversation_id: str) -> threading.Lock:
        """Held while a turn is answered, so a double-tapped message cannot interleave two turns."""
        with self._lock:
            return self._turns.setdefault(conversation_id, threading.Lock())

    def get(self, conversation_id: str, owner: str) -> Live | None:
        """The conversation if it is still held and belongs to `owner` (nobody continues another's)."""
        with self._lock:
            live = self._live.get(conversation_id)
            if live is None or live.owner != owner:
                return None
            if time.monotonic() - live.last_used > self.idle_s:
                del self._live[conversation_id]
                self._turns.pop(conversation_id, None)
                return None
            return live

    def update(self, live: Live, conversation: Conversation) -> Live:
        updated = replace(live, conversation=conversation, last_used=time.monotonic())
        with self._lock:
            self._live[live.id] = updated
            self._live.move_to_end(live.id)
        return updated
