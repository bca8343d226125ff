from __future__ import annotations

import pytest

from pipelines.crypto import Keyring
from pipelines.deadletter import DeadLetterStore
from pipelines.hl7.ingest import Hl7Ingest
from pipelines.hl7.senders import HisSenders
from pipelines.mapping.catalog import default_catalog
from pipelines.mapping.store import MappingStore
from streams.log.sqlite import SqliteLog
from streams.topics import create_topics
from wanying.wiring import make_engine


@pytest.fixture
def keys() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def event_log(tmp_path):
    log = SqliteLog(tmp_path / "log.sqlite", fsync="off")
    create_topics(log)
    yield log
    log.close()


@pytest.fixture
def dead_letters(tmp_path) -> DeadLetterStore:
    return DeadLetterStore(make_engine(f"sqlite:///{tmp_path / 'dead.sqlite'}"))


@pytest.fixture
def mappings(tmp_path) -> MappingStore:
    return MappingStore(make_engine(f"sqlite:///{tmp_path / 'map.sqlite'}"), default_catalog())


@pytest.fixture
def hl7_ingest(event_log, dead_letters, keys, mappings) -> Hl7Ingest:
    return Hl7Ingest(event_log, dead_letters, keys, HisSenders.load(), mappings)


def all_events(log) -> list:
    out = []
    for topic in ("person", "directory", "storage"):
        for partition in range(log.partitions(topic)):
            out += [r.envelope() for r in log.read(topic, partition, 0, 100_000)]
    return out


# DICOM ingest and storage fixtures (moto_s3, dicom_stack, ct_files) live in their own module.
from tests.ingest.dicom_fixtures import *  # noqa: E402,F401,F403
