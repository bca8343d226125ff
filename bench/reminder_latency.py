"""Reminder and duplicate-exam latency as the doctor plugin sees it, on each runtime:
``reminder_latency runtime=<embedded|kafka> p50_ms=<n> p99_ms=<n> orders=<n>``.

1. History: a year of a mid-size city's exams (default 1,000,000 exams of 250,000 persons at the city's
   hospitals; 4 events each: order, standard items, study completed, final report). A child process generates
   the envelopes and appends them to the platform's log in large batches while the runtime projects them (through
   the real log and projector, in large batches); the phase ends when the views hold every record.
2. Live: ``--rate`` orders per second for ``--seconds``. Each order is what an HIS sends when a doctor opens a
   patient and orders an exam (PatientOpened, ExamOrdered, ExamItemsResolved), for a person with a recent
   matching exam elsewhere. The latency of an order runs from just before its append to the moment the doctor
   feed (the same in-process tailer that serves the plugin's SSE stream, releasing an event only once the views
   hold it) hands over its first DuplicateFound (the headline figure); the ReminderRaised of the same HIS message
   is timed too and printed on the ``live`` line.

Runtimes: ``embedded`` is the embedded runner on the SQLite log (in this process, as ``wanying run`` has it);
``kafka`` is ``wanying worker`` (Faust) in its own process on a Tansu broker that the bench starts on loopback,
with the views in SQLite; ``both`` runs one after the other.

    .venv/bin/python bench/reminder_latency.py [--runtime embedded|kafka|both] [--exams 1000000] [--rate 200]
                                               [--seconds 15] [--log-fsync full|normal|off] [--keep DIR]

``--keep DIR`` keeps the data; run again with the same ``DIR``, the embedded runtime reuses its history and runs
only the live phase (a Kafka history lives in the broker's memory and is always loaded again).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from infra import services  # noqa: E402
from schemas import events as ev  # noqa: E402
from schemas.envelope import Envelope, new_event_id  # noqa: E402
from schemas.registry import REGISTRY  # noqa: E402
from streams.doctor_feed import DoctorFeed  # noqa: E402
from streams.topics import all_topics, publish  # noqa: E402
from wanying.settings import Settings  # noqa: E402
from wanying.wiring import Platform  # noqa: E402

CST = timezone(timedelta(hours=8))
# A mid-size city: its own hospitals plus the provincial ones its patients also use (schemas/catalogs/hospitals.yaml).
HOSPITALS = ["AH-WH-001", "AH-WH-002", "AH-HF-001", "AH-HF-002", "AH-HF-003", "AH-BB-001", "AH-AQ-002"]
ORDERING = "AH-HF-001"
EXAMS = [("胸部CT平扫", "CT"), ("头颅CT平扫", "CT"), ("上腹部CT平扫", "CT"), ("头颅MR平扫", "MR"),
         ("腰椎MR平扫", "MR"), ("胸部正位片", "DX")]
BATCH = 20_000  # events per append
CHECK_EVERY = 50_000  # every so many exams, the fast envelopes are checked against the payload models
HISTORY_BATCH = 5000  # records per projector transaction while the history is loaded
TYPES = {name: REGISTRY[name] for name in ("ExamOrdered", "ExamItemsResolved", "StudyCompleted", "ReportFinalized")}


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, dtime(hour, minute), CST)


class City:
    """The synthetic city: persons, their exams of the past year, and who has a recent exam elsewhere."""

    def __init__(self, keys, items: list[tuple[str, str, tuple[str, ...]]], exams: int, seed: int = 11) -> None:
        self.keys, self.items, self.rng = keys, items, random.Random(seed)
        self.n_persons = max(1, exams // 4)
        self.n_exams = exams
        self.today = date.today()
        self._pk: dict[int, str] = {}
        self.recent: dict[int, tuple[str, str, str, tuple[str, ...]]] = {}  # person -> a recent exam elsewhere
        self.order_prefix = "L"

    def person_key(self, i: int) -> str:
        """The national person key of synthetic person ``i``."""
        if i not in self._pk:
            self._pk[i] = self.keys.person_key(f"BENCH{i:013d}")  # HMAC like a real one; no ID number needed
        return self._pk[i]

    def history(self):
        """Batches of envelopes, exam by exam in time order (oldest first)."""
        days = sorted(self.rng.randrange(1, 366) for _ in range(self.n_exams))
        batch: list[Envelope] = []
        for n, age in enumerate(reversed(days)):
            person = self.rng.randrange(self.n_persons)
            pk = self.person_key(person)
            hospital = self.rng.choice(HOSPITALS[:-1] if self.rng.random() < 0.8 else HOSPITALS)
            name, modality, items = self.rng.choice(self.items)
            day = self.today - timedelta(days=age)
            exam = self._exam(n, pk, hospital, name, modality, items, day)
            if n % CHECK_EVERY == 0:
                self._check(exam)
            batch += exam
            if hospital != ORDERING and age <= 25:
                self.recent[person] = (pk, f"1.2.826.0.1.3680043.{n}", name, items)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _exam(self, n: int, pk: str, hospital: str, name: str, modality: str, items: tuple[str, ...],
              day: date) -> list[Envelope]:
        """The four events of one exam, built without the payload models (they cost more than the rest of the
        bench's generation together); :meth:`_check` holds them to the models."""
        order_id, uid = f"H{n}", f"1.2.826.0.1.3680043.{n}"
        payloads = [
            ("ExamOrdered", {"hospital": hospital, "order_id": order_id, "person_key": pk,
                             "local_item_code": name[:8], "local_item_name": name, "modality": modality,
                             "patient_class": "outpatient", "doctor_id": "D1"}, at(day, 8)),
            ("ExamItemsResolved", {"hospital": hospital, "person_key": pk, "order_id": order_id,
                                   "standard_items": list(items), "catalog_version": "bench", "method": "auto"},
             at(day, 8, 1)),
            ("StudyCompleted", {"hospital": hospital, "study_uid": uid, "person_key": pk, "order_id": order_id,
                                "study_date": day.isoformat(), "modalities": [modality],
                                "series": [{"series_uid": uid + ".1", "modality": modality, "instance_count": 100}],
                                "instance_count": 100, "total_bytes": 50_000_000,
                                "manifest_sha256": hashlib.sha256(uid.encode()).hexdigest()}, at(day, 9)),
            ("ReportFinalized", {"hospital": hospital, "report_id": f"R{n}", "person_key": pk, "study_uid": uid,
                                 "findings": self.keys.encrypt("双肺纹理清晰。", context=pk),
                                 "impression": self.keys.encrypt("未见明显异常。", context=pk),
                                 "author_id": "R1", "signed_at": at(day, 10).isoformat(), "critical": False},
             at(day, 10)),
        ]
        recorded = datetime.now(timezone.utc)
        return [Envelope.model_construct(
            event_id=new_event_id(), type=t, schema_version=TYPES[t].version, occurred_at=occurred,
            recorded_at=recorded, source=hospital, key=pk, causation_id=None, correlation_id=None, payload=payload)
            for t, payload, occurred in payloads]

    @staticmethod
    def _check(exam: list[Envelope]) -> None:
        for e in exam:
            want = TYPES[e.type].model.model_validate(e.payload).model_dump(mode="json", exclude_none=True)
            assert e.payload == want, f"{e.type}: the bench's payload differs from the model's {want}"
            REGISTRY.parse_bytes(e.to_bytes())

    def live_order(self, n: int, doctor: str, recent: list) -> tuple[str, list[Envelope]]:
        person, (pk, _, name, items) = self.rng.choice(recent)
        now = datetime.now(CST)
        order_id = f"{self.order_prefix}{n}"
        new = REGISTRY.new
        return order_id, [
            new(ev.PatientOpened(hospital=ORDERING, doctor_id=doctor, person_key=pk), key=pk, source=ORDERING,
                occurred_at=now),
            new(ev.ExamOrdered(hospital=ORDERING, order_id=order_id, person_key=pk, local_item_code=name[:8],
                               local_item_name=name, modality=None, doctor_id=doctor),
                key=pk, source=ORDERING, occurred_at=now),
            new(ev.ExamItemsResolved(hospital=ORDERING, person_key=pk, order_id=order_id, standard_items=list(items),
                                     catalog_version="bench", method="auto"), key=pk, source=ORDERING,
                occurred_at=now),
        ]


def bench_items(platform: Platform) -> list[tuple[str, str, tuple[str, ...]]]:
    resolver = platform.exam_mappings.resolver
    items = [(name, modality, tuple(resolver.resolve(name).items)) for name, modality in EXAMS]
    assert all(i for _, _, i in items), "the exam catalog no longer maps the bench's item names"
    return items


def append_history(settings: Settings, items: list, exams: int, out) -> None:
    """Child process: generate the city's year and append it to the log; send back what the live phase needs."""
    platform = Platform(settings)
    city = City(platform.keys, items, exams)
    appended, t0 = 0, time.perf_counter()
    for batch in city.history():
        publish(platform.log, batch)
        appended += len(batch)
    out.send({"events": appended, "seconds": time.perf_counter() - t0, "persons": city.n_persons,
              "recent": sorted(city.recent.items())})
    platform.close()


# ---------------------------------------------------------------------------------------------- runtimes


class Embedded:
    name = "embedded"

    def __init__(self, data: Path, args) -> None:
        self.settings = Settings(data_dir=data, log_fsync=args.log_fsync)
        self.platform = Platform(self.settings)
        self.runner = self.platform.runner()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def project_history(self, appended) -> int:
        self.runner.batch = HISTORY_BATCH
        total = 0
        while not appended():
            total += self.runner.run_until_caught_up()
            total += self.runner.step(timeout=0.2)
        return total + self.runner.run_until_caught_up()

    def processes(self) -> dict[str, int]:
        return {"bench": os.getpid()}

    def go_live(self) -> None:
        self.runner.batch = self.settings.worker_batch
        self.thread = threading.Thread(target=self.runner.run, args=(self.stop,), name="projector", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.platform.close()


class Kafka:
    """``wanying worker`` (Faust) in its own process, on a Tansu broker this bench starts."""

    name = "kafka"

    def __init__(self, data: Path, args) -> None:
        self.broker = services.start_tansu(data / "tansu")
        prefix = f"bench{uuid.uuid4().hex[:6]}."
        self.settings = Settings(data_dir=data, log_backend="kafka", kafka_bootstrap=self.broker.bootstrap,
                                 kafka_topic_prefix=prefix, faust_app_id=f"views-{prefix}",
                                 broker_session_timeout=6.0, worker_batch=HISTORY_BATCH)
        self.platform = Platform(self.settings)
        self.platform.log, self.platform.projector  # topics and tables exist before the worker starts (no race)
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
               **{f"WANYING_{k.upper()}": str(v) for k, v in self.settings.model_dump(mode="json").items()
                  if k in ("data_dir", "log_backend", "kafka_bootstrap", "kafka_topic_prefix", "faust_app_id",
                           "broker_session_timeout", "worker_batch")}}
        self.worker_log = open(data / "worker.log", "wb")
        self.worker = subprocess.Popen([sys.executable, "-m", "wanying.cli", "worker", "--loglevel", "warning"],
                                       cwd=data, env=env, stdout=self.worker_log, stderr=subprocess.STDOUT)

    def project_history(self, appended) -> int:
        while not appended():
            time.sleep(0.5)
        ends = self._wait_caught_up()
        return sum(ends.values())

    def _wait_caught_up(self, timeout: float = 3600) -> dict:
        deadline = time.monotonic() + timeout
        steady, last = 0, None
        while time.monotonic() < deadline:
            if self.worker.poll() is not None:
                sys.exit(f"the worker exited with {self.worker.returncode}; see {self.worker_log.name}")
            held = {tp: o for tp, o in self.platform.projector.positions().items() if o}
            pending = bool(self.platform.projector.pending_outbox())
            ends = {(t, p): o for t in all_topics() for p, o in self.platform.log.end_offsets(t).items() if o}
            caught_up = not pending and held == ends
            steady = steady + 1 if caught_up and ends == last else int(caught_up)
            last = ends
            if steady == 2:
                return ends
            time.sleep(0.5)
        sys.exit("the worker did not catch up with the log")

    def processes(self) -> dict[str, int]:
        return {"broker": self.broker.process.pid, "worker": self.worker.pid, "bench": os.getpid()}

    def go_live(self) -> None:
        pass

    def close(self) -> None:
        services.stop_process(self.worker, timeout=30)
        self.platform.close()
        self.broker.stop()


# ---------------------------------------------------------------------------------------------- the run


def pct(values: list[float], q: float) -> int:
    return round(values[min(len(values) - 1, int(q * len(values)))]) if values else -1


def load_avg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def run(kind: type, args, data: Path) -> None:
    runtime = kind(data, args)
    try:
        _run(runtime, args, data)
    finally:
        runtime.close()


def _run(runtime, args, data: Path) -> None:
    items = bench_items(runtime.platform)
    runtime.platform.keys  # created here, read by the child
    kept = data / "history.json"
    if kept.exists() and runtime.name == "embedded":  # --keep: the history of an earlier run, live phase only
        summary = json.loads(kept.read_text())
        summary["runs"] += 1  # new persons and order ids each time: an order id seen before is not checked again
        kept.write_text(json.dumps(summary))
        print(f"history runtime={runtime.name} exams={summary['exams']} reused={kept} run={summary['runs']}",
              flush=True)
        runtime.project_history(lambda: True)  # whatever an earlier live phase left unapplied
        _live(runtime, args, items, summary["recent"], run=summary["runs"])
        return
    receive, send = multiprocessing.Pipe(duplex=False)
    appending = multiprocessing.get_context("spawn").Process(
        target=append_history, args=(runtime.settings, items, args.exams, send), daemon=True)
    t0 = time.perf_counter()
    appending.start()
    send.close()  # only the child writes: its death then ends recv with EOFError
    # The child sends its summary once everything is appended (a crashed child ends the wait too: recv then fails).
    projected = runtime.project_history(lambda: receive.poll() or not appending.is_alive())
    t_hist = time.perf_counter() - t0
    summary = receive.recv()
    appending.join(30)
    print(f"history runtime={runtime.name} exams={args.exams} persons={summary['persons']} "
          f"events={summary['events']} append_s={summary['seconds']:.0f} projected={projected} "
          f"history_s={t_hist:.0f} ({projected / t_hist:.0f} events/s) load={load_avg()}", flush=True)
    if args.keep:
        kept.write_text(json.dumps({"exams": args.exams, "recent": summary["recent"], "runs": 0}))
    _live(runtime, args, items, summary["recent"])


def _live(runtime, args, items: list, recent: list, run: int = 0) -> None:
    if not recent:
        sys.exit("no person has a recent exam elsewhere: use more --exams")
    city = City(runtime.platform.keys, items, 0, seed=12 + run)
    city.order_prefix = f"L{run}-" if run else "L"

    # Live phase: the runtime projecting, the plugin's feed tailing, orders paced at --rate.
    runtime.go_live()
    feed = DoctorFeed(runtime.platform.log, runtime.platform.projector).start()
    sent: dict[str, float] = {}
    seen: dict[str, dict[str, float]] = {}
    person_order: dict[tuple[str, str], str] = {}
    signed_in: set[str] = set()
    lock = threading.Lock()

    def on_message(message) -> None:
        now = time.perf_counter()
        d = message.data
        with lock:
            if message.kind == "duplicate":
                seen.setdefault(d["order_id"], {}).setdefault("duplicate", now)
            elif message.kind == "signed_in":
                signed_in.add(d["doctor_id"])
            elif message.kind == "reminder":
                doctor = next(iter(message.doctors))[1]
                order = person_order.get((doctor, d["person_key"]))
                if order:
                    seen.setdefault(order, {}).setdefault("reminder", now)

    feed.add_listener(on_message)
    # The doctors sign in first, as they do before ordering; the clock starts once the feed has handed over every
    # sign-in (a Kafka consumer of the feed joins its group only seconds after it starts).
    doctors = [f"D{i:03d}" for i in range(args.doctors)]
    publish(runtime.platform.log, [REGISTRY.new(ev.DoctorSignedIn(hospital=ORDERING, doctor_id=d), key=d,
                                                source=ORDERING, occurred_at=datetime.now(CST)) for d in doctors])
    deadline = time.perf_counter() + 120
    while len(signed_in) < len(doctors):
        if time.perf_counter() > deadline:
            sys.exit(f"the feed handed over {len(signed_in)} of {len(doctors)} sign-ins in 120 s")
        time.sleep(0.05)
    total = int(args.rate * args.seconds)
    processes = runtime.processes()
    cpu_start = {name: services.cpu_seconds(pid) for name, pid in processes.items()}
    start = time.perf_counter()
    n = 0
    while n < total:
        due = start + n / args.rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        # Every order due by now goes in one append: a slow append (Kafka waits for the broker's ack) must not
        # lower the rate the HIS sends at.
        events = []
        with lock:
            while n < total and start + n / args.rate <= time.perf_counter():
                doctor = doctors[n % len(doctors)]
                order_id, order = city.live_order(n, doctor, recent)
                person_order[(doctor, order[0].payload["person_key"])] = order_id
                sent[order_id] = time.perf_counter()
                events += order
                n += 1
        publish(runtime.platform.log, events)
    elapsed = time.perf_counter() - start
    achieved = total / elapsed
    # Each process's share of one core while the orders went in: on this 2-core machine the broker, the worker and
    # the bench (sender and feed) share the CPU.
    cpu = ",".join(f"{name}:{(services.cpu_seconds(pid) - cpu_start[name]) / elapsed * 100:.0f}%"
                   for name, pid in processes.items())
    # Then wait for the last answers: until every order has one, or none came for 5 s (an order can have no
    # candidate: the only recent exam elsewhere may be from a hospital whose level the rules do not accept).
    done, quiet = -1, time.perf_counter() + 5
    while time.perf_counter() < quiet:
        with lock:
            now_done = sum(1 for o in sent if "duplicate" in seen.get(o, {}))
        if now_done == total:
            break
        if now_done != done:
            done, quiet = now_done, time.perf_counter() + 5
        time.sleep(0.1)
    feed.stop()

    both = sorted((max(seen[o].values()) - t) * 1000 for o, t in sent.items() if len(seen.get(o, {})) == 2)
    dup = sorted((seen[o]["duplicate"] - t) * 1000 for o, t in sent.items() if "duplicate" in seen.get(o, {}))
    rem = sorted((seen[o]["reminder"] - t) * 1000 for o, t in sent.items() if "reminder" in seen.get(o, {}))
    print(f"live runtime={runtime.name} orders_sent={total} achieved_rate={achieved:.0f}/s with_duplicate={len(dup)} "
          f"duplicate_p50_ms={pct(dup, .5)} duplicate_p99_ms={pct(dup, .99)} "
          f"reminder_p50_ms={pct(rem, .5)} reminder_p99_ms={pct(rem, .99)} "
          f"both_p99_ms={pct(both, .99)} max_ms={round(dup[-1]) if dup else -1} "
          f"mean_ms={statistics.fmean(dup) if dup else -1:.0f} cpu={cpu} load={load_avg()}", flush=True)
    print(f"reminder_latency runtime={runtime.name} p50_ms={pct(dup, .5)} p99_ms={pct(dup, .99)} orders={len(dup)}",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime", choices=["embedded", "kafka", "both"], default="embedded")
    ap.add_argument("--exams", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=200.0, help="orders per second in the live phase")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--doctors", type=int, default=40)
    ap.add_argument("--log-fsync", choices=["full", "normal", "off"], default="full",
                    help="the embedded log's durability (the platform's default is full)")
    ap.add_argument("--keep", type=Path, help="data directory to use (and keep); default: a temporary one")
    args = ap.parse_args()
    kinds = {"embedded": [Embedded], "kafka": [Kafka], "both": [Embedded, Kafka]}[args.runtime]
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="wanying-reminder-") as tmp:
            data = (args.keep / kind.name) if args.keep else Path(tmp)
            data.mkdir(parents=True, exist_ok=True)
            run(kind, args, data)


if __name__ == "__main__":
    main()
