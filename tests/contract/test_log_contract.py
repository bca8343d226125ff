"""The log contract: what every :class:`~streams.log.port.EventLog` backend must do, checked on each of them."""
from __future__ import annotations

import time
from collections import defaultdict

import pytest

from streams.log.port import Consumer, LogRecord, Position, partition_for
from tests.contract.conftest import exam_ordered, person_key

T = "person"


def drain(consumer: Consumer, expected: int, timeout: float = 20.0) -> list[LogRecord]:
    """Poll until ``expected`` records came, then check that nothing more is waiting."""
    got: list[LogRecord] = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        got.extend(consumer.poll(1000, timeout=0.5))
    assert len(got) == expected, f"got {len(got)} records, expected {expected}"
    assert consumer.poll(1000, timeout=0) == []
    return got


def read_all(log, topic: str) -> dict[int, list[LogRecord]]:
    return {p: log.read(topic, p, 0, 100_000) for p in range(log.partitions(topic))}


def ids(records) -> list[str]:
    return [r.event_id for r in records]


# ---------------------------------------------------------------- topics


def test_create_topic_is_idempotent(event_log, open_log):
    event_log.create_topic(T, 4)
    event_log.create_topic(T, 4)
    assert event_log.partitions(T) == 4
    assert open_log().partitions(T) == 4  # seen by another handle
    with pytest.raises(ValueError):
        event_log.create_topic(T, 8)
    with pytest.raises(KeyError):
        event_log.partitions("no-such-topic")
    assert event_log.end_offsets(T) == {p: 0 for p in range(4)}


# ---------------------------------------------------------------- append and read


def test_append_returns_consecutive_offsets_per_partition(event_log, envelopes):
    event_log.create_topic(T, 4)
    batches = [envelopes(70, keys=12), envelopes(1, keys=12), envelopes(129, keys=12)]
    next_offset: dict[int, int] = defaultdict(int)
    for batch in batches:
        positions = event_log.append(T, batch)
        assert len(positions) == len(batch)
        for env, pos in zip(batch, positions):
            assert pos.topic == T
            assert pos.partition == partition_for(env.key, 4)
            assert pos.offset == next_offset[pos.partition]
            next_offset[pos.partition] += 1
    assert event_log.end_offsets(T) == {p: next_offset[p] for p in range(4)}
    assert event_log.count(T) == 200
    assert event_log.append(T, []) == []


def test_records_keep_their_envelope_and_order_per_key(event_log, envelopes):
    event_log.create_topic(T, 4)
    sent = envelopes(60, keys=7)
    for i in range(0, 60, 20):
        event_log.append(T, sent[i:i + 20])
    by_key = defaultdict(list)
    for records in read_all(event_log, T).values():
        for r in records:
            assert r.envelope() == next(e for e in sent if str(e.event_id) == r.event_id)
            assert r.key == r.envelope().key
            by_key[r.key].append(r.event_id)
    for key in {e.key for e in sent}:
        assert by_key[key] == [str(e.event_id) for e in sent if e.key == key]


def test_many_partitions_each_key_in_its_partition(event_log, envelopes):
    event_log.create_topic(T, 32)
    sent = envelopes(1000, keys=400)
    positions = event_log.append(T, sent)
    partition_of_key: dict[str, set[int]] = defaultdict(set)
    for env, pos in zip(sent, positions):
        partition_of_key[env.key].add(pos.partition)
    assert all(parts == {partition_for(k, 32)} for k, parts in partition_of_key.items())
    stored = read_all(event_log, T)
    assert all(stored[p] for p in range(32)), "400 keys should reach all 32 partitions"
    for p, records in stored.items():
        assert [r.offset for r in records] == list(range(len(records)))
        assert all(partition_for(r.key, 32) == p for r in records)
    assert sum(map(len, stored.values())) == 1000


def test_read_by_partition_and_offset_with_limit(event_log, envelopes):
    event_log.create_topic(T, 2)
    sent = envelopes(40, keys=1)  # one key: one partition
    p = partition_for(sent[0].key, 2)
    event_log.append(T, sent[:25])
    event_log.append(T, sent[25:])
    got = event_log.read(T, p, 3, limit=5)
    assert [r.offset for r in got] == [3, 4, 5, 6, 7]
    assert ids(got) == [str(e.event_id) for e in sent[3:8]]
    assert all(r.topic == T and r.partition == p for r in got)
    assert [r.offset for r in event_log.read(T, p, 36, limit=100)] == [36, 37, 38, 39]
    assert event_log.read(T, p, 40) == []  # at the end
    assert event_log.read(T, p, 1000) == []  # past the end
    assert event_log.read(T, 1 - p, 0) == []  # empty partition


def test_end_offsets_seen_by_a_fresh_handle(event_log, open_log, envelopes):
    event_log.create_topic(T, 3)
    expected = defaultdict(int)
    for size in (5, 1, 17, 2, 1, 33):  # several batches per partition: the end is not the last batch's start
        for pos in event_log.append(T, envelopes(size, keys=5)):
            expected[pos.partition] += 1
    other = open_log()
    assert other.end_offsets(T) == {p: expected[p] for p in range(3)}
    assert other.count(T) == 59


def test_duplicate_appends_are_stored_once(event_log, envelopes):
    event_log.create_topic(T, 4)
    first = envelopes(10, keys=3)
    positions = event_log.append(T, first)
    assert event_log.append(T, first) == positions  # the whole batch again
    assert event_log.append(T, [first[4]]) == [positions[4]]
    more = envelopes(3, keys=3)
    again = event_log.append(T, [more[0], more[0], first[2], more[1], more[0]])  # duplicates inside one batch
    assert again[0] == again[1] == again[4]
    assert again[2] == positions[2]
    assert len({again[0], again[3]}) == 2
    assert event_log.count(T) == 12
    stored = [r.event_id for records in read_all(event_log, T).values() for r in records]
    assert sorted(stored) == sorted({str(e.event_id) for e in first + more[:2]})


# ---------------------------------------------------------------- consumer groups


def test_group_commit_and_resume(event_log, envelopes, group):
    event_log.create_topic(T, 2)
    event_log.append(T, envelopes(30, keys=6))
    name = group("resume")
    with event_log.consumer(name, [T]) as first:
        got = drain(first, 30)
        done = [r for r in got if r.offset < 5]
        first.commit(done)
        assert event_log.committed(name, T) == {p: 5 for p in range(2)}
        event_log.append(T, envelopes(4, keys=6))  # a live member sees new records
        assert len(drain(first, 4)) == 4
    with event_log.consumer(name, [T]) as second:
        rest = drain(second, 34 - 10)
        stored = [r for records in read_all(event_log, T).values() for r in records]
        assert sorted((r.partition, r.offset) for r in rest) == sorted(
            (r.partition, r.offset) for r in stored if r.offset >= 5
        )
        second.commit()
        assert event_log.committed(name, T) == event_log.end_offsets(T)
    with event_log.consumer(name, [T]) as third:
        assert third.poll(100, timeout=0) == []


def test_uncommitted_records_are_delivered_again(event_log, envelopes, group):
    event_log.create_topic(T, 2)
    event_log.append(T, envelopes(12, keys=4))
    name = group("crash")
    crashed = event_log.consumer(name, [T])
    first = drain(crashed, 12)
    crashed.close()  # the worker died before committing
    assert event_log.committed(name, T) == {}
    with event_log.consumer(name, [T]) as again:
        second = drain(again, 12)
    assert sorted((r.partition, r.offset, r.event_id) for r in second) == sorted(
        (r.partition, r.offset, r.event_id) for r in first
    )


def test_groups_are_independent(event_log, envelopes, group):
    event_log.create_topic(T, 3)
    event_log.append(T, envelopes(15, keys=5))
    a, b = group("a"), group("b")
    with event_log.consumer(a, [T]) as ca, event_log.consumer(b, [T]) as cb:
        ca.commit(drain(ca, 15))
        assert event_log.committed(b, T) == {}
        got_b = drain(cb, 15)
        assert sorted(ids(got_b)) == sorted(r.event_id for p in read_all(event_log, T).values() for r in p)
    assert event_log.committed(a, T) == event_log.end_offsets(T)
    assert event_log.committed(b, T) == {}


def test_seek(event_log, envelopes, group):
    event_log.create_topic(T, 2)
    sent = envelopes(20, keys=1)
    p = partition_for(sent[0].key, 2)
    event_log.append(T, sent)
    name = group("seek")
    with event_log.consumer(name, [T]) as c:
        c.seek(Position(T, p, 15))  # before the first poll, as a runtime resuming from stored positions does
        assert [r.offset for r in drain(c, 5)] == [15, 16, 17, 18, 19]
        c.seek(Position(T, p, 2))  # back, after polling
        again = drain(c, 18)
        assert [r.offset for r in again] == list(range(2, 20))
        assert ids(again) == [str(e.event_id) for e in sent[2:]]
        c.commit()
    assert event_log.committed(name, T) == {p: 20}


# ---------------------------------------------------------------- both backends place keys alike


@pytest.mark.kafka
def test_sqlite_and_kafka_give_the_same_positions(kafka_broker, tmp_path):
    import uuid

    from streams.log.kafka import KafkaLog
    from streams.log.sqlite import SqliteLog

    sent = [exam_ordered(i, person_key(i % 97)) for i in range(600)]
    prefix = f"x{uuid.uuid4().hex[:8]}."
    with SqliteLog(tmp_path / "log.sqlite") as lite, KafkaLog(kafka_broker.bootstrap, prefix) as kafka:
        results = []
        for log in (lite, kafka):
            log.create_topic(T, 32)
            results.append(log.append(T, sent[:250]) + log.append(T, sent[250:]))
        assert results[0] == results[1]
        assert lite.end_offsets(T) == kafka.end_offsets(T)
