"""What the Kafka log promises beyond the contract: the wire conventions other Kafka clients rely on, and quiet."""
from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from infra.services import free_port
from streams.log.kafka import KafkaLog
from streams.log.port import partition_for
from tests.contract.conftest import exam_ordered, person_key

pytestmark = pytest.mark.kafka


@pytest.fixture
def kafka_log(kafka_broker):
    with KafkaLog(kafka_broker.bootstrap, prefix=f"k{uuid.uuid4().hex[:8]}.") as log:
        yield log


def test_messages_follow_the_wire_conventions(kafka_log, kafka_broker):
    kafka_log.create_topic("person", 8)
    sent = [exam_ordered(i, person_key(i)) for i in range(5)]
    positions = kafka_log.append("person", sent)
    raw = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": "raw", "enable.partition.eof": True})
    try:
        for env, pos in zip(sent, positions):
            assert pos.partition == partition_for(env.key, 8)
            raw.assign([TopicPartition(kafka_log.prefix + "person", pos.partition, pos.offset)])
            msg = None
            deadline = time.monotonic() + 10
            while msg is None and time.monotonic() < deadline:
                m = raw.poll(0.2)
                msg = m if m is not None and m.error() is None else None
            assert msg is not None
            assert msg.topic() == kafka_log.prefix + "person"
            assert msg.key() == env.key.encode()
            assert msg.value() == env.to_bytes()
            assert dict(msg.headers()) == {"event_id": str(env.event_id).encode()}
    finally:
        raw.close()


def test_duplicates_from_another_process_reach_the_log(kafka_log, kafka_broker):
    """The in-process index cannot see another producer: consumers must be idempotent (see the module doc)."""
    kafka_log.create_topic("person", 2)
    env = exam_ordered(1, person_key(1))
    first = kafka_log.append("person", [env])[0]
    with KafkaLog(kafka_broker.bootstrap, prefix=kafka_log.prefix) as other:
        second = other.append("person", [env])[0]
    assert second.partition == first.partition and second.offset == first.offset + 1
    records = kafka_log.read("person", first.partition, 0)
    assert [r.event_id for r in records] == [str(env.event_id)] * 2


def test_librdkafka_stays_off_stderr(capfd):
    dead = f"127.0.0.1:{free_port()}"  # nothing listens: librdkafka complains about every connection attempt
    log = KafkaLog(dead, timeout=1.0)
    with pytest.raises(Exception):
        log.partitions("person")
    log.close()
    assert capfd.readouterr().err == ""
