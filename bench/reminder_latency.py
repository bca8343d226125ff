"""Reminder and duplicate-exam latency as the doctor plugin sees it:
``reminder_latency runtime=<embedded|kafka> p50_ms=<n> p99_ms=<n> orders=<n>``.

1. History: a year of a mid-size city's exams (default 1,000,000 exams of 250,000 persons at the city's
   hospitals; 4 events each: order, standard items, study completed, final report) is generated straight into
   envelopes and appended in large batches, then the embedded runner projects all of it. Both times are printed.
2. Live: ``--rate`` orders per second for ``--seconds``. Each order is what an HIS sends when a doctor opens a
   patient and orders an exam (PatientOpened, ExamOrdered, ExamItemsResolved), for a person with a recent
   matching exam elsewhere. The latency of an order runs from its append to the moment the doctor feed (the same
   in-process tailer that serves the plugin's SSE stream, releasing an event only once the views hold it) hands
   over its first DuplicateFound (the headline figure); the ReminderRaised of the same HIS message is timed
   too and printed on the ``live`` line (a repeat open of the same patient within the quiet time raises none).

    .venv/bin/python bench/reminder_latency.py [--exams 1000000] [--rate 200] [--seconds 15] [--keep DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas import events as ev  # noqa: E402
from schemas.registry import REGISTRY  # noqa: E402
from streams.doctor_feed import DoctorFeed  # noqa: E402
from streams.topics import publish  # noqa: E402
from wanying.settings import Settings  # noqa: E402
from wanying.wiring import Platform  # noqa: E402

CST = timezone(timedelta(hours=8))
# A mid-size city: its own hospitals plus the provincial ones its patients also use (schemas/catalogs/hospitals.yaml).
HOSPITALS = ["AH-WH-001", "AH-WH-002", "AH-HF-001", "AH-HF-002", "AH-HF-003", "AH-BB-001", "AH-AQ-002"]
ORDERING = "AH-HF-001"
EXAMS = [("胸部CT平扫", "CT"), ("头颅CT平扫", "CT"), ("上腹部CT平扫", "CT"), ("头颅MR平扫", "MR"),
         ("腰椎MR平扫", "MR"), ("胸部正位片", "DX")]
BATCH = 20_000  # events per append


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, dtime(hour, minute), CST)


class City:
    def __init__(self, platform: Platform, exams: int, seed: int = 11) -> None:
        self.keys, self.rng = platform.keys, random.Random(seed)
        resolver = platform.exam_mappings.resolver
        self.items = [(name, modality, resolver.resolve(name).items) for name, modality in EXAMS]
        assert all(i for _, _, i in self.items), "the exam catalog no longer maps the bench's item names"
        self.n_persons = max(1, exams // 4)
        self.n_exams = exams
        self.today = date.today()
        self._pk: dict[int, str] = {}
        self.recent: dict[int, tuple[str, str, str, tuple[str, ...]]] = {}  # person -> a recent exam elsewhere

    def person_key(self, i: int) -> str:
        """The national person key of synthetic person ``i``."""
        if i not in self._pk:
            self._pk[i] = self.keys.person_key(f"BENCH{i:013d}")  # HMAC like a real one; no ID number needed
        return self._pk[i]

    def history(self):
        """Batches of envelopes, exam by exam in time order (oldest first)."""
        days = sorted(self.rng.randrange(1, 366) for _ in range(self.n_exams))
        batch = []
        for n, age in enumerate(reversed(days)):
            person = self.rng.randrange(self.n_persons)
            pk = self.person_key(person)
            hospital = self.rng.choice(HOSPITALS[:-1] if self.rng.random() < 0.8 else HOSPITALS)
            name, modality, items = self.rng.choice(self.items)
            day = self.today - timedelta(days=age)
            order_id, uid = f"H{n}", f"1.2.826.0.1.3680043.{n}"
            new = REGISTRY.new
            batch += [
                new(ev.ExamOrdered(hospital=hospital, order_id=order_id, person_key=pk, local_item_code=name[:8],
                                   local_item_name=name, modality=modality, doctor_id="D1"),
                    key=pk, source=hospital, occurred_at=at(day, 8)),
                new(ev.ExamItemsResolved(hospital=hospital, person_key=pk, order_id=order_id,
                                         standard_items=list(items), catalog_version="bench", method="auto"),
                    key=pk, source=hospital, occurred_at=at(day, 8, 1)),
                new(ev.StudyCompleted(hospital=hospital, study_uid=uid, person_key=pk, order_id=order_id,
                                      study_date=day, modalities=[modality],
                                      series=[ev.SeriesSummary(series_uid=uid + ".1", modality=modality,
                                                               instance_count=100)],
                                      instance_count=100, total_bytes=50_000_000,
                                      manifest_sha256=hashlib.sha256(uid.encode()).hexdigest()),
                    key=pk, source=hospital, occurred_at=at(day, 9)),
                new(ev.ReportFinalized(**self._report(hospital, pk, f"R{n}", uid, day)),
                    key=pk, source=hospital, occurred_at=at(day, 10)),
            ]
            if hospital != ORDERING and age <= 25:
                self.recent[person] = (pk, uid, name, items)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _report(self, hospital: str, pk: str, report_id: str, uid: str, day: date) -> dict:
        return dict(hospital=hospital, report_id=report_id, person_key=pk, study_uid=uid,
                    findings=self.keys.encrypt("双肺纹理清晰。", context=pk),
                    impression=self.keys.encrypt("未见明显异常。", context=pk),
                    author_id="R1", signed_at=at(day, 10))

    def live_order(self, n: int, doctor: str) -> tuple[str, list]:
        person, (pk, _, name, items) = self.rng.choice(self._recent_list)
        now = datetime.now(CST)
        order_id = f"L{n}"
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exams", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=200.0, help="orders per second in the live phase")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--doctors", type=int, default=40)
    ap.add_argument("--keep", type=Path, help="data directory to use (and keep); default: a temporary one")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="wanying-reminder-") as tmp:
        data = args.keep or Path(tmp)
        platform = Platform(Settings(data_dir=data, log_fsync="off"))
        city = City(platform, args.exams)

        t0 = time.perf_counter()
        appended = 0
        for batch in city.history():
            publish(platform.log, batch)
            appended += len(batch)
        t_gen = time.perf_counter() - t0
        print(f"history exams={args.exams} persons={city.n_persons} events={appended} "
              f"generate_and_append_s={t_gen:.1f} ({appended / t_gen:.0f} events/s)", flush=True)

        runner = platform.runner()
        runner.batch = 5000
        t0 = time.perf_counter()
        projected = runner.run_until_caught_up()
        t_proj = time.perf_counter() - t0
        print(f"history projected events={projected} projector_s={t_proj:.1f} ({projected / t_proj:.0f} events/s)",
              flush=True)
        city._recent_list = sorted(city.recent.items())
        if not city._recent_list:
            sys.exit("no person has a recent exam elsewhere: use more --exams")

        # Live phase: the runner in its thread, the plugin's feed tailing, orders paced at --rate.
        feed = DoctorFeed(platform.log, platform.projector).start()
        stop = threading.Event()
        worker = threading.Thread(target=runner.run, args=(stop,), daemon=True)
        worker.start()
        sent: dict[str, float] = {}
        seen: dict[str, dict[str, float]] = {}
        person_order: dict[tuple[str, str], str] = {}
        lock = threading.Lock()

        def on_message(message) -> None:
            now = time.perf_counter()
            d = message.data
            with lock:
                if message.kind == "duplicate":
                    seen.setdefault(d["order_id"], {}).setdefault("duplicate", now)
                elif message.kind == "reminder":
                    doctor = next(iter(message.doctors))[1]
                    order = person_order.get((doctor, d["person_key"]))
                    if order:
                        seen.setdefault(order, {}).setdefault("reminder", now)

        feed.add_listener(on_message)
        total = int(args.rate * args.seconds)
        start = time.perf_counter()
        for n in range(total):
            due = start + n / args.rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            doctor = f"D{n % args.doctors:03d}"
            order_id, events = city.live_order(n, doctor)
            with lock:
                person_order[(doctor, events[0].payload["person_key"])] = order_id
                sent[order_id] = time.perf_counter()
            publish(platform.log, events)
        achieved = total / (time.perf_counter() - start)
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            with lock:
                done = sum(1 for o in sent if "duplicate" in seen.get(o, {}))
            if done == total:
                break
            time.sleep(0.1)
        stop.set()
        worker.join(timeout=10)
        feed.stop()

        both = sorted((max(seen[o].values()) - t) * 1000 for o, t in sent.items() if len(seen.get(o, {})) == 2)
        dup = sorted((seen[o]["duplicate"] - t) * 1000 for o, t in sent.items() if "duplicate" in seen.get(o, {}))
        rem = sorted((seen[o]["reminder"] - t) * 1000 for o, t in sent.items() if "reminder" in seen.get(o, {}))

        def pct(values: list[float], q: float) -> int:
            return round(values[min(len(values) - 1, int(q * len(values)))]) if values else -1

        print(f"live orders_sent={total} achieved_rate={achieved:.0f}/s with_duplicate={len(dup)} "
              f"duplicate_p50_ms={pct(dup, .5)} duplicate_p99_ms={pct(dup, .99)} "
              f"reminder_p50_ms={pct(rem, .5)} reminder_p99_ms={pct(rem, .99)} "
              f"both_p99_ms={pct(both, .99)} mean_ms={statistics.fmean(dup) if dup else -1:.0f}", flush=True)
        print(f"reminder_latency runtime=embedded p50_ms={pct(dup, .5)} p99_ms={pct(dup, .99)} orders={len(dup)}")
        platform.close()


if __name__ == "__main__":
    main()
