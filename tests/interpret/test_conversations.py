"""Dialogue turns as events (pure), and the bounded store of live conversations."""
from __future__ import annotations

from interpret import dialogue
from interpret.conversations import TEXT_CONTEXT, Conversations, started_event, started_terms, turn_event
from pipelines.crypto import Keyring

REPORT = "未见胸腔积液。诊断意见：1. 右侧胸腔积液待排。2. 肺结节。"


def test_started_event_lists_each_term_once_preferring_the_affirmed_mention():
    conversation = dialogue.start(REPORT)
    keys = Keyring.generate()
    event = started_event("c-1", conversation, keys, actor="demo-patient", role="patient")
    decoded = started_terms(event, keys)
    terms = {t.canonical: t for t in decoded}
    assert len(terms) == len(decoded) == len({s.canonical for s in conversation.spans})
    assert "胸腔积液" not in event.model_dump_json()
    effusion = [s for s in conversation.spans if s.canonical == terms["胸腔积液"].canonical]
    assert any(s.negated for s in effusion) and terms["胸腔积液"].negated is False
    assert event.glossary_version == conversation.glossary_version and event.person_key is None


def test_turn_event_encrypts_the_text_and_names_the_model_only_for_its_answers():
    keys = Keyring.generate()
    conversation, reply = dialogue.respond(dialogue.start(REPORT), "肺结节要紧吗？")
    patient = turn_event("c-1", 0, conversation.turns[0], keys, model="m", latency_ms=5)
    answer = turn_event("c-1", 1, reply, keys, model="m", latency_ms=5, person_key="b" * 64)
    assert keys.decrypt(patient.text, context=TEXT_CONTEXT) == "肺结节要紧吗？"
    assert "肺结节" not in patient.model_dump_json()
    assert (patient.source, patient.latency_ms, patient.model) == ("patient", None, None)
    assert (answer.source, answer.fallback_reason, answer.model, answer.latency_ms) == ("fallback", "no_model", None, 5)
    _, flagged = dialogue.respond(conversation, "我突然说话不清，半边身体没劲")
    event = turn_event("c-1", 3, flagged, keys)
    assert (event.source, event.red_flag) == ("red_flag", "stroke")


def test_live_conversations_belong_to_their_owner_and_are_bounded():
    store = Conversations(capacity=2)
    first = store.open("alice", dialogue.start(REPORT))
    assert store.get(first.id, "alice") == first and store.get(first.id, "bob") is None
    second = store.open("alice", dialogue.start(REPORT))
    store.update(first, first.conversation)  # used again: the other one is now the oldest
    store.open("alice", dialogue.start(REPORT))
    assert store.get(second.id, "alice") is None and store.get(first.id, "alice") is not None
