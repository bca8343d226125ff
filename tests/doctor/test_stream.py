"""The doctor push channel (SSE) against a live API under uvicorn with the embedded runner: tickets, per-doctor
fan-out after the views hold the event, heartbeats, Last-Event-ID resume, and the prefetch hook."""
from __future__ import annotations

import json
import queue
import threading
import time
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.auth import Principal, TokenStore
from api.doctor_stream import check_ticket, issue_ticket, stream_secret
from schemas import REGISTRY
from schemas import events as ev
from streams.prefetch import FakePrefetchSink, PrefetchHook
from streams.topics import publish
from tests.doctor.stream import CT_CHEST, HF1, WH1, DoctorStream, local
from tests.web.conftest import _free_port
from wanying.settings import Settings
from wanying.wiring import Platform

TOKENS = {"doctor": Principal("D0101", "doctor", HF1), "colleague": Principal("D0202", "doctor", HF1),
          "system": Principal("his-1", "system", HF1)}
DAY = date.today() - timedelta(days=6)  # recent: inside every window of the default rules


class Live:
    def __init__(self, platform, port, app):
        self.platform, self.app, self.base = platform, app, f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.base, timeout=10)

    def auth(self, name: str) -> dict:
        return {"Authorization": f"Bearer tok-{name}"}

    def ticket(self, name: str) -> str:
        r = self.http.post("/api/v1/doctor/stream/ticket", headers=self.auth(name))
        assert r.status_code == 200, r.text
        return r.json()["ticket"]


@pytest.fixture
def live(tmp_path):
    platform = Platform(Settings(data_dir=tmp_path / "data", log_fsync="off"))
    store = TokenStore({TokenStore.hash(f"tok-{n}"): p for n, p in TOKENS.items()})
    app = create_app(platform, store)
    app.state.stream_heartbeat = 0.3
    sink = FakePrefetchSink()
    app.state.doctor_feed_listeners = [PrefetchHook(sink, {HF1: "http://cache-hf1.invalid"})]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    stop = threading.Event()
    threads = [threading.Thread(target=server.run, daemon=True),
               threading.Thread(target=platform.runner().run, args=(stop,), daemon=True)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    live = Live(platform, port, app)
    live.sink = sink
    yield live
    live.http.close()
    server.should_exit = True
    stop.set()
    for t in threads:
        t.join(timeout=10)
    if getattr(app.state, "doctor_feed", None):
        app.state.doctor_feed.stop()
    platform.close()


class Events:
    """An SSE reader on a thread: frames as dicts (comments as {"comment": ...})."""

    def __init__(self, live: Live, ticket: str, last_event_id: str | None = None, header: bool = True):
        self.frames: queue.Queue = queue.Queue()
        params = {"ticket": ticket}
        headers = {}
        if last_event_id and header:
            headers["Last-Event-ID"] = last_event_id
        elif last_event_id:
            params["last_event_id"] = last_event_id
        self.client = httpx.Client(base_url=live.base, timeout=httpx.Timeout(10, read=30))
        self.response = self.client.send(self.client.build_request("GET", "/api/v1/doctor/stream", params=params,
                                                                   headers=headers), stream=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        frame: dict = {}
        try:
            for line in self.response.iter_lines():
                if line.startswith(":"):
                    self.frames.put({"comment": line[1:].strip()})
                elif not line:
                    if frame:
                        self.frames.put(frame)
                    frame = {}
                else:
                    name, _, value = line.partition(":")
                    frame[name] = value.strip()
        except (httpx.HTTPError, RuntimeError):
            pass

    def next(self, event: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.frames.get(timeout=max(0.01, deadline - time.monotonic()))
            if frame.get("event") == event:
                return {**frame, "data": json.loads(frame["data"])}

    def drain(self, wait: float = 0.5) -> list[dict]:
        time.sleep(wait)
        out = []
        while not self.frames.empty():
            out.append(self.frames.get())
        return [f for f in out if "event" in f]

    def close(self) -> None:
        self.response.close()
        self.client.close()


def _history(platform) -> tuple[str, list[str], DoctorStream]:
    b = DoctorStream(keys=platform.keys)
    pk = b.person("34010419850612123")
    studies = [b.exam(pk, WH1, DAY, CT_CHEST), b.exam(pk, WH1, DAY + timedelta(days=2), CT_CHEST)]
    publish(platform.log, b.events)
    b.events.clear()
    return pk, studies, b


def _signed_in(doctor: str) -> object:
    return REGISTRY.new(ev.DoctorSignedIn(hospital=HF1, doctor_id=doctor, workstation="门诊3"), key=HF1,
                        source=HF1, occurred_at=datetime.now(timezone.utc))


def test_tickets_are_signed_short_lived_and_never_the_bearer_token(live):
    assert live.http.post("/api/v1/doctor/stream/ticket").status_code == 401
    assert live.http.post("/api/v1/doctor/stream/ticket", headers=live.auth("system")).status_code == 403
    for bad in ("tok-doctor-is-not-a-ticket", live.ticket("doctor")[:-3] + "AAA"):
        r = live.http.get("/api/v1/doctor/stream", params={"ticket": bad})
        assert r.status_code == 401 and "ticket" in r.json()["detail"]
    secret = b"k" * 32
    old = issue_ticket(secret, TOKENS["doctor"], now=time.time() - 61)
    with pytest.raises(Exception, match="expired"):
        check_ticket(secret, old)
    assert check_ticket(secret, issue_ticket(secret, TOKENS["doctor"])) == (HF1, "D0101")


def test_a_ticket_from_one_api_process_opens_the_stream_on_another_sharing_the_key_ring(live, tmp_path):
    """Behind a balancer the ticket request and the stream may reach different processes."""
    other = Platform(Settings(data_dir=tmp_path / "other", keys_file=live.platform.settings.resolved_keys_file(),
                              log_fsync="off"))
    stranger = Platform(Settings(data_dir=tmp_path / "stranger", log_fsync="off"))
    try:
        ticket = live.ticket("doctor")
        assert check_ticket(stream_secret(create_app(other, TokenStore({}))), ticket) == (HF1, "D0101")
        with pytest.raises(Exception, match="invalid stream ticket"):
            check_ticket(stream_secret(create_app(stranger, TokenStore({}))), ticket)
    finally:
        other.close()
        stranger.close()


def test_each_doctor_gets_their_events_once_the_views_hold_them(live):
    pk, studies, b = _history(live.platform)
    mine, theirs = Events(live, live.ticket("doctor")), Events(live, live.ticket("colleague"))
    try:
        assert mine.next("hello")["data"]["doctor_id"] == "D0101"
        theirs.next("hello")
        publish(live.platform.log, [_signed_in("D0101")])
        signed = mine.next("signed_in")
        assert signed["data"]["workstation"] == "门诊3" and signed["id"]

        now = datetime.now(timezone.utc).astimezone(local(DAY).tzinfo)
        b.opened_at(pk, HF1, now, doctor="D0101")
        b.checked_order(pk, HF1, "O1", now + timedelta(seconds=1), CT_CHEST, doctor="D0101")
        publish(live.platform.log, b.events)
        reminder = mine.next("reminder")["data"]
        assert (reminder["person_key"], reminder["exam_count"]) == (pk, 2)
        # Pushed only once readable: the REST view already lists it.
        listed = live.http.get("/api/v1/doctor/reminders", headers=live.auth("doctor")).json()["reminders"]
        assert reminder["event_id"] in [r["reminder_id"] for r in listed]
        duplicates = {mine.next("duplicate")["data"]["candidate_study_uid"] for _ in studies}
        assert duplicates == set(studies)
        items = live.http.get("/api/v1/doctor/orders/O1/items", headers=live.auth("doctor")).json()["items"]
        assert {c["study_uid"] for c in items[0]["candidates"]} == set(studies)

        r = live.http.post(f"/api/v1/doctor/orders/O1/items/{CT_CHEST}/decision", headers=live.auth("doctor"),
                           json={"candidate_study_uid": studies[1], "decision": "accepted"})
        assert r.status_code == 202
        decided = mine.next("order_item")["data"]
        assert decided["decision"] == "accepted"
        items = live.http.get("/api/v1/doctor/orders/O1/items", headers=live.auth("doctor")).json()["items"]
        assert items[0]["label"] == "已互认"
        assert [f["event"] for f in theirs.drain()] == []  # nothing of D0101's reached D0202
        # The prefetch hook asked HF1's cache for the candidate studies.
        deadline = time.monotonic() + 5
        while len(live.sink.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        requested = {uid for req in live.sink.requests for uid in req.study_uids}
        assert requested == set(studies)
        assert {req.cache_url for req in live.sink.requests} == {"http://cache-hf1.invalid"}
    finally:
        mine.close()
        theirs.close()


def test_heartbeats_and_resume_after_a_drop(live):
    first = Events(live, live.ticket("doctor"))
    first.next("hello")
    publish(live.platform.log, [_signed_in("D0101")])
    seen = first.next("signed_in")["id"]
    comments = []
    deadline = time.monotonic() + 3
    while not comments and time.monotonic() < deadline:
        frame = first.frames.get(timeout=3)
        comments += [frame] if "comment" in frame else []
    assert comments == [{"comment": "heartbeat"}]
    first.close()
    publish(live.platform.log, [_signed_in("D0101"), _signed_in("D0202"), _signed_in("D0101")])
    feed, deadline = live.app.state.doctor_feed, time.monotonic() + 10
    while feed.subscriber_count() or int(seen.split("-")[1]) + 3 > feed._seq:  # released while no stream is open
        assert time.monotonic() < deadline, "the feed did not release the sign-ins"
        time.sleep(0.05)
    resumed = Events(live, live.ticket("doctor"), last_event_id=seen, header=False)
    try:
        resumed.next("hello")
        missed = [resumed.next("signed_in") for _ in range(2)]
        assert [int(m["id"].split("-")[1]) for m in missed] == sorted(int(m["id"].split("-")[1]) for m in missed)
        assert all(int(m["id"].split("-")[1]) > int(seen.split("-")[1]) for m in missed)
        assert [f["event"] for f in resumed.drain(0.3)] == []
    finally:
        resumed.close()
    stale = Events(live, live.ticket("doctor"), last_event_id="otherboot-3")
    try:
        stale.next("hello")
        assert stale.next("resync")["data"]["boot"] != "otherboot"
    finally:
        stale.close()
