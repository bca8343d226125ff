"""The SQL projector on SQLite and PostgreSQL: expected rows, idempotence, rebuild, atomic positions."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from streams.log.sqlite import SqliteLog
from streams.processors import ALL, ExamHistory, HospitalDailyCounts
from streams.processors.daily_counts import hospital_daily_counts
from streams.processors.history import exam_history, person_links
from streams.runtime.embedded import EmbeddedRunner
from streams.topics import all_topics, create_topics, publish
from streams.views.projector import Projector, StaleViews, processor_state
from tests.unit.exam_stream import HF, WH, StreamBuilder, realistic_stream
from wanying.settings import Settings
from wanying.wiring import Platform, make_engine

REPO = Path(__file__).resolve().parents[2]
WANYING = REPO / ".venv" / "bin" / "wanying"
# The processors whose rows these tests spell out; the platform runs more (ALL), checked by the rebuild tests.
CORE = (ExamHistory, HospitalDailyCounts)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def views_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'views.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def log(tmp_path):
    log = SqliteLog(tmp_path / "log.sqlite", fsync="off")
    create_topics(log)
    yield log
    log.close()


@pytest.fixture
def projector(views_url):
    engine = make_engine(views_url)
    projector = Projector(engine, [p() for p in CORE])
    projector.create()
    yield projector
    engine.dispose()


@pytest.fixture
def story(log):
    b = StreamBuilder()
    people = realistic_stream(b)
    publish(log, b.events)
    return b, people


def _all_records(log) -> list:
    out = []
    for topic in all_topics():
        for partition in range(log.partitions(topic)):
            out.extend(log.read(topic, partition, 0, 100_000))
    return out


def _history(projector, pk: str) -> dict[str, tuple]:
    cols = ("hospital", "order_id", "accession_number", "study_uid", "local_item_code", "modality", "status",
            "report_status", "report_id", "instance_count", "series_count")
    with projector.engine.connect() as conn:
        rows = conn.execute(sa.select(exam_history).where(exam_history.c.person_key == pk)).mappings().all()
    return {r["exam_id"]: tuple(r[c] for c in cols) for r in rows}


def test_realistic_stream_gives_the_expected_history(log, projector, story):
    _, people = story
    applied = EmbeddedRunner(log, projector, all_topics()).run_until_caught_up()
    assert applied == 19

    assert _history(projector, people["a"]) == {
        f"{HF}:O1": (HF, "O1", "ACC1", "1.2.840.1.1", "CT01", "CT", "reported", "amended", "R1", 80, 2),
        f"{HF}:O2": (HF, "O2", None, None, "MR03", "MR", "cancelled", "none", None, 0, 0),
        f"{WH}:1.2.840.2.9": (WH, None, None, "1.2.840.2.9", None, "CT", "reported", "final", "WR9", 30, 3),
    }
    assert _history(projector, people["b"]) == {
        f"{WH}:WO5": (WH, "WO5", "WACC5", "1.2.840.2.5", "DX01", "DX", "reported", "final", "WR5", 1, 1),
    }
    assert _history(projector, people["c_local"]) == {
        f"{HF}:O9": (HF, "O9", None, "1.2.840.1.9", "US02", "US", "imaged", "none", None, 12, 1),
    }
    assert _history(projector, people["c"]) == {}
    with projector.engine.connect() as conn:
        links = conn.execute(sa.select(person_links)).all()
    assert [tuple(r) for r in links] == [(people["c"], people["c_local"], HF, "id_number")]


def test_daily_counts_per_hospital_and_local_day(log, projector, story):
    EmbeddedRunner(log, projector, all_topics()).run_until_caught_up()
    with projector.engine.connect() as conn:
        rows = {(h, d, t): n for h, d, t, n in conn.execute(sa.select(hospital_daily_counts))}
    day1, day2 = "2026-11-27", "2026-11-28"
    assert rows == {
        (HF, day1, "VisitStarted"): 1, (HF, day1, "ExamOrdered"): 2, (HF, day1, "StudyReceived"): 1,
        (HF, day1, "StudyCompleted"): 1, (HF, day1, "ReportFinalized"): 1, (HF, day1, "ExamCancelled"): 1,
        (HF, day1, "ReportAmended"): 1,
        (WH, day1, "StudyReceived"): 2, (WH, day1, "StudyCompleted"): 1, (WH, day1, "ReportFinalized"): 1,
        (WH, day1, "ExamOrdered"): 1,
        # 00:00-00:15 local on the 28th is still the 27th in UTC: counted on the local day.
        (WH, day2, "ReportFinalized"): 1, (WH, day2, "StudyCompleted"): 1,
        (HF, day2, "ExamOrdered"): 1, (HF, day2, "StudyCompleted"): 1, (HF, day2, "PatientOpened"): 1,
    }


def test_a_batch_applied_twice_is_skipped_by_position(log, projector, story):
    records = _all_records(log)
    first = projector.apply(records)
    assert (first.applied, first.skipped) == (19, 0)
    before = projector.dump()
    again = projector.apply(records)
    assert (again.applied, again.skipped) == (0, 19)
    assert projector.dump() == before
    # A batch overlapping the stored positions applies only its new tail.
    b, people = story
    b.order(people["a"], HF, "O3")
    publish(log, b.events[-1:])
    mixed = projector.apply(_all_records(log))
    assert (mixed.applied, mixed.skipped) == (1, 19)
    with projector.engine.connect() as conn:
        n = conn.execute(sa.select(hospital_daily_counts.c.count).where(
            hospital_daily_counts.c.hospital == HF, hospital_daily_counts.c.day == "2026-11-28",
            hospital_daily_counts.c.event_type == "ExamOrdered")).scalar_one()
    assert n == 2


def _row_writes(engine, table: str) -> list[tuple[str, int]]:
    """Record (statement kind, rows) of every INSERT/DELETE on ``table`` from now on."""
    seen: list[tuple[str, int]] = []

    target = re.compile(rf'^(INSERT INTO|DELETE FROM) "?{table}"? ', re.IGNORECASE)

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany):
        if m := target.match(statement):
            seen.append((m.group(1).split()[0].upper(), len(parameters) if executemany else 1))

    return seen


def test_only_the_rows_that_changed_are_written(log, projector, story):
    """A person's unchanged rows are left alone: rewriting them cost a page per row and index on every event."""
    b, people = story
    projector.apply(_all_records(log))
    before = _history(projector, people["a"])
    writes = _row_writes(projector.engine, "exam_history")
    b.order(people["a"], HF, "O3")  # one new exam; the person's three others stay as they are
    publish(log, b.events[-1:])
    assert projector.apply(_all_records(log)).applied == 1
    assert [(k, n) for k, n in writes if k == "INSERT"] == [("INSERT", 1)]
    assert not [w for w in writes if w[0] == "DELETE"]
    after = _history(projector, people["a"])
    assert {k: v for k, v in after.items() if k in before} == before and len(after) == 4

    writes.clear()
    b.cancel(people["a"], HF, "O3")  # one exam changes: its row alone is replaced
    publish(log, b.events[-1:])
    projector.apply(_all_records(log))
    assert sorted(k for k, _ in writes) == ["DELETE", "INSERT"] and all(n == 1 for _, n in writes)
    assert _history(projector, people["a"])[f"{HF}:O3"][6] == "cancelled"
    assert projector.dump() == _rebuilt(log, projector)


def _rebuilt(log, projector) -> dict:
    """The dump of the same processors applied from scratch to a fresh SQLite database."""
    engine = make_engine("sqlite://")
    fresh = Projector(engine, projector.processors)
    fresh.create()
    fresh.apply(_all_records(log))
    return fresh.dump()


def test_the_same_event_published_twice_is_counted_once(log, projector, story):
    b, _ = story
    publish(log, b.events)  # a sender retrying the whole stream
    assert EmbeddedRunner(log, projector, all_topics()).run_until_caught_up() == 19


class ExplodingCounts(HospitalDailyCounts):
    """Fails on the n-th event it sees, after ExamHistory already wrote in the same transaction."""

    def __init__(self, fail_at: int) -> None:
        self.seen, self.fail_at = 0, fail_at

    def evolve(self, state, event):
        self.seen += 1
        if self.seen == self.fail_at:
            raise RuntimeError("disk on fire")
        return super().evolve(state, event)


def test_a_failure_inside_apply_writes_nothing(log, projector, story):
    records = _all_records(log)
    head, tail = records[:8], records[8:]
    projector.apply(head)
    before_dump, before_pos = projector.dump(), projector.positions()
    with projector.engine.connect() as conn:
        before_state = sorted(tuple(r) for r in conn.execute(sa.select(processor_state)))
    assert before_pos and before_dump["exam_history"]

    broken = Projector(projector.engine, [ExamHistory(), ExplodingCounts(fail_at=3)])
    with pytest.raises(RuntimeError, match="disk on fire"):
        broken.apply(tail)
    assert projector.positions() == before_pos
    assert projector.dump() == before_dump
    with projector.engine.connect() as conn:
        assert sorted(tuple(r) for r in conn.execute(sa.select(processor_state))) == before_state

    # The retry after the failure gives exactly what an unbroken run gives.
    assert projector.apply(tail).applied == len(tail)
    reference = Projector(make_engine("sqlite://"), [p() for p in CORE])
    reference.create()
    reference.apply(records)
    assert projector.dump() == reference.dump()


def _platform(tmp_path: Path, views_url: str) -> Platform:
    return Platform(Settings(data_dir=tmp_path / "data", views_url=views_url, log_fsync="off"))


def test_rebuild_views_gives_the_same_dump(tmp_path, views_url):
    platform = _platform(tmp_path, views_url)
    b = StreamBuilder()
    realistic_stream(b)
    publish(platform.log, b.events)
    applied = platform.runner().run_until_caught_up()  # 19, plus whatever the deciders in ALL add to the log
    on_log = {t: platform.log.count(t) for t in platform.topics()}
    assert applied == sum(on_log.values()) >= 19
    before = platform.projector.dump()
    assert sum(map(len, before.values())) > 20
    assert platform.rebuild_views() == applied
    assert platform.projector.dump() == before
    assert {t: platform.log.count(t) for t in platform.topics()} == on_log  # re-decided events were not re-appended
    platform.close()

    env = {**os.environ, "WANYING_DATA_DIR": str(tmp_path / "data"), "WANYING_VIEWS_URL": views_url}
    done = subprocess.run([str(WANYING), "views", "rebuild"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"rebuilt views from {applied} events" in done.stdout
    engine = make_engine(views_url)
    after = Projector(engine, [p() for p in ALL])
    assert after.dump() == before
    assert after.positions() == _platform(tmp_path, views_url).projector.positions()
    engine.dispose()


def test_views_status_on_an_empty_data_dir(tmp_path):
    """``views status`` creates nothing surprising and reports zero lag and empty views."""
    done = subprocess.run([sys.executable, "-m", "wanying.cli", "views", "status"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "WANYING_DATA_DIR": str(tmp_path / "d"),
                                                      "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["lag"] == 0
    assert {"exam_history", "person_links", "hospital_daily_counts"} <= set(status["rows"])
    assert set(status["rows"].values()) == {0}
    assert status["stale"] == []
    assert len(status["rows"]) == len(Projector(make_engine("sqlite://"), [p() for p in ALL]).view_tables())


def test_views_built_by_another_processor_version_are_refused_until_rebuilt(tmp_path, log, story):
    """Rows are written as the difference from the stored state's rows, so views built by another version of a
    processor (or without it) would keep stale rows: the runtimes refuse them, and a rebuild clears that."""
    engine = make_engine(f"sqlite:///{tmp_path / 'versions.sqlite'}")
    built = Projector(engine, [p() for p in CORE])
    built.create()
    EmbeddedRunner(log, built, all_topics()).run_until_caught_up()

    class ExamHistoryV2(ExamHistory):
        version = 2

    newer = Projector(engine, [ExamHistoryV2(), HospitalDailyCounts()])
    newer.create()  # creating the tables again does not restamp views that hold data
    assert newer.stale() == ["exam_history: built by version 1, this release has 2"]
    with pytest.raises(StaleViews, match="wanying views rebuild"):
        EmbeddedRunner(log, newer, all_topics())
    more = Projector(engine, [p() for p in CORE] + [OpenedReminder()])
    assert more.stale() == ["opened_reminder: not built into these views"]

    newer.drop()  # what `wanying views rebuild` does
    newer.create()
    assert newer.stale() == []
    assert EmbeddedRunner(log, newer, all_topics()).run_until_caught_up() == 19
    assert built.stale() == ["exam_history: built by version 2, this release has 1"]
    engine.dispose()


def test_the_worker_stops_with_the_fix_on_stale_views(tmp_path):
    env = {**os.environ, "WANYING_DATA_DIR": str(tmp_path / "d"), "PYTHONPATH": str(REPO)}
    platform = Platform(Settings(data_dir=tmp_path / "d"))
    b = StreamBuilder()
    realistic_stream(b)
    publish(platform.log, b.events)
    platform.runner().run_until_caught_up()
    with platform.projector.engine.begin() as conn:  # as if built by a release with another recognition processor
        conn.exec_driver_sql("UPDATE processor_versions SET version = 0 WHERE processor = 'recognition'")
    platform.close()
    done = subprocess.run([sys.executable, "-m", "wanying.cli", "worker"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 2
    assert "recognition: built by version 0" in done.stderr and "wanying views rebuild" in done.stderr
    assert "Traceback" not in done.stderr


class OpenedReminder(ExamHistory.__mro__[1]):  # a bare Processor: state only, no view tables
    """Decides a reminder when a doctor opens a patient; keeps a count as its state."""

    name = "opened_reminder"
    handles = frozenset({"PatientOpened"})
    views = ()

    def initial(self):
        return {"opened": 0}

    def evolve(self, state, event):
        state["opened"] += 1
        return state

    def decide(self, state, event):
        from schemas import REGISTRY
        from schemas.events import ReminderRaised

        p = event.payload
        return [REGISTRY.new(ReminderRaised(hospital=p["hospital"], doctor_id=p["doctor_id"], person_key=p["person_key"],
                                            trigger="patient_opened", exam_count=state["opened"], study_uids=[]),
                             key=event.key, source="wanying", occurred_at=event.occurred_at, **event.caused())]


def test_decided_events_go_through_the_outbox_once(log, projector, story):
    deciding = Projector(projector.engine, [*projector.processors, OpenedReminder()])
    deciding.create()
    runner = EmbeddedRunner(log, deciding, all_topics())
    assert runner.run_until_caught_up() == 20  # 19 events, then the reminder decided from the one PatientOpened
    reminders = [r.envelope() for r in _all_records(log) if r.envelope().type == "ReminderRaised"]
    assert len(reminders) == 1 and reminders[0].payload["exam_count"] == 0
    assert deciding.pending_outbox() == []
    assert deciding.apply(_all_records(log)).decided == []  # replayed records decide nothing again
    with deciding.engine.connect() as conn:
        states = dict(conn.execute(sa.select(processor_state.c.processor, processor_state.c.state).where(
            processor_state.c.processor == "opened_reminder")).all())
    assert {k: json.loads(v) for k, v in states.items()} == {"opened_reminder": {"opened": 1}}
