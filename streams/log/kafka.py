"""The Kafka log: the province's backbone, spoken through confluent-kafka (librdkafka).

Conventions shared with every other Kafka client of the platform (the Faust runtime relies on them):

- Kafka topic name = ``prefix`` + logical topic (``"wanying.person"``); records and positions carry the logical name.
- The partition is chosen by us, ``partition_for(envelope.key, partitions)``, exactly as the SQLite log does, so a
  key lands in the same partition on both backends (never the client's default partitioner).
- Message key = ``envelope.key`` (UTF-8), value = ``envelope.to_bytes()``, header ``event_id`` = the UUID string.
- Consumer group ids are used as given (no prefix).

Durability: the producer is idempotent with ``acks=all``; :meth:`KafkaLog.append` waits for the delivery reports,
so the returned positions are the offsets the broker assigned and the records are stored when it returns.

Idempotency on ``event_id``: Kafka cannot refuse a duplicate by a field of the record, so each ``KafkaLog`` keeps a
bounded in-process index (event_id -> position) and does not append an event it has appended before (or that is in
flight from another thread). Duplicates written by another process, or after the index forgot an id, do reach the
log; they are removed by the consumers: the projector skips records at or before its stored positions and every
consumer is idempotent on ``event_id``.

Tansu (the Kafka-protocol broker used in tests and benchmarks) quirks handled here:

- The "latest" offset it reports (ListOffsets, and so the watermark queries) is the base offset of the last record
  batch plus one, not the end of the partition. The end is found by reading: from that hint minus one (the last
  batch) to the end-of-partition event, whose offset comes from the fetch response, which is right. Correct on any
  broker, at the price of reading one batch per partition.
- A group member joins after half of ``session.timeout.ms``; the default here is 6000 ms (the smallest a Kafka
  broker allows by default), configurable.

librdkafka's own logging goes to the ``streams.log.kafka.librdkafka`` Python logger, never to stderr.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from functools import partial
from typing import Any, Callable, Iterable, Sequence

from confluent_kafka import Consumer as _RawConsumer
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from schemas.envelope import Envelope
from streams.log.port import Consumer, EventLog, LogRecord, Position, partition_for, positions_after

log = logging.getLogger(__name__)
_rdkafka_log = logging.getLogger(__name__ + ".librdkafka")
_rdkafka_log.addHandler(logging.NullHandler())  # no stderr output unless the application configures logging

EVENT_ID_HEADER = "event_id"
_EOF = KafkaError._PARTITION_EOF
#: Commit refusals that mean "the group moved on": the records will be delivered again to the new owner.
_REBALANCED = {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID,
               KafkaError._NO_OFFSET}
_IDLE = 0.05  # seconds between checks while waiting for the broker


def _on_error(err: KafkaError) -> None:
    _rdkafka_log.warning("kafka client error: %s", err)


class KafkaLog(EventLog):
    """An :class:`EventLog` on a Kafka cluster.

    ``config`` holds extra librdkafka properties for every client, e.g. ``KafkaLog(bs, **{"security.protocol":
    "SSL"})``; ``producer_config`` and ``consumer_config`` override the defaults of one kind of client.
    ``replication`` is the replication factor of the topics it creates (1 for a test broker, 3 on a cluster);
    ``dedup_window`` how many event ids the in-process index remembers.
    """

    def __init__(
        self,
        bootstrap: str,
        prefix: str = "wanying.",
        *,
        session_timeout_ms: int = 6000,
        replication: int = 1,
        timeout: float = 30.0,
        dedup_window: int = 200_000,
        producer_config: dict[str, Any] | None = None,
        consumer_config: dict[str, Any] | None = None,
        **config: Any,
    ) -> None:
        self.bootstrap, self.prefix, self.timeout = bootstrap, prefix, timeout
        self.session_timeout_ms, self.replication = session_timeout_ms, replication
        self._common = {"bootstrap.servers": bootstrap, "logger": _rdkafka_log, "error_cb": _on_error, **config}
        self.producer_config = {
            **self._common,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,  # a lone event waits at most 5 ms for company
            "batch.num.messages": 10_000,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "message.timeout.ms": int(timeout * 1000),
            **(producer_config or {}),
        }
        self.consumer_config = {
            **self._common,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,  # tells "caught up" from "not fetched yet"
            "auto.offset.reset": "earliest",
            # Tansu answers a fetch only when this wait is over, even if records arrived meanwhile: a record waits
            # up to this long before a consumer sees it (a Kafka broker answers at once).
            "fetch.wait.max.ms": 20,
            **(consumer_config or {}),
        }
        self._admin = AdminClient(self._common)
        self._partitions: dict[str, int] = {}
        self._logical: dict[str, str] = {}  # Kafka topic name -> logical topic
        # Made now: an idempotent producer needs about half a second to get its producer id.
        self._producer: Producer | None = Producer(self.producer_config)
        self._producer_lock = threading.Lock()
        self._reader: _RawConsumer | None = None
        self._read_lock = threading.Lock()
        self._index: OrderedDict[uuid.UUID, tuple[_Batch, int]] = OrderedDict()  # event_id -> its append
        self._index_lock = threading.Lock()
        self._dedup_window = dedup_window

    def kafka_topic(self, topic: str) -> str:
        return self.prefix + topic

    def logical_topic(self, kafka_topic: str) -> str:
        topic = self._logical.get(kafka_topic)
        if topic is None:
            topic = kafka_topic[len(self.prefix):] if kafka_topic.startswith(self.prefix) else kafka_topic
            self._logical[kafka_topic] = topic
        return topic

    # ------------------------------------------------------------------ topics

    def create_topic(self, topic: str, partitions: int) -> None:
        name = self.kafka_topic(topic)
        existing = self._lookup_partitions(name)
        if existing is None:
            future = self._admin.create_topics([NewTopic(name, partitions, self.replication)], request_timeout=self.timeout)[name]
            try:
                future.result(self.timeout)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
            existing = self._wait_for_topic(name)
        if existing != partitions:
            raise ValueError(f"topic {topic} exists with {existing} partitions, not {partitions}")
        self._partitions[topic] = existing

    def partitions(self, topic: str) -> int:
        if topic not in self._partitions:
            found = self._lookup_partitions(self.kafka_topic(topic))
            if found is None:
                raise KeyError(f"no topic {topic!r}")
            self._partitions[topic] = found
        return self._partitions[topic]

    def _lookup_partitions(self, name: str) -> int | None:
        # Listing every topic, not asking for one by name: a named metadata request may auto-create the topic.
        meta = self._admin.list_topics(timeout=self.timeout).topics.get(name)
        if meta is None or meta.error is not None:
            return None
        return len(meta.partitions)

    def _wait_for_topic(self, name: str) -> int:
        deadline = time.monotonic() + self.timeout
        while (found := self._lookup_partitions(name)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name} not visible {self.timeout}s after creation")
            time.sleep(_IDLE)
        return found

    # ------------------------------------------------------------------ append

    def append(self, topic: str, envelopes: Sequence[Envelope]) -> list[Position]:
        if not envelopes:
            return []
        n = self.partitions(topic)
        name = self.kafka_topic(topic)
        batch = _Batch(topic)
        refs: list[tuple[_Batch, int]] = []  # per envelope, the append (this one or an earlier) that carries it
        fresh: list[Envelope] = []
        with self._index_lock:
            index = self._index
            for e in envelopes:
                ref = index.get(e.event_id)
                if ref is None:
                    ref = index[e.event_id] = (batch, len(fresh))
                    fresh.append(e)
                refs.append(ref)
            while len(index) > self._dedup_window:
                index.popitem(last=False)
        batch.expect(len(fresh))
        producer = self._get_producer()
        delivered = False
        try:
            for slot, e in enumerate(fresh):
                value = e.to_bytes()
                key = e.key
                # The envelope's JSON starts with its event_id: the header is that slice, not a second formatting.
                header = value[13:49] if value[:13] == b'{"event_id":"' else str(e.event_id).encode()
                self._produce(producer, name, value, key.encode(), partition_for(key, n), header,
                              partial(batch.delivered, slot))
            self._await(producer, {b for b, _ in refs})
            out = [b.position(slot) for b, slot in refs]
            delivered = True
        finally:
            if not delivered:
                self._forget(batch, fresh)
        return out

    @staticmethod
    def _produce(producer: Producer, name: str, value: bytes, key: bytes, partition: int, event_id: bytes,
                 on_delivery: Callable[[KafkaError | None, Message], None]) -> None:
        while True:
            try:
                producer.produce(name, value, key, partition=partition, headers=[(EVENT_ID_HEADER, event_id)],
                                 on_delivery=on_delivery)
                return
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(_IDLE)

    def _await(self, producer: Producer, batches: set["_Batch"]) -> None:
        deadline = time.monotonic() + self.timeout + 5
        for b in batches:
            while b.pending():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no delivery report within {self.timeout + 5}s")
                # flush, not poll: it sends what waits for linger.ms at once (and serves the delivery reports)
                producer.flush(_IDLE)

    def _forget(self, batch: "_Batch", fresh: list[Envelope]) -> None:
        """Drop the events of a failed append from the index, so that a retry appends them."""
        with self._index_lock:
            for slot, e in enumerate(fresh):
                if self._index.get(e.event_id) == (batch, slot) and not isinstance(batch.results[slot], Position):
                    del self._index[e.event_id]

    def _get_producer(self) -> Producer:
        with self._producer_lock:
            if self._producer is None:
                self._producer = Producer(self.producer_config)
            return self._producer

    # ------------------------------------------------------------------ read

    def read(self, topic: str, partition: int, offset: int, limit: int = 1000) -> list[LogRecord]:
        if limit <= 0:
            return []
        name = self.kafka_topic(topic)
        out: list[LogRecord] = []
        with self._read_lock:
            reader = self._get_reader()
            reader.assign([TopicPartition(name, partition, offset)])
            try:
                started = time.monotonic()
                deadline = started + self.timeout
                checked_end = False
                while len(out) < limit:
                    msgs = reader.consume(limit - len(out), 0) or [m for m in [reader.poll(_IDLE)] if m is not None]
                    if msgs:
                        if self._take(msgs, topic, partition, out, limit):
                            break
                        continue
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"reading {name}[{partition}] from {offset}: no answer")
                    # Past the end, Tansu answers with nothing at all (no end-of-partition event): check once.
                    if not checked_end and not out and time.monotonic() - started > 0.5:
                        checked_end = True
                        if offset >= self._partition_ends(name, [partition])[partition]:
                            break
                        reader.assign([TopicPartition(name, partition, offset)])
            finally:
                reader.unassign()
        return out

    def _take(self, msgs: list[Message], topic: str, partition: int, out: list[LogRecord], limit: int) -> bool:
        """Append the partition's records among ``msgs`` to ``out``; True when its end was reached."""
        got: list[LogRecord] = []
        ends: dict[tuple[str, int], int] = {}
        self.records(msgs, got, ends)
        out.extend(r for r in got if r.partition == partition and r.topic == topic)
        del out[limit:]
        return (topic, partition) in ends

    def records(self, msgs: list[Message], out: list[LogRecord], ends: dict[tuple[str, int], int]) -> None:
        """Turn messages into records appended to ``out``; end-of-partition events go to ``ends`` (offset)."""
        logical = self._logical
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == _EOF:
                    ends[(self.logical_topic(m.topic()), m.partition())] = m.offset()
                elif err.fatal() or not err.retriable():
                    raise KafkaException(err)
                else:
                    log.warning("kafka consumer: %s", err)
                continue
            value = m.value()
            # The envelope's JSON starts with its event_id (the field order of Envelope): reading it there costs
            # nothing, parsing the headers costs more than the rest of the record.
            if value[:13] == b'{"event_id":"' and value[49:50] == b'"':
                event_id = value[13:49].decode()
            else:
                event_id = _header_event_id(m)
            topic = logical.get(m.topic()) or self.logical_topic(m.topic())
            key = m.key()
            out.append(LogRecord(topic, m.partition(), m.offset(), key.decode() if key else "", event_id, value))

    def end_offsets(self, topic: str) -> dict[int, int]:
        name = self.kafka_topic(topic)
        with self._read_lock:
            return self._partition_ends(name, list(range(self.partitions(topic))))

    def _partition_ends(self, name: str, partitions: list[int]) -> dict[int, int]:
        """Read each partition from its reported "latest" minus one to the end-of-partition event (see module doc)."""
        futures = self._admin.list_offsets(
            {TopicPartition(name, p): OffsetSpec.latest() for p in partitions}, request_timeout=self.timeout
        )
        hints = {tp.partition: f.result(self.timeout).offset for tp, f in futures.items()}
        reader = self._get_reader()
        reader.assign([TopicPartition(name, p, max(0, hints[p] - 1)) for p in partitions])
        ends: dict[int, int] = {}
        deadline = time.monotonic() + self.timeout
        try:
            while len(ends) < len(partitions):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"end of {name} partitions {sorted(set(partitions) - set(ends))} not reached")
                for m in reader.consume(10_000, _IDLE):
                    err = m.error()
                    if err is None:
                        continue
                    if err.code() == _EOF:
                        ends[m.partition()] = m.offset()
                    elif err.fatal() or not err.retriable():
                        raise KafkaException(err)
        finally:
            reader.unassign()
        return ends

    def _get_reader(self) -> _RawConsumer:
        if self._reader is None:
            self._reader = _RawConsumer({
                **self.consumer_config,
                "group.id": f"{self.prefix}reader-{uuid.uuid4()}",  # assign() only: never joins, never commits
                "fetch.wait.max.ms": 10,
            })
        return self._reader

    # ------------------------------------------------------------------ groups

    def consumer(self, group: str, topics: Iterable[str]) -> "KafkaConsumer":
        return KafkaConsumer(self, group, list(topics))

    def committed(self, group: str, topic: str) -> dict[int, int]:
        name = self.kafka_topic(topic)
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(name, p) for p in range(self.partitions(topic))])
        future = self._admin.list_consumer_group_offsets([request], request_timeout=self.timeout)[group]
        result = future.result(self.timeout)
        return {tp.partition: tp.offset for tp in result.topic_partitions if tp.error is None and tp.offset >= 0}

    def group_config(self, group: str) -> dict[str, Any]:
        return {
            **self.consumer_config,
            "group.id": group,
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": max(100, self.session_timeout_ms // 3),
        }

    def close(self) -> None:
        if self._producer is not None:
            left = self._producer.flush(self.timeout)
            if left:
                log.warning("closing the Kafka log with %d records undelivered", left)
            self._producer = None
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


def _header_event_id(m: Message) -> str:
    for name, value in m.headers() or ():
        if name == EVENT_ID_HEADER:
            return value.decode()
    return str(Envelope.from_bytes(m.value()).event_id)  # written by a client that ignored the conventions


class _Batch:
    """The records of one append in flight; librdkafka reports each delivery to :meth:`delivered`."""

    __slots__ = ("topic", "results", "reported")

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.results: list[Position | KafkaError | None] = []
        self.reported = bytearray()  # 1 per slot once reported; a bytes scan is much cheaper than comparing results

    def expect(self, n: int) -> None:
        self.results = [None] * n
        self.reported = bytearray(n)

    def pending(self) -> bool:
        return 0 in self.reported

    def position(self, slot: int) -> Position:
        result = self.results[slot]
        if not isinstance(result, Position):
            raise KafkaException(result or KafkaError(KafkaError._TIMED_OUT, "no delivery report"))
        return result

    def delivered(self, slot: int, err: KafkaError | None, msg: Message) -> None:
        self.results[slot] = err if err is not None else Position(self.topic, msg.partition(), msg.offset())
        self.reported[slot] = 1


class KafkaConsumer(Consumer):
    """A member of a Kafka consumer group; offsets are committed only by :meth:`commit`.

    The first :meth:`poll` waits for the group join, and any poll waits (briefly) until each assigned partition has
    either delivered records or reported its end, so ``poll(timeout=0)`` returning nothing means "caught up", as on
    the SQLite log.
    """

    def __init__(self, event_log: KafkaLog, group: str, topics: list[str]) -> None:
        self.log, self.group, self.topics = event_log, group, topics
        self._c = _RawConsumer(event_log.group_config(group))
        self._assigned: set[tuple[str, int]] = set()
        self._at_end: set[tuple[str, int]] = set()
        self._joined = False
        self._seeks: dict[tuple[str, int], int] = {}
        self._polled: dict[tuple[str, int], int] = {}
        self._closed = False
        self._join_timeout = event_log.session_timeout_ms / 1000 + event_log.timeout
        self._c.subscribe([event_log.kafka_topic(t) for t in topics], on_assign=self._on_assign,
                          on_revoke=self._on_revoke, on_lost=self._on_revoke)

    def _tp(self, tp: TopicPartition) -> tuple[str, int]:
        return self.log.logical_topic(tp.topic), tp.partition

    def _on_assign(self, consumer: _RawConsumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            key = self._tp(tp)
            if key in self._seeks:
                tp.offset = self._seeks.pop(key)
        consumer.assign(partitions)
        self._assigned = {self._tp(tp) for tp in partitions}
        self._at_end = set()
        self._joined = True

    def _on_revoke(self, consumer: _RawConsumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            key = self._tp(tp)
            self._assigned.discard(key)
            self._at_end.discard(key)
            self._polled.pop(key, None)
        consumer.unassign()

    def assignment(self) -> set[tuple[str, int]]:
        return set(self._assigned)

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[LogRecord]:
        now = time.monotonic()
        deadline = now + timeout
        settle = now + (self._join_timeout if not self._joined else self.log.timeout)
        out: list[LogRecord] = []
        while len(out) < max_records:
            msgs = self._c.consume(max_records - len(out), 0)
            if not msgs:
                now = time.monotonic()
                caught_up = self._joined and self._at_end >= self._assigned
                if out or now >= deadline and (caught_up or now >= settle):
                    break
                m = self._c.poll(_IDLE)
                if m is None:
                    continue
                msgs = [m]
            first = len(out)
            ends: dict[tuple[str, int], int] = {}
            self.log.records(msgs, out, ends)
            touched = set()
            for r in out[first:]:
                tp = (r.topic, r.partition)
                self._polled[tp] = r.offset + 1
                touched.add(tp)
            self._at_end -= touched
            self._at_end.update(tp for tp, end in ends.items() if end >= self._polled.get(tp, 0))
        if not self._joined:
            log.warning("consumer %s: not in the group after %.0fs", self.group, self._join_timeout)
        return out

    def commit(self, records: Sequence[LogRecord] | None = None) -> None:
        positions = dict(self._polled) if records is None else positions_after(records)
        # A partition taken away by a rebalance is the new owner's to commit.
        offsets = [TopicPartition(self.log.kafka_topic(t), p, o) for (t, p), o in positions.items()
                   if (t, p) in self._assigned]
        if not offsets:
            return
        try:
            self._c.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() not in _REBALANCED:
                raise
            log.warning("consumer %s: commit refused after a rebalance (%s); records will be redelivered",
                        self.group, exc.args[0])

    def seek(self, position: Position) -> None:
        key = (position.topic, position.partition)
        if key not in self._assigned:
            self._seeks[key] = position.offset  # applied when the group assigns the partition
            return
        self._at_end.discard(key)
        self._c.seek(TopicPartition(self.log.kafka_topic(position.topic), position.partition, position.offset))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._c.close()
