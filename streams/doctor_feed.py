"""The doctor feed: one in-process tailer of the log that tells each signed-in doctor's plugin what just became
readable for them (sign-in, reminders, duplicate candidates, order-item decisions).

One consumer for the whole process, whatever the number of open plugins: records are classified as they are
polled, held until the projector's stored positions show they are in the views (so the plugin's REST read right
after a push sees them), then fanned out to the subscribers of the target doctor. A ring of recent messages
serves ``Last-Event-ID`` resumes; an id from another process life or older than the ring gets ``resync`` (the
plugin reloads its lists over REST). Listeners (e.g. the prefetch hook) see every released message.
"""
from __future__ import annotations

import json
import logging
import threading
import uuid
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable

from schemas.envelope import Envelope
from streams.log.port import EventLog, LogRecord, Position
from streams.views.projector import Projector

log = logging.getLogger(__name__)

Doctor = tuple[str, str]  # (hospital, doctor_id)
KINDS = {"DoctorSignedIn": "signed_in", "ReminderRaised": "reminder", "DuplicateFound": "duplicate",
         "ExamItemsResolved": "order", "RecognitionDecided": "order_item"}
WANTED = frozenset(KINDS) | {"ExamOrdered"}
TOPICS = ("person", "directory")
RING = 5000
PENDING_LIMIT = 100_000  # records waiting for the views; beyond this the oldest are dropped (clients resync)
ORDERS_KEPT = 200_000
HOLDS_PER_ROUND = 500


@dataclass(frozen=True)
class FeedMessage:
    seq: int
    kind: str
    doctors: frozenset[Doctor]
    data: dict[str, Any]
    event: Envelope = field(compare=False, repr=False)


def message_data(event: Envelope) -> dict[str, Any]:
    """What the plugin needs to know to re-read the right view; never more than the event holds."""
    p = event.payload
    base = {"event_id": str(event.event_id), "type": event.type, "at": event.occurred_at.isoformat()}
    keep = {
        "DoctorSignedIn": ("doctor_id", "department", "workstation"),
        "ReminderRaised": ("person_key", "trigger", "exam_count"),
        "DuplicateFound": ("order_id", "person_key", "standard_item", "candidate_study_uid", "candidate_hospital"),
        "ExamItemsResolved": ("order_id", "person_key", "standard_items"),
        "RecognitionDecided": ("order_id", "person_key", "standard_item", "candidate_study_uid", "decision"),
    }[event.type]
    return base | {k: p.get(k) for k in keep}


class Subscription:
    """One open stream. ``deliver`` is called on the tailer thread and must not block (hand over to a loop)."""

    def __init__(self, doctor: Doctor, deliver: Callable[[FeedMessage | None], None]) -> None:
        self.doctor, self.deliver = doctor, deliver


class DoctorFeed:
    _instances: "weakref.WeakSet[DoctorFeed]" = weakref.WeakSet()

    @classmethod
    def running(cls) -> list["DoctorFeed"]:
        """Feeds started in this process (tests stop the ones of a platform they close)."""
        return [f for f in cls._instances if f._thread is not None and f._thread.is_alive()]

    def __init__(self, event_log: EventLog, projector: Projector, *, ring: int = RING) -> None:
        self.event_log, self.projector = event_log, projector
        self.boot = uuid.uuid4().hex[:12]
        self._seq = 0
        self._ring: deque[FeedMessage] = deque(maxlen=ring)
        self._subs: dict[Doctor, set[Subscription]] = {}
        self._listeners: list[Callable[[FeedMessage], None]] = []
        self._orders: OrderedDict[tuple[str, str], str] = OrderedDict()  # (hospital, order_id) -> ordering doctor
        self._pending: deque[tuple[LogRecord, Envelope, str, frozenset[Doctor]]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        DoctorFeed._instances.add(self)

    # ------------------------------------------------------------------ life

    def start(self) -> "DoctorFeed":
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="doctor-feed", daemon=True)
                self._thread.start()
        self.ready.wait(30)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ------------------------------------------------------------------ subscribing

    def event_id(self, message: FeedMessage) -> str:
        return f"{self.boot}-{message.seq}"

    def subscribe(self, doctor: Doctor, deliver: Callable[[FeedMessage | None], None],
                  last_event_id: str | None = None) -> Subscription:
        """Open a stream; with ``last_event_id`` first replay what this doctor missed (``None`` = resync)."""
        sub = Subscription(doctor, deliver)
        with self._lock:
            self._subs.setdefault(doctor, set()).add(sub)
            if last_event_id:
                boot, _, seq = last_event_id.partition("-")
                oldest = self._ring[0].seq if self._ring else self._seq + 1
                if boot != self.boot or not seq.isdigit() or int(seq) + 1 < oldest:
                    deliver(None)
                else:
                    for m in self._ring:
                        if m.seq > int(seq) and doctor in m.doctors:
                            deliver(m)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.doctor)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.doctor]

    def add_listener(self, listener: Callable[[FeedMessage], None]) -> None:
        """Called on the tailer thread for every released message; must not block."""
        self._listeners.append(listener)

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    # ------------------------------------------------------------------ tailing

    def _targets(self, event: Envelope) -> frozenset[Doctor]:
        p = event.payload
        hospital = p.get("hospital")
        if event.type == "ExamOrdered":
            if p.get("doctor_id"):
                self._orders[(hospital, p["order_id"])] = p["doctor_id"]
                self._orders.move_to_end((hospital, p["order_id"]))
                while len(self._orders) > ORDERS_KEPT:
                    self._orders.popitem(last=False)
            return frozenset()
        if event.type in ("DoctorSignedIn", "ReminderRaised"):
            return frozenset({(hospital, p["doctor_id"])})
        out = set()
        if p.get("order_id") and (orderer := self._orders.get((hospital, p["order_id"]))):
            out.add((hospital, orderer))
        if event.type == "RecognitionDecided":
            out.add((hospital, p["doctor_id"]))
        return frozenset(out)

    def _take(self, records: list[LogRecord]) -> None:
        for r in records:
            try:  # the type first (plain JSON), the validated envelope only for the few types that matter
                if json.loads(r.value).get("type") not in WANTED:
                    continue
                event = r.envelope()
            except Exception:  # noqa: BLE001 - a foreign record is the projector's to set aside, not ours
                continue
            doctors = self._targets(event)
            if doctors or (event.type in KINDS and self._listeners):
                self._pending.append((r, event, KINDS[event.type], doctors))
        if len(self._pending) > PENDING_LIMIT:  # the views are stalled: don't hold the whole log in memory
            log.warning("doctor feed: views lag; dropping %d pushes", len(self._pending) - PENDING_LIMIT)
            while len(self._pending) > PENDING_LIMIT:
                self._pending.popleft()

    def _release(self) -> None:
        """Hand over every pending record the views already hold: read past (positions, one small query per round),
        or applied with the event that decided it (one indexed lookup of the ids the positions do not cover)."""
        if not self._pending:
            return
        stored = self.projector.positions()
        ahead = [str(e.event_id) for r, e, _, _ in self._pending  # only decided events can be applied ahead
                 if e.causation_id is not None and stored.get((r.topic, r.partition), 0) <= r.offset]
        # The oldest ones only: when the views lag, asking about every pending id each round would take the CPU
        # the runtime needs to catch up.
        held = self.projector.holds(ahead[:HOLDS_PER_ROUND]) if ahead else set()
        kept: deque = deque()
        while self._pending:
            r, event, kind, doctors = self._pending.popleft()
            if stored.get((r.topic, r.partition), 0) <= r.offset and str(event.event_id) not in held:
                kept.append((r, event, kind, doctors))
                continue
            with self._lock:
                self._seq += 1
                message = FeedMessage(self._seq, kind, doctors, message_data(event), event)
                self._ring.append(message)
                subs = [s for d in doctors for s in self._subs.get(d, ())]
            for s in subs:
                s.deliver(message)
            for listener in self._listeners:
                try:
                    listener(message)
                except Exception:  # noqa: BLE001 - a listener's failure must not stop the feed
                    log.exception("doctor feed listener failed")
        self._pending = kept

    def _run(self) -> None:
        consumer = self.event_log.consumer(f"doctor-feed-{self.boot}", TOPICS)
        try:
            for topic in TOPICS:  # only what happens from now on: the plugin reads the past over REST
                for partition, end in self.event_log.end_offsets(topic).items():
                    consumer.seek(Position(topic, partition, end))
            self.ready.set()
            while not self._stop.is_set():
                try:
                    self._take(consumer.poll(1000, 0.01 if self._pending else 0.2))
                    self._release()
                except Exception:  # noqa: BLE001 - keep tailing; the plugin resyncs over REST
                    log.exception("doctor feed round failed")
                    self._stop.wait(0.5)
        finally:
            self.ready.set()
            consumer.close()
