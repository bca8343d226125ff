"""How fast each log appends and consumes, next to what the bare storage does with the same bytes.

Prints one line per backend (medians of ``--repeat`` runs):

    log_throughput backend=sqlite append_eps=<n> consume_eps=<n> ceiling_append_eps=<n>
    log_throughput backend=kafka append_eps=<n> consume_eps=<n> ceiling_append_eps=<n> ceiling_consume_eps=<n>

- The events are ExamOrdered envelopes (``schemas.REGISTRY.new``), about 630 bytes each, over 20,000 person keys,
  appended in batches of ``--batch``; each append waits until the batch is durable, as the log promises.
- sqlite: a fresh log file (``fsync=full``) per run; consume = a consumer group polling everything back. Ceiling: a
  plain ``executemany`` of the same (key, value) bytes into a bare table in a file in the same directory, same
  journal mode, fsync and transaction per batch.
- kafka: a Tansu broker started here (in-memory storage), a fresh topic per run; consume = a group member polling
  everything back, timed from its first record (the group join, half of ``session.timeout.ms`` on Tansu, is not
  throughput). Ceilings: raw confluent-kafka with the same producer settings producing the same key, value, header
  and partition per record in the same batches; raw consume = an assigned consumer reading every partition to its
  end, timed the same way.
- The 100,000 input envelopes are moved out of the garbage collector's sight (``gc.freeze``) before timing: they
  are the harness's, and rescanning them on every collection the log triggers would be charged to the log.

    .venv/bin/python bench/log_throughput.py [--events 100000] [--batch 2000] [--repeat 3] [--backend both]
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas import REGISTRY  # noqa: E402
from schemas import events as ev  # noqa: E402
from schemas.envelope import Envelope  # noqa: E402
from streams.log.port import EventLog, partition_for  # noqa: E402

TOPIC = "person"
PARTITIONS = 16
CST = timezone(timedelta(hours=8))
HOSPITALS = ("AHSL", "AHYKD", "AHZL", "HFEY", "HFSY", "WHYJS", "BBYX", "AQSL", "FYRM", "HNDY")
ITEMS = (("CT001", "头颅CT平扫", "CT"), ("CT010", "胸部CT平扫", "CT"), ("MR030", "腰椎MR平扫", "MR"),
         ("DR001", "胸部正位片", "DX"), ("US001", "腹部彩超", "US"))


def build_envelopes(n: int) -> list[Envelope]:
    start = datetime(2026, 11, 2, 8, 0, tzinfo=CST)
    out = []
    for i in range(n):
        key = hashlib.sha256(f"bench-person-{i % 20_000}".encode()).hexdigest()
        hospital = HOSPITALS[i % len(HOSPITALS)]
        code, name, modality = ITEMS[i % len(ITEMS)]
        payload = ev.ExamOrdered(
            hospital=hospital, order_id=f"O{i:09d}", person_key=key, visit_id=f"V{i // 2:09d}",
            local_item_code=code, local_item_name=name, modality=modality, doctor_id=f"D{i % 300:04d}",
            accession_number=f"A{i:011d}",
        )
        out.append(REGISTRY.new(payload, key=key, source=hospital, occurred_at=start + timedelta(seconds=i)))
    return out


def batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


#: CPU microseconds per event of each timed step, (this thread, whole process), for ``--cpu``
CPU: dict[str, list[tuple[float, float]]] = defaultdict(list)


def timed(label: str, fn: Callable[[], int]) -> float:
    """Events per second of ``fn``, which returns how many events it handled."""
    t0, thread0, process0 = time.perf_counter(), time.thread_time(), time.process_time()
    n = fn()
    elapsed = time.perf_counter() - t0
    CPU[label].append(((time.thread_time() - thread0) / n * 1e6, (time.process_time() - process0) / n * 1e6))
    return n / elapsed


def append_all(log: EventLog, envelopes: list[Envelope], size: int) -> int:
    for batch in batches(envelopes, size):
        log.append(TOPIC, batch)
    return len(envelopes)


def consume_rate(label: str, poll: Callable[[], int], expected: int, timeout: float = 120.0) -> float:
    """Events per second after the first record arrived (the records of that first poll are not counted)."""
    deadline = time.monotonic() + timeout
    first = 0
    while not first:
        first = poll()
        if time.monotonic() > deadline:
            raise TimeoutError("no record consumed")
    t0, got = time.perf_counter(), first
    thread0, process0 = time.thread_time(), time.process_time()
    while got < expected:
        got += poll()
        if time.monotonic() > deadline:
            raise TimeoutError(f"consumed {got} of {expected}")
    if got != expected:
        raise AssertionError(f"consumed {got} records, expected {expected}")
    counted = max(got - first, 1)
    thread_us = (time.thread_time() - thread0) / counted * 1e6
    CPU[label].append((thread_us, (time.process_time() - process0) / counted * 1e6))
    return counted / (time.perf_counter() - t0)


# ---------------------------------------------------------------- sqlite


def sqlite_run(envelopes: list[Envelope], size: int, workdir: Path) -> tuple[float, float, float]:
    from streams.log.sqlite import FSYNC, SqliteLog

    run = Path(tempfile.mkdtemp(dir=workdir))
    try:
        rows = [(e.key, e.to_bytes()) for e in envelopes]
        raw = sqlite3.connect(run / "raw.sqlite", isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute(f"PRAGMA synchronous={FSYNC['full']}")
        raw.execute("CREATE TABLE raw (key TEXT NOT NULL, value BLOB NOT NULL)")

        def raw_append() -> int:
            for batch in batches(rows, size):
                raw.execute("BEGIN IMMEDIATE")
                raw.executemany("INSERT INTO raw VALUES (?, ?)", batch)
                raw.execute("COMMIT")
            return len(rows)

        ceiling = timed("sqlite ceiling_append", raw_append)
        raw.close()

        with SqliteLog(run / "log.sqlite", fsync="full") as log:
            log.create_topic(TOPIC, PARTITIONS)
            append = timed("sqlite append", lambda: append_all(log, envelopes, size))
            consumer = log.consumer("bench", [TOPIC])
            poll = lambda: len(consumer.poll(5000, timeout=0))  # noqa: E731
            consume = timed("sqlite consume", lambda: drain(poll, len(envelopes)))
        return append, consume, ceiling
    finally:
        shutil.rmtree(run, ignore_errors=True)


def drain(poll: Callable[[], int], expected: int) -> int:
    got = 0
    while got < expected:
        n = poll()
        if not n:
            raise AssertionError(f"log ran dry after {got} of {expected} records")
        got += n
    return got


# ---------------------------------------------------------------- kafka


def kafka_run(envelopes: list[Envelope], size: int, bootstrap: str) -> tuple[float, float, float, float]:
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

    from streams.log.kafka import EVENT_ID_HEADER, KafkaLog

    n = len(envelopes)
    with KafkaLog(bootstrap, prefix=f"bench{uuid.uuid4().hex[:8]}.", session_timeout_ms=6000) as log:
        for topic in (TOPIC, "raw", "warmup"):
            log.create_topic(topic, PARTITIONS)
        raw_topic = log.kafka_topic("raw")
        records = [(e.to_bytes(), e.key.encode(), partition_for(e.key, PARTITIONS), str(e.event_id)) for e in envelopes]
        producer = Producer(log.producer_config)
        producer.produce(log.kafka_topic("warmup"), b"w", partition=0)  # the idempotent producer's start-up
        producer.flush(30)

        def raw_produce() -> int:
            for batch in batches(records, size):
                for value, key, partition, event_id in batch:
                    producer.produce(raw_topic, value, key, partition=partition, headers=[(EVENT_ID_HEADER, event_id)])
                if producer.flush(60):
                    raise RuntimeError("raw producer did not deliver")
            return n

        ceiling_append = timed("kafka ceiling_append", raw_produce)
        append = timed("kafka append", lambda: append_all(log, envelopes, size))

        raw_consumer = Consumer({**log.consumer_config, "group.id": f"raw-{uuid.uuid4().hex}"})
        raw_consumer.assign([TopicPartition(raw_topic, p, 0) for p in range(PARTITIONS)])

        def raw_poll() -> int:
            got = 0
            for m in raw_consumer.consume(5000, 0.2):
                err = m.error()
                if err is None:
                    got += 1
                elif err.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(err)
            return got

        ceiling_consume = consume_rate("kafka ceiling_consume", raw_poll, n)
        raw_consumer.close()

        with log.consumer(f"bench-{uuid.uuid4().hex[:8]}", [TOPIC]) as consumer:
            consume = consume_rate("kafka consume", lambda: len(consumer.poll(5000, timeout=0.2)), n)
        return append, consume, ceiling_append, ceiling_consume


# ---------------------------------------------------------------- main


def median_line(backend: str, runs: list[tuple[float, ...]], names: list[str]) -> str:
    medians = [statistics.median(r[i] for r in runs) for i in range(len(names))]
    fields = " ".join(f"{name}={round(value)}" for name, value in zip(names, medians))
    return f"log_throughput backend={backend} {fields}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "kafka", "both"], default="both")
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite files go (default: a temp dir)")
    parser.add_argument("--cpu", action="store_true", help="also print CPU microseconds per event on stderr")
    args = parser.parse_args(argv)

    envelopes = build_envelopes(args.events)
    # The input is the harness's, not the log's: keep the collector from rescanning 100,000 envelopes every time
    # the log under test allocates (a producer streaming events would not hold them all in memory).
    gc.collect()
    gc.freeze()
    names = ["append_eps", "consume_eps", "ceiling_append_eps"]
    if args.backend in ("sqlite", "both"):
        workdir = Path(tempfile.mkdtemp(prefix="log-bench-", dir=args.dir))
        try:
            runs = [sqlite_run(envelopes, args.batch, workdir) for _ in range(args.repeat)]
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print(median_line("sqlite", runs, names), flush=True)
    if args.backend in ("kafka", "both"):
        from infra import services

        with services.tansu() as broker:
            runs = [kafka_run(envelopes, args.batch, broker.bootstrap) for _ in range(args.repeat)]
        print(median_line("kafka", runs, names + ["ceiling_consume_eps"]), flush=True)
    if args.cpu:
        for label, samples in CPU.items():
            main_us = statistics.median(s[0] for s in samples)
            process_us = statistics.median(s[1] for s in samples)
            print(f"cpu {label}: {main_us:.1f} us/event in the calling thread, {process_us:.1f} in the process",
                  file=sys.stderr)


if __name__ == "__main__":
    main()
