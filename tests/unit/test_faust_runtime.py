"""The Faust runtime's batch step without a broker: Kafka message to LogRecord, apply, outbox to the log, retry."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

from faust.types import Message

from schemas import events as ev
from schemas.envelope import Envelope
from schemas.registry import REGISTRY
from streams.log.sqlite import SqliteLog
from streams.processors import ALL
from streams.processors.base import Processor
from streams.runtime.faust_app import FaustSettings, create_runtime
from streams.topics import create_topics
from streams.views.projector import Projector
from tests.unit.exam_stream import HF, StreamBuilder
from wanying.wiring import make_engine


class RemindOnOpen(Processor[int]):
    """Decides a ReminderRaised for every PatientOpened; fails on its first call when asked to."""

    name = "remind_on_open"
    handles: ClassVar[frozenset[str]] = frozenset({"PatientOpened"})
    failures = 0

    def initial(self) -> int:
        return 0

    def evolve(self, state: int, event: Envelope) -> int:
        return state + 1

    def key_values(self, key: str) -> dict[str, Any]:
        return {}  # no view table

    def decide(self, state: int, event: Envelope) -> list[Envelope]:
        if RemindOnOpen.failures:
            RemindOnOpen.failures -= 1
            raise RuntimeError("database hiccup")
        p = event.payload
        reminder = ev.ReminderRaised(hospital=p["hospital"], doctor_id=p["doctor_id"], person_key=event.key,
                                     trigger="patient_opened", exam_count=state, study_uids=[])
        return [REGISTRY.new(reminder, key=event.key, source="wanying", occurred_at=event.occurred_at,
                             **event.caused())]


def _message(prefix: str, topic: str, partition: int, offset: int, e: Envelope, **kw: Any) -> Message:
    headers = kw.get("headers", [("event_id", str(e.event_id).encode())])
    return Message(prefix + topic, partition, offset, 0.0, 0, headers, e.key.encode(), e.to_bytes(), None)


def _runtime(tmp_path: Path):
    log = SqliteLog(tmp_path / "log.sqlite", fsync="off")
    create_topics(log)
    projector = Projector(make_engine(f"sqlite:///{tmp_path / 'views.sqlite'}"), [*(p() for p in ALL), RemindOnOpen()])
    projector.create()
    settings = FaustSettings(bootstrap="127.0.0.1:1", prefix="t.", data_dir=tmp_path / "faust", retry_pause=0.01)
    return create_runtime(settings, projector, log), projector, log


def test_message_becomes_a_log_record_with_the_logical_topic(tmp_path):
    runtime, _, _ = _runtime(tmp_path)
    b = StreamBuilder()
    e = b.opened(b.person("34010419850612123"), HF)
    record = runtime.record(_message("t.", "person", 7, 42, e))
    assert (record.topic, record.partition, record.offset, record.key) == ("person", 7, 42, e.key)
    assert record.event_id == str(e.event_id) and record.envelope() == e
    # A producer that left out the header: the id comes from the envelope.
    assert runtime.record(_message("t.", "person", 7, 43, e, headers=[])).event_id == str(e.event_id)
    assert runtime.logical("t.person") == "person" and runtime.logical("other.person") is None
    # Not an envelope and no header: the record is still made (the projector refuses it, inside the retry loop).
    junk = Message("t.person", 0, 1, 0.0, 0, None, None, b"not json", None)
    assert runtime.record(junk).event_id == "" and runtime.record(junk).key == ""


def test_batch_is_applied_once_and_decided_events_reach_the_log(tmp_path):
    runtime, projector, log = _runtime(tmp_path)
    b = StreamBuilder()
    pk = b.person("34010419850612123")
    events = [b.opened(pk, HF), b.order(pk, HF, "O1"), b.opened(pk, HF)]
    records = [runtime.record(_message("t.", "person", 3, i, e)) for i, e in enumerate(events)]

    RemindOnOpen.failures = 1  # the first attempt fails inside the transaction; the batch is retried
    asyncio.run(asyncio.wait_for(runtime.apply(records), 30))
    asyncio.run(asyncio.wait_for(runtime.apply(records), 30))  # redelivered after a crash: skipped
    copy = runtime.record(_message("t.", "person", 3, 3, events[2]))  # the same event appended twice (Kafka)
    asyncio.run(asyncio.wait_for(runtime.apply([copy]), 30))

    assert runtime.applied == 3
    assert projector.positions() == {("person", 3): 4}
    reminders = [r.envelope() for p in range(16) for r in log.read("person", p, 0)]
    assert [r.type for r in reminders] == ["ReminderRaised", "ReminderRaised"]
    assert [r.payload["exam_count"] for r in reminders] == [0, 1]
    assert {r.causation_id for r in reminders} == {events[0].event_id, events[2].event_id}
    assert projector.pending_outbox() == []
