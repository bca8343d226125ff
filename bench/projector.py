"""How fast the projector applies events: ``projector backend=<sqlite|postgres> events_per_s=<n>``.

Builds a realistic stream (orders, studies, reports, amendments, cancellations across hospitals), appends it to
an embedded log, then times the embedded runner applying all of it into empty views.

    .venv/bin/python bench/projector.py [--events 50000] [--backend sqlite|postgres|both] [--processors all|core]
                                        [--repeat 3]
"""
from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra import services  # noqa: E402
from streams.log.sqlite import SqliteLog  # noqa: E402
from streams.processors import ALL, ExamHistory, HospitalDailyCounts  # noqa: E402
from streams.runtime.embedded import EmbeddedRunner  # noqa: E402
from streams.topics import all_topics, create_topics, publish  # noqa: E402
from streams.views.projector import Projector  # noqa: E402
from tests.unit.exam_stream import StreamBuilder  # noqa: E402
from wanying.wiring import make_engine  # noqa: E402

HOSPITALS = ["AH-HF-001", "AH-HF-002", "AH-WH-001", "AH-BB-001", "AH-AQ-001"]


def build_events(n: int, seed: int = 7) -> list:
    """About ``n`` events: people with several exams each, stories interleaved as they are in real life."""
    rng = random.Random(seed)
    b = StreamBuilder()
    person = 0
    while len(b.events) < n:
        person += 1
        pk = b.person(f"340104{1950 + person % 60}0{1 + person % 9}1{person % 10}{person % 1000:03d}")
        for exam in range(rng.randint(1, 3)):
            h = rng.choice(HOSPITALS)
            order, acc, uid = f"O{person}-{exam}", f"A{person}-{exam}", f"1.2.156.{person}.{exam}"
            b.order(pk, h, order, accession=acc)
            if rng.random() < 0.1:
                b.cancel(pk, h, order)
                continue
            b.received(pk, h, uid, accession=acc)
            b.completed(pk, h, uid, accession=acc, series=rng.randint(1, 4))
            b.report(pk, h, f"R{person}-{exam}", study_uid=uid)
            if rng.random() < 0.05:
                b.amend(pk, h, f"R{person}-{exam}")
    # Interleave people: shuffle within windows so a batch touches many keys yet each person stays in order.
    events = b.events[:n]
    window = 400
    out = []
    for i in range(0, len(events), window):
        chunk = events[i : i + window]
        by_key: dict[str, list] = {}
        for e in chunk:
            by_key.setdefault(e.key, []).append(e)
        queues = list(by_key.values())
        while queues:
            q = rng.choice(queues)
            out.append(q.pop(0))
            if not q:
                queues.remove(q)
    return out


def measure(url: str, events: list, workdir: Path, processors: tuple = ALL) -> float:
    log = SqliteLog(workdir / "log.sqlite", fsync="off")
    create_topics(log)
    if not log.count("person"):
        publish(log, events)
    engine = make_engine(url)
    projector = Projector(engine, [p() for p in processors])
    projector.drop()
    projector.create()
    runner = EmbeddedRunner(log, projector, all_topics())
    start = time.perf_counter()
    applied = runner.run_until_caught_up()
    elapsed = time.perf_counter() - start
    assert applied == len(events), (applied, len(events))
    engine.dispose()
    log.close()
    return len(events) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--processors", choices=["all", "core"], default="all",
                        help="every processor of the platform, or only ExamHistory and HospitalDailyCounts")
    parser.add_argument("--repeat", type=int, default=1, help="report the best of this many runs (noisy hosts)")
    args = parser.parse_args()
    events = build_events(args.events)
    # The stream is the bench's, not the runtime's: left to the collector, its envelopes are traversed by every
    # full collection during the measurement (a quarter of the time at 30,000 events).
    gc.freeze()
    processors = ALL if args.processors == "all" else (ExamHistory, HospitalDailyCounts)
    with tempfile.TemporaryDirectory(prefix="wanying-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        if args.backend in ("sqlite", "both"):
            rate = max(measure(f"sqlite:///{work / 'views.sqlite'}", events, work, processors) for _ in range(args.repeat))
            print(f"projector backend=sqlite events_per_s={rate:.0f}", flush=True)
        if args.backend in ("postgres", "both"):
            pg = stack.enter_context(services.postgres())
            rate = max(measure(pg.url, events, work, processors) for _ in range(args.repeat))
            print(f"projector backend=postgres events_per_s={rate:.0f}", flush=True)


if __name__ == "__main__":
    main()
