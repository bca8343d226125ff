"""The doctor plugin's push channel (Server-Sent Events).

EventSource cannot send an Authorization header, and a bearer token must never sit in a URL (logs, history,
Referer). So the plugin first trades its bearer token for a short-lived signed *stream ticket*
(``POST /api/v1/doctor/stream/ticket``), then opens ``GET /api/v1/doctor/stream?ticket=...``. The ticket only
opens a stream for that doctor and expires after ``TICKET_SECONDS``; each reconnect asks for a new one.

Events: ``hello``, ``signed_in``, ``reminder``, ``duplicate``, ``order``, ``order_item``, ``resync``; heartbeat
comments keep proxies from closing an idle stream. ``Last-Event-ID`` (header, or ``last_event_id`` when the
client had to open a new EventSource) resumes after a drop.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from api.auth import Principal, role
from streams.doctor_feed import DoctorFeed, FeedMessage
from streams.prefetch import HttpPrefetchSink, PrefetchHook

router = APIRouter(prefix="/api/v1/doctor", tags=["doctor"])
TICKET_SECONDS = 60
HEARTBEAT_SECONDS = 15.0
QUEUE_LIMIT = 1000
_FEED_LOCK = threading.Lock()


def feed_of(app) -> DoctorFeed:
    """The process's one feed, started on first use (or at start-up when cache nodes are configured)."""
    with _FEED_LOCK:
        feed = getattr(app.state, "doctor_feed", None)
        if feed is None:
            feed = app.state.doctor_feed = _new_feed(app)
            app.state.platform.on_close(feed.stop)
    return feed.start()


def _new_feed(app) -> DoctorFeed:
    platform = app.state.platform
    feed = DoctorFeed(platform.log, platform.projector)
    listeners = getattr(app.state, "doctor_feed_listeners", None)
    if listeners is None:  # tests set their own; otherwise the prefetch hook when configured
        settings = platform.settings
        listeners = [PrefetchHook(HttpPrefetchSink(settings.cache_node_token), settings.cache_nodes)] \
            if settings.cache_nodes else []
    for listener in listeners:
        feed.add_listener(listener)
    return feed


def start_with_app(app) -> None:
    """With cache nodes configured, tail from the start so prefetch runs before any plugin connects."""
    if app.state.platform.settings.cache_nodes:
        feed_of(app)


def stream_secret(app) -> bytes:
    return app.state.platform.keys.purpose_secret("doctor-stream-ticket")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def issue_ticket(secret: bytes, who: Principal, now: float | None = None) -> str:
    claims = {"sub": who.name, "hos": who.hospital, "exp": int((now or time.time()) + TICKET_SECONDS),
              "n": secrets.token_hex(4)}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{body}.{_b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())}"


def check_ticket(secret: bytes, ticket: str, now: float | None = None) -> tuple[str, str]:
    """(hospital, doctor) of a valid ticket, else HTTP 401 with the reason."""
    body, _, sig = ticket.partition(".")
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not sig or not hmac.compare_digest(sig, expected):
        raise HTTPException(401, "invalid stream ticket; ask for a new one with POST /api/v1/doctor/stream/ticket")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if claims["exp"] < (now or time.time()):
        raise HTTPException(401, "stream ticket expired; ask for a new one with POST /api/v1/doctor/stream/ticket")
    return claims["hos"], claims["sub"]


@router.post("/stream/ticket")
def stream_ticket(request: Request, who: Principal = role("doctor")) -> dict:
    """A ticket that opens this doctor's event stream within ``expires_in`` seconds."""
    if not who.hospital:
        raise HTTPException(403, f"token {who.name!r} is not bound to a hospital; a doctor's token must be")
    feed_of(request.app)  # start tailing now, so nothing between ticket and stream is missed
    return {"ticket": issue_ticket(stream_secret(request.app), who), "expires_in": TICKET_SECONDS,
            "stream": "/api/v1/doctor/stream"}


def _frame(feed: DoctorFeed, message: FeedMessage | None) -> str:
    if message is None:
        return f"event: resync\ndata: {json.dumps({'boot': feed.boot})}\n\n"
    data = json.dumps(message.data, ensure_ascii=False)
    return f"id: {feed.event_id(message)}\nevent: {message.kind}\ndata: {data}\n\n"


@router.get("/stream")
async def stream(request: Request, ticket: str | None = Query(None, max_length=1000),
                 last_event_id: str | None = Query(None, max_length=64)) -> StreamingResponse:
    """This doctor's events as they become readable in the views (text/event-stream). Authenticated by a stream
    ticket that only ``POST /stream/ticket`` with a doctor's bearer token issues."""
    if not ticket:
        raise HTTPException(401, "stream ticket missing; ask for one with POST /api/v1/doctor/stream/ticket",
                            headers={"WWW-Authenticate": "Bearer"})
    hospital, doctor = check_ticket(stream_secret(request.app), ticket)
    feed = await asyncio.to_thread(feed_of, request.app)
    heartbeat = getattr(request.app.state, "stream_heartbeat", HEARTBEAT_SECONDS)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
    overflow = {"hit": False}

    def put(message: FeedMessage | None) -> None:  # on the tailer thread
        def enqueue() -> None:
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:  # a stuck client: drop and tell it to reload over REST
                overflow["hit"] = True
        loop.call_soon_threadsafe(enqueue)

    resume = request.headers.get("last-event-id") or last_event_id
    sub = feed.subscribe((hospital, doctor), put, resume)

    async def frames():
        try:
            yield f"retry: 3000\nevent: hello\ndata: {json.dumps({'doctor_id': doctor, 'boot': feed.boot})}\n\n"
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=heartbeat)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": heartbeat\n\n"
                    continue
                if overflow["hit"]:
                    overflow["hit"] = False
                    yield _frame(feed, None)
                yield _frame(feed, message)
        finally:
            feed.unsubscribe(sub)

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
