"""Decided events are applied in the transaction of the event that caused them (when bound for its partition), so a
doctor's reminder is readable as soon as the order's batch commits; their copies on the log are then skipped, and
the doctor feed releases them on the views' word, not the positions'."""
from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from schemas import REGISTRY
from schemas import events as ev
from streams.doctor_feed import DoctorFeed
from streams.processors.reminders import doctor_reminders, reminder_exams
from streams.topics import all_topics, publish
from tests.doctor.stream import CT_CHEST, HF1, WH1, DoctorStream, local
from wanying.settings import Settings
from wanying.wiring import Platform

DAY = date.today() - timedelta(days=6)
OTHER = "0" * 64  # another person's key


@pytest.fixture
def platform(tmp_path):
    platform = Platform(Settings(data_dir=tmp_path / "data", log_fsync="off"))
    yield platform
    platform.close()


def _history(platform) -> tuple[str, DoctorStream]:
    b = DoctorStream(keys=platform.keys)
    pk = b.person("11010119900307451")
    b.exam(pk, WH1, DAY - timedelta(days=30), CT_CHEST, report="none")
    return pk, b


def _reminders(platform, doctor: str) -> list[str]:
    with platform.projector.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(doctor_reminders.c.reminder_id).where(
            doctor_reminders.c.doctor_id == doctor))]


def test_a_decided_event_is_in_the_views_when_its_cause_commits_and_its_copy_is_skipped(platform):
    pk, b = _history(platform)
    b.opened_at(pk, HF1, local(DAY), doctor="D7")
    publish(platform.log, b.events)
    consumer = platform.log.consumer("test", list(all_topics()))
    records = consumer.poll(10_000, 1.0)
    result = platform.projector.apply(records)

    reminder = [e for e in result.decided if e.type == "ReminderRaised"]
    assert len(reminder) == 1
    rid = str(reminder[0].event_id)
    # Readable before the decided event ever reached the log: the views hold it and list it for the doctor.
    assert platform.projector.holds([rid, "not-an-event"]) == {rid}
    assert _reminders(platform, "D7") == [rid]
    before = platform.projector.dump()

    publish(platform.log, platform.projector.pending_outbox())
    copy = consumer.poll(100, 1.0)
    assert [r.event_id for r in copy] == [rid]
    again = platform.projector.apply(copy)
    assert (again.applied, again.skipped, again.decided) == (0, 1, [])
    assert platform.projector.dump() == before


def test_the_reminder_list_shows_each_exam_as_it_stands_now(platform):
    """A report signed after the reminder shows as final in the reminder's list (rendered from the current state,
    not kept from when the reminder was applied)."""
    pk, b = _history(platform)
    b.opened_at(pk, HF1, local(DAY), doctor="D7")
    publish(platform.log, b.events)
    runner = platform.runner()
    runner.run_until_caught_up()
    with platform.projector.engine.connect() as conn:
        status = lambda: [r[0] for r in conn.execute(sa.select(reminder_exams.c.report_status))]  # noqa: E731
        assert status() == ["none"]
    b.clock = local(DAY, 11)
    b.report(pk, WH1, "R-late", study_uid="1.2.826.0.1.1")
    publish(platform.log, b.events[-1:])
    runner.run_until_caught_up()
    with platform.projector.engine.connect() as conn:
        assert [r[0] for r in conn.execute(sa.select(reminder_exams.c.report_status))] == ["final"]


def test_an_event_decided_for_another_partition_waits_for_its_copy(platform):
    """A decision keyed elsewhere is applied where its copy falls in its own partition, as before: applying it
    with its cause would make the views depend on how partitions interleave."""
    class ElsewhereReminder:
        name, handles, views = "elsewhere_reminder", frozenset({"PatientOpened"}), ()

        def state_key(self, event):
            return event.key

        def initial(self):
            return {}

        def evolve(self, state, event):
            return state

        def decide(self, state, event):
            p = event.payload
            return [REGISTRY.new(ev.ReminderRaised(hospital=p["hospital"], doctor_id="D9", person_key=OTHER,
                                                   trigger="patient_opened", exam_count=0, study_uids=[]),
                                 key=OTHER, source="wanying", occurred_at=event.occurred_at, **event.caused())]

    projector = platform.projector
    projector.processors.append(ElsewhereReminder())
    pk, b = _history(platform)
    b.opened_at(pk, HF1, local(DAY), doctor="D7")
    publish(platform.log, b.events)
    consumer = platform.log.consumer("test", list(all_topics()))
    result = projector.apply(consumer.poll(10_000, 1.0))
    other = next(e for e in result.decided if e.key == OTHER)
    assert projector.holds([str(other.event_id)]) == set() and _reminders(platform, "D9") == []
    publish(platform.log, projector.pending_outbox())
    projector.apply(consumer.poll(100, 1.0))
    assert projector.holds([str(other.event_id)]) == {str(other.event_id)}
    assert _reminders(platform, "D9") == [str(other.event_id)]


def test_the_feed_releases_a_decided_event_the_views_hold_before_the_positions_pass_its_copy(platform):
    pk, b = _history(platform)
    publish(platform.log, b.events)
    platform.runner().run_until_caught_up()
    feed = DoctorFeed(platform.log, platform.projector).start()
    got = threading.Event()
    seen = []
    feed.add_listener(lambda m: (seen.append(m), got.set()) if m.kind == "reminder" else None)
    try:
        consumer = platform.log.consumer("test", list(all_topics()))
        consumer.poll(10_000, 0.5)  # past the history
        b.opened_at(pk, HF1, local(DAY), doctor="D7")
        publish(platform.log, b.events[-1:])
        platform.projector.apply(consumer.poll(100, 1.0))
        positions = platform.projector.positions()
        published = publish(platform.log, platform.projector.pending_outbox())  # the copy; never applied here
        assert got.wait(5), "the feed did not release the reminder"
        copy = published[0]
        assert positions.get((copy.topic, copy.partition), 0) <= copy.offset
        assert platform.projector.positions() == positions  # still not read: released on the views' word
        assert seen[0].data["person_key"] == pk
    finally:
        feed.stop()
