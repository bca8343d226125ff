"""What the test broker costs per append as the log grows:
``broker_scaling records=<n> appends_per_s=<n> events_per_s=<n> broker_cpu=<pct>``.

The Kafka-protocol broker that runs here is Tansu 0.6 with its memory storage (``infra/services.start_tansu``; its
PostgreSQL storage is not compiled into the only build available). This bench fills the ``person`` topic with
``records`` events, then appends for ``--seconds`` the way the HIS side of ``bench/reminder_latency.py`` does (one
order of three events per append, waiting for the acknowledgement, at most ``--rate`` appends per second) while one
consumer tails the topic, and prints the broker's CPU share of one core. It is the reference for reading the
Kafka figures of ``reminder_latency`` at a large history: there the broker holds 4 million records.

    .venv/bin/python bench/broker_scaling.py [--records 0,1000000,4000000] [--seconds 10] [--rate 200]
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from infra import services  # noqa: E402
from schemas import events as ev  # noqa: E402
from schemas.registry import REGISTRY  # noqa: E402
from streams.log.kafka import KafkaLog  # noqa: E402
from streams.log.port import Position  # noqa: E402
from streams.topics import create_topics, publish  # noqa: E402

HOSPITAL = "AH-HF-001"


def opened(tag: str, n: int) -> list:
    now = datetime.now(timezone.utc)
    out = []
    for i in range(n):
        pk = hashlib.sha256(f"{tag}-{i}".encode()).hexdigest()
        out.append(REGISTRY.new(ev.PatientOpened(hospital=HOSPITAL, doctor_id="D1", person_key=pk), key=pk,
                                source=HOSPITAL, occurred_at=now))
    return out


def measure(records: int, seconds: float, rate: float) -> None:
    with tempfile.TemporaryDirectory(prefix="broker-scaling-") as tmp, services.tansu(Path(tmp)) as broker:
        log = KafkaLog(broker.bootstrap, prefix="scaling.")
        create_topics(log)
        filled = 0
        while filled < records:
            n = min(20_000, records - filled)
            publish(log, opened(f"history{filled}", n))
            filled += n
        stop, tailed = threading.Event(), [0]

        def tail() -> None:
            consumer = log.consumer("tail", ["person"])
            for partition, end in log.end_offsets("person").items():
                consumer.seek(Position("person", partition, end))
            while not stop.is_set():
                tailed[0] += len(consumer.poll(1000, 0.05))
            consumer.close()

        tailer = threading.Thread(target=tail)
        tailer.start()
        time.sleep(8)  # the consumer's group join takes seconds on Tansu
        pid = broker.process.pid
        cpu0, t0, appends = services.cpu_seconds(pid), time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            publish(log, opened(f"live{appends}", 3))
            appends += 1
            pause = t0 + appends / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        elapsed = time.perf_counter() - t0
        cpu = (services.cpu_seconds(pid) - cpu0) / elapsed * 100
        stop.set()
        tailer.join()
        log.close()
        print(f"broker_scaling records={records} appends_per_s={appends / elapsed:.0f} "
              f"events_per_s={3 * appends / elapsed:.0f} broker_cpu={cpu:.0f}%", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", default="0,1000000,4000000", help="comma-separated history sizes")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=200.0, help="appends per second at most")
    args = ap.parse_args()
    for records in (int(r) for r in args.records.split(",")):
        measure(records, args.seconds, args.rate)


if __name__ == "__main__":
    main()
