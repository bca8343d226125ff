"""Fixtures for the log contract: the same tests run against every backend.

``open_log()`` opens a log on the test's own storage (a SQLite file in ``tmp_path``, or a topic prefix of its own on
the session's Tansu broker); calling it again opens a second, independent handle on the same storage, as another
process would.
"""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

from schemas import events as ev
from schemas.envelope import Envelope
from schemas.registry import REGISTRY
from streams.log.port import EventLog

CST = timezone(timedelta(hours=8))
START = datetime(2026, 11, 28, 8, 0, tzinfo=CST)


def person_key(n: int) -> str:
    return hashlib.sha256(f"contract-person-{n}".encode()).hexdigest()


def exam_ordered(i: int, key: str) -> Envelope:
    return REGISTRY.new(
        ev.ExamOrdered(hospital="AHSL", order_id=f"O{i:08d}", person_key=key, local_item_code="CT010",
                       local_item_name="胸部CT平扫", modality="CT", accession_number=f"A{i:010d}"),
        key=key, source="AHSL", occurred_at=START + timedelta(seconds=i),
    )


@pytest.fixture
def envelopes() -> Callable[..., list[Envelope]]:
    """``envelopes(n, keys=k)``: n ExamOrdered envelopes, round-robin over k person keys."""
    counter = iter(range(10**9))

    def make(n: int, keys: int = 10) -> list[Envelope]:
        return [exam_ordered(i := next(counter), person_key(i % keys)) for _ in range(n)]

    return make


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=pytest.mark.kafka)])
def backend(request) -> str:
    return request.param


@pytest.fixture
def open_log(backend, request, tmp_path) -> Callable[[], EventLog]:
    opened: list[EventLog] = []
    if backend == "kafka":
        from streams.log.kafka import KafkaLog

        bootstrap = request.getfixturevalue("kafka_broker").bootstrap
        prefix = f"c{uuid.uuid4().hex[:10]}."

        def make() -> EventLog:
            log = KafkaLog(bootstrap, prefix=prefix, session_timeout_ms=6000)
            opened.append(log)
            return log
    else:
        from streams.log.sqlite import SqliteLog

        def make() -> EventLog:
            log = SqliteLog(tmp_path / "log.sqlite")
            opened.append(log)
            return log

    yield make
    for log in opened:
        log.close()


@pytest.fixture
def event_log(open_log) -> EventLog:
    return open_log()


@pytest.fixture
def group() -> Callable[[str], str]:
    """Unique consumer group names, so tests never share a group on the session's broker."""
    suffix = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{suffix}"
