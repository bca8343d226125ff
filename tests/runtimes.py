"""Helpers for runtime tests: run ``wanying worker`` as a process, feed a log, wait on the views, compare them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from schemas.envelope import Envelope
from streams.log.port import EventLog, LogRecord
from streams.log.sqlite import SqliteLog
from streams.processors import ALL as PROCESSORS
from streams.processors.daily_counts import COUNTED
from streams.runtime.embedded import EmbeddedRunner
from streams.topics import all_topics, create_topics, publish
from streams.views.projector import Projector
from tests.streamgen import chunks
from wanying.wiring import make_engine

REPO = Path(__file__).resolve().parents[1]


def projector_at(url: str) -> Projector:
    projector = Projector(make_engine(url), [p() for p in PROCESSORS])
    projector.create()
    return projector


class Worker:
    """``python -m wanying.cli worker`` in its own process, configured only through WANYING_* variables."""

    def __init__(self, workdir: Path, **settings: str) -> None:
        self.workdir = workdir
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        self.env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
        self.env.update({f"WANYING_{k.upper()}": str(v) for k, v in settings.items()})
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "Worker":
        self.starts += 1
        out = open(self.workdir / f"worker-{self.starts}.log", "wb")
        # cwd is the work folder, so no .env of the developer's is read.
        self.proc = subprocess.Popen([sys.executable, "-m", "wanying.cli", "worker"], cwd=self.workdir,
                                     env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> int:
        """SIGKILL: no handler, no cleanup, no last commit."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode

    def output(self) -> str:
        return "\n".join((self.workdir / f"worker-{i}.log").read_text(errors="replace")[-3000:]
                         for i in range(1, self.starts + 1))


def applied(projector: Projector) -> int:
    """How many records the views have consumed (positions start at 0 and are contiguous on both backends)."""
    try:
        return sum(projector.positions().values())
    except Exception:  # the worker may still be creating its tables
        return 0


def wait_applied(projector: Projector, at_least: int, worker: Worker, timeout: float, stall: float = 30) -> int:
    """Wait until the views have consumed ``at_least`` records; fail if the worker dies or makes no progress for
    ``stall`` seconds (a group join takes a few seconds on Tansu, a batch well under one)."""
    deadline = time.monotonic() + timeout
    last, progressed = -1, time.monotonic()
    while (now := time.monotonic()) < deadline and now - progressed < stall:
        n = applied(projector)
        if n >= at_least:
            return n
        if n != last:
            last, progressed = n, now
        if not worker.alive():
            raise AssertionError(f"worker exited with {worker.proc.returncode}:\n{worker.output()}")
        time.sleep(0.02)
    raise AssertionError(f"views reached {applied(projector)} of {at_least} records (timeout {timeout}s, "
                         f"stall {stall}s):\n{worker.output()}")


def wait_caught_up(projector: Projector, log: EventLog, worker: Worker, timeout: float = 60) -> None:
    """Wait until the views hold every record on the log, decided events included.

    The worker appends decided events after each batch, and those can decide more (a link hands a history over,
    which can raise a reminder), so the log's end moves until the outbox stays empty. The order of the reads is
    what makes the answer true: the views' positions first, then the outbox, then the log's ends. Read the other
    way round, a flush landing while the ends are read (which takes a while on Kafka) goes unseen: the ends miss
    what it appended, and the outbox it emptied looks as if nothing were pending. The same answer twice in a row.
    """
    deadline = time.monotonic() + timeout
    steady, last = 0, None
    while time.monotonic() < deadline:
        held = {tp: o for tp, o in projector.positions().items() if o}
        pending = bool(projector.pending_outbox())
        ends = log_ends(log)
        caught_up = not pending and held == ends
        steady = steady + 1 if caught_up and ends == last else int(caught_up)
        last = ends
        if steady == 2:
            return
        if not worker.alive():
            raise AssertionError(f"worker exited with {worker.proc.returncode}:\n{worker.output()}")
        time.sleep(0.2)
    raise AssertionError(f"views not caught up with the log in {timeout}s:\n{worker.output()}")


def log_ends(log: EventLog) -> dict[tuple[str, int], int]:
    """The end offset of every partition holding records."""
    return {(t, p): o for t in all_topics() for p, o in log.end_offsets(t).items() if o}


def assert_still_caught_up(projector: Projector, log: EventLog) -> None:
    """After the worker stopped: nothing reached the log that the views did not apply (an append after the wait
    said "caught up" would otherwise be missed by every later comparison but one against the log)."""
    held = {tp: o for tp, o in projector.positions().items() if o}
    ends = log_ends(log)
    behind = {tp: (held.get(tp, 0), end) for tp, end in ends.items() if held.get(tp, 0) != end}
    assert not behind and not projector.pending_outbox(), (
        f"the views stopped behind the log (partition: (views, log end)) {behind}, "
        f"{len(projector.pending_outbox())} decided events unsent")


def log_envelopes(log: EventLog) -> list[Envelope]:
    """Every record on the log, read back (decided events included)."""
    out: list[Envelope] = []
    for topic in all_topics():
        for partition, end in log.end_offsets(topic).items():
            offset = 0
            while offset < end:
                records = log.read(topic, partition, offset, 5000)
                assert records, f"{topic}[{partition}] has nothing at {offset} before its end {end}"
                out.extend(r.envelope() for r in records)
                offset = records[-1].offset + 1
    return out


def append(log: EventLog, envelopes: Sequence[Envelope], batch: int = 1000) -> None:
    for chunk in chunks(envelopes, batch):
        publish(log, chunk)


def clean_replay(envelopes: Sequence[Envelope], workdir: Path) -> Projector:
    """The reference: the stream appended to a fresh SQLite log, replayed once into fresh views."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = SqliteLog(workdir / "log.sqlite", fsync="off")
    create_topics(log)
    append(log, envelopes)
    projector = projector_at(f"sqlite:///{workdir / 'views.sqlite'}")
    EmbeddedRunner(log, projector, list(all_topics())).run_until_caught_up()
    log.close()
    return projector


def assert_same_views(got: Projector, want: Projector) -> None:
    a, b = got.dump(), want.dump()
    assert a.keys() == b.keys()
    for table in b:
        if a[table] != b[table]:
            extra = sorted(set(a[table]) - set(b[table]))[:3]
            missing = sorted(set(b[table]) - set(a[table]))[:3]
            raise AssertionError(f"{table}: {len(a[table])} rows vs {len(b[table])} expected; "
                                 f"unexpected {extra}; missing {missing}")


def expected_daily_total(envelopes: Sequence[Envelope]) -> int:
    """Events the daily-count view must count exactly once (computed from the log, not by any runtime; a copy of
    an event, which Kafka may hold, is the same event)."""
    return len({e.event_id for e in envelopes if e.type in COUNTED and e.payload.get("hospital")})


def daily_total(projector: Projector) -> int:
    return sum(row[-1] for row in projector.dump()["hospital_daily_counts"])




def applied_event_ids(projector: Projector) -> set[str]:
    import sqlalchemy as sa

    from streams.views.projector import applied_events

    with projector.engine.connect() as conn:
        return set(conn.execute(sa.select(applied_events.c.event_id).where(
            applied_events.c.projector == projector.name)).scalars())


def explain_missing(projector: Projector, log: EventLog) -> str:
    """Which counted events on the log the views never applied: type, where they sit, and whether they are decided
    events still (or again) in the outbox. Appended to a failed comparison so that a rare failure explains itself."""
    import sqlalchemy as sa

    from streams.views.projector import outbox

    applied_ids = applied_event_ids(projector)
    with projector.engine.connect() as conn:
        box = {i: s for i, s in conn.execute(sa.select(outbox.c.event_id, outbox.c.sent))}
    positions = projector.positions()
    missing: list[tuple[LogRecord, Envelope]] = []
    ids_on_log: set[str] = set()
    for topic in all_topics():
        for partition, end in log.end_offsets(topic).items():
            offset = 0
            while offset < end:
                records = log.read(topic, partition, offset, 5000)
                if not records:
                    break
                for r in records:
                    e = r.envelope()
                    ids_on_log.add(str(e.event_id))
                    if e.type in COUNTED and e.payload.get("hospital") and str(e.event_id) not in applied_ids:
                        missing.append((r, e))
                offset = records[-1].offset + 1
    seen: set[str] = set()
    lines = []
    for r, e in missing:
        if str(e.event_id) in seen:
            continue
        seen.add(str(e.event_id))
        lines.append(f"  {e.type} {e.event_id} at {r.topic}[{r.partition}]@{r.offset} (views at "
                     f"{positions.get((r.topic, r.partition))}), outbox={box.get(str(e.event_id), 'absent')}, "
                     f"source={e.source}, caused by {getattr(e, 'causation_id', None)}")
    unsent = [i for i, s in box.items() if not s]
    never_logged = [i for i in box if i not in ids_on_log]
    by_kind: dict[str, int] = {}
    for r, e in missing:
        by_kind[e.type] = by_kind.get(e.type, 0) + 1
    return (f"{len(seen)} counted events on the log not applied by the views {by_kind}; outbox {len(box)} rows, "
            f"{len(unsent)} unsent, {len(never_logged)} not on the log:\n" + "\n".join(lines[:40]))
