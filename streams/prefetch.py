"""Prefetch: reminder and duplicate-exam events ask the requesting hospital's cache node to warm the candidate
studies, so the doctor's first click is served locally.

:func:`prefetch_request` is pure (event -> request or nothing). :class:`PrefetchHook` listens to the doctor feed
(:mod:`streams.doctor_feed`) and hands requests to a :class:`PrefetchSink` on its own worker thread, so a slow or
absent cache never delays the doctor's push. :class:`HttpPrefetchSink` calls the cache node's
``POST /cache/prefetch`` (``pipelines/cache_node/node.py``) with the node's ``system`` token.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Protocol

from schemas.envelope import Envelope

log = logging.getLogger(__name__)
MAX_STUDIES = 100  # the cache node's limit per request


@dataclass(frozen=True)
class PrefetchRequest:
    hospital: str
    cache_url: str
    study_uids: tuple[str, ...]
    cause_event_id: str


class PrefetchSink(Protocol):
    def send(self, request: PrefetchRequest) -> None: ...


def prefetch_request(event: Envelope, cache_nodes: dict[str, str]) -> PrefetchRequest | None:
    """The studies a ``ReminderRaised`` / ``DuplicateFound`` wants warm at the requesting hospital's cache."""
    p = event.payload
    url = cache_nodes.get(p.get("hospital", ""))
    if not url:
        return None
    if event.type == "ReminderRaised":
        studies = tuple(p["study_uids"][:MAX_STUDIES])
    elif event.type == "DuplicateFound":
        studies = (p["candidate_study_uid"],)
    else:
        return None
    return PrefetchRequest(p["hospital"], url, studies, str(event.event_id)) if studies else None


class FakePrefetchSink:
    """Records requests (tests, and the demo without a cache node)."""

    def __init__(self) -> None:
        self.requests: list[PrefetchRequest] = []

    def send(self, request: PrefetchRequest) -> None:
        self.requests.append(request)


class HttpPrefetchSink:
    def __init__(self, token: str, timeout: float = 10.0, transport=None) -> None:
        import httpx

        self.client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {token}"},
                                   transport=transport)

    def send(self, request: PrefetchRequest) -> None:
        r = self.client.post(request.cache_url.rstrip("/") + "/cache/prefetch",
                             json={"study_uids": list(request.study_uids)})
        r.raise_for_status()  # the hook counts and logs it


class PrefetchHook:
    """A doctor-feed listener: never blocks the feed; drops (and counts) requests when its queue is full."""

    def __init__(self, sink: PrefetchSink, cache_nodes: dict[str, str], *, queue_size: int = 1000) -> None:
        self.sink, self.cache_nodes = sink, dict(cache_nodes)
        self.queue: queue.Queue[PrefetchRequest] = queue.Queue(queue_size)
        self.dropped = self.failed = 0
        threading.Thread(target=self._work, name="prefetch", daemon=True).start()

    def __call__(self, message) -> None:
        request = prefetch_request(message.event, self.cache_nodes)
        if request is None:
            return
        try:
            self.queue.put_nowait(request)
        except queue.Full:
            self.dropped += 1

    def _work(self) -> None:
        while True:
            request = self.queue.get()
            try:
                self.sink.send(request)
            except Exception:  # noqa: BLE001 - a cache that is down only costs a slower first click
                self.failed += 1
                log.warning("prefetch at %s failed", request.hospital, exc_info=True)
