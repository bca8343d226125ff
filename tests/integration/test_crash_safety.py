"""A worker killed with SIGKILL half-way through 50,000 events, then restarted, leaves exactly the views a clean
replay gives: nothing lost, nothing applied twice. Once for each runtime (embedded on SQLite, Faust on Kafka).

The worker is ``wanying worker`` in its own process. The kill lands while it is busy (batches are applied
back to back), so it usually interrupts a projector transaction or falls between the views' commit and the log
commit; either way the restarted worker must resume from the positions stored with the views.
"""
from __future__ import annotations

import uuid

import pytest

from streams.log.kafka import KafkaLog
from streams.log.sqlite import SqliteLog
from streams.runtime.embedded import EmbeddedRunner
from streams.topics import all_topics, create_topics
from tests.runtimes import (
    Worker,
    append,
    applied,
    applied_event_ids,
    assert_same_views,
    assert_still_caught_up,
    clean_replay,
    daily_total,
    expected_daily_total,
    explain_missing,
    log_envelopes,
    projector_at,
    wait_applied,
    wait_caught_up,
)
from tests.streamgen import cached

N = 50_000


@pytest.fixture(scope="module")
def stream():
    return cached(N)


@pytest.fixture(scope="module")
def reference(stream, tmp_path_factory):
    return clean_replay(stream, tmp_path_factory.mktemp("clean"))


def _kill_midway(worker: Worker, projector, total: int) -> int:
    at = wait_applied(projector, total // 2, worker, timeout=120)
    assert worker.kill() == -9
    at = applied(projector)  # what survived: the last committed batch
    assert 0 < at < total, f"the kill was meant to land mid-way, the views had {at} of {total}"
    return at


@pytest.mark.slow
def test_embedded_worker_survives_sigkill(stream, reference, tmp_path):
    data = tmp_path / "data"
    log = SqliteLog(data / "log.sqlite", fsync="normal")
    create_topics(log)
    views = projector_at(f"sqlite:///{data / 'views.sqlite'}")
    worker = Worker(tmp_path, data_dir=data, log_backend="sqlite", log_fsync="normal", worker_batch=500).start()
    try:
        half = len(stream) // 2
        append(log, stream[:half])  # the rest arrives while the worker runs
        wait_applied(views, 1, worker, timeout=60)
        append(log, stream[half:])
        _kill_midway(worker, views, len(stream))

        worker.start()
        wait_applied(views, len(stream), worker, timeout=120)
        wait_caught_up(views, log, worker)
        assert worker.stop() == 0, worker.output()
        assert_still_caught_up(views, log)

        # Every record on the log (decided events included) counted exactly once...
        assert daily_total(views) == expected_daily_total(log_envelopes(log))
    finally:
        if worker.alive():
            worker.kill()
        log.close()
    # ...and every view row for row as a clean replay of the stream gives it.
    assert_same_views(views, reference)


@pytest.mark.kafka
@pytest.mark.slow
def test_faust_worker_survives_sigkill_and_rebuild(stream, reference, kafka_broker, tmp_path):
    prefix = f"crash{uuid.uuid4().hex[:8]}."
    group = f"views-{prefix}"
    log = KafkaLog(kafka_broker.bootstrap, prefix=prefix)
    create_topics(log)
    append(log, stream)
    views = projector_at(f"sqlite:///{tmp_path / 'views.sqlite'}")
    worker = Worker(tmp_path, data_dir=tmp_path / "data", log_backend="kafka",
                    kafka_bootstrap=kafka_broker.bootstrap, kafka_topic_prefix=prefix, faust_app_id=group,
                    views_url=f"sqlite:///{tmp_path / 'views.sqlite'}", broker_session_timeout=6)
    try:
        worker.start()
        _kill_midway(worker, views, len(stream))
        worker.start()
        wait_applied(views, len(stream), worker, timeout=120)
        wait_caught_up(views, log, worker)
        assert worker.stop() == 0, worker.output()
        _assert_complete(views, log, reference, "after the kill")

        # Rebuild: the views are dropped while the group's committed offsets stay near the end. The worker must
        # start from the views' positions (zero), not from the group's offsets, or the rebuilt views stay empty.
        # Replaying re-decides and re-publishes the decided events; on Kafka those copies reach the log again,
        # and must not be counted twice.
        committed = sum(sum(log.committed(group, t).values()) for t in all_topics())
        assert committed > len(stream) // 2, "the group committed too little to make the rebuild a test"
        views.drop()
        views.create()
        worker.start()
        wait_applied(views, len(stream), worker, timeout=120)
        wait_caught_up(views, log, worker)
        assert worker.stop() == 0, worker.output()
        _assert_complete(views, log, reference, "after the rebuild")
    finally:
        if worker.alive():
            worker.kill()
        log.close()


def _assert_complete(views, log, reference, when: str) -> None:
    assert_still_caught_up(views, log)
    want = expected_daily_total(log_envelopes(log))
    got = daily_total(views)
    try:
        assert got == want, f"{when}: the views counted {got} events, the log holds {want}"
        assert_same_views(views, reference)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{explain_missing(views, log)}") from None



# ---------------------------------------------------------------------------------------------- the windows, one by one
# A link decides a HospitalKeyLinked, which decides a PersonHistoryMerged: a chain of decided events, each appended by
# a flush and read back before the next is decided.


def _links(stream, n: int = 20):
    links = [e for e in stream if e.type == "PatientLinked"][:n]
    assert len(links) == n
    return links


def _killed_after_commit(log, views) -> set[str]:
    """What a worker killed between the views' commit and the outbox flush leaves behind: every record on the log
    applied, the events it decided in the outbox only."""
    records = [r for t in all_topics() for p, end in log.end_offsets(t).items() if end for r in log.read(t, p, 0, end)]
    decided = {str(e.event_id) for e in views.apply(records).decided}
    assert decided and len(views.pending_outbox()) == len(decided)
    return decided


def _assert_decided_reached_log_and_views(views, log, decided: set[str]) -> None:
    on_log = {str(e.event_id) for e in log_envelopes(log)}
    assert decided <= on_log, f"{len(decided - on_log)} decided events never reached the log"
    assert decided <= applied_event_ids(views), "decided events on the log that the views never applied"
    assert_still_caught_up(views, log)


def test_embedded_restart_appends_what_the_killed_worker_decided(stream, tmp_path):
    log = SqliteLog(tmp_path / "log.sqlite", fsync="off")
    create_topics(log)
    append(log, _links(stream))
    views = projector_at(f"sqlite:///{tmp_path / 'views.sqlite'}")
    decided = _killed_after_commit(log, views)
    # The restarted runner has nothing new to consume: only its outbox says that work is left.
    EmbeddedRunner(log, views, list(all_topics())).run_until_caught_up()
    _assert_decided_reached_log_and_views(views, log, decided)
    log.close()


@pytest.mark.kafka
@pytest.mark.slow
def test_faust_restart_appends_what_the_killed_worker_decided(stream, kafka_broker, tmp_path):
    prefix = f"flush{uuid.uuid4().hex[:8]}."
    log = KafkaLog(kafka_broker.bootstrap, prefix=prefix)
    create_topics(log)
    append(log, _links(stream))
    views = projector_at(f"sqlite:///{tmp_path / 'views.sqlite'}")
    decided = _killed_after_commit(log, views)
    worker = Worker(tmp_path, data_dir=tmp_path / "data", log_backend="kafka",
                    kafka_bootstrap=kafka_broker.bootstrap, kafka_topic_prefix=prefix, faust_app_id=f"views-{prefix}",
                    views_url=f"sqlite:///{tmp_path / 'views.sqlite'}", broker_session_timeout=6)
    try:
        worker.start()
        wait_caught_up(views, log, worker)
        assert worker.stop() == 0, worker.output()
        _assert_decided_reached_log_and_views(views, log, decided)
    finally:
        if worker.alive():
            worker.kill()
        log.close()


class _InProcess:
    """Stands for the worker process in ``wait_caught_up`` when the worker is driven from the test itself."""

    proc = None

    def alive(self) -> bool:
        return True

    def output(self) -> str:
        return ""


class _FlushLandsWhileEndsAreRead:
    """A log on which the worker takes one step (apply what is new, append what that decided) just after the ends
    of the last topic were read: the interleaving that a wait reading the ends before the outbox cannot see."""

    def __init__(self, log, runner: EmbeddedRunner) -> None:
        self.log, self.runner = log, runner

    def end_offsets(self, topic: str) -> dict[int, int]:
        ends = self.log.end_offsets(topic)
        if topic == all_topics()[-1]:
            self.runner.step(timeout=0)
        return ends


def test_wait_caught_up_sees_a_flush_landing_while_it_reads_the_ends(stream, tmp_path):
    log = SqliteLog(tmp_path / "log.sqlite", fsync="off")
    create_topics(log)
    append(log, _links(stream))
    views = projector_at(f"sqlite:///{tmp_path / 'views.sqlite'}")
    decided = _killed_after_commit(log, views)
    runner = EmbeddedRunner(log, views, list(all_topics()))
    wait_caught_up(views, _FlushLandsWhileEndsAreRead(log, runner), _InProcess(), timeout=30)
    _assert_decided_reached_log_and_views(views, log, decided)
    log.close()
