"""Fixtures for the DICOM ingest and storage tests (imported by tests/ingest/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from infra import services


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory) -> services.Moto:
    """A real local S3 API (moto_server) for the session."""
    server = services.start_moto(Path(tmp_path_factory.mktemp("moto")))
    yield server
    server.stop()


class DicomStack:
    """Our ingest side, wired as in production but in a temp folder: objects, index, log, dead letters."""

    def __init__(self, root: Path, store_url: str | None = None, fsync: str = "each", **store_options) -> None:
        from pipelines.crypto import Keyring
        from pipelines.deadletter import DeadLetterStore
        from pipelines.dicom.completion import CompletionDriver
        from pipelines.dicom.ingest import DicomIngest
        from pipelines.storage.index import InstanceIndex
        from pipelines.storage.objects import open_store
        from streams.log.sqlite import SqliteLog
        from streams.topics import create_topics, publish
        from wanying.wiring import make_engine

        root.mkdir(parents=True, exist_ok=True)
        self.log = SqliteLog(root / "log.sqlite", fsync="off")
        create_topics(self.log)
        self.keys = Keyring.generate()
        self.store = open_store(store_url or str(root / "objects"), fsync=fsync, **store_options)
        self.index = InstanceIndex(make_engine(f"sqlite:///{root}/index.sqlite"))
        self.dead_letters = DeadLetterStore(make_engine(f"sqlite:///{root}/deadletters.sqlite"))
        self.ingest = DicomIngest(store=self.store, index=self.index, publish=lambda e: publish(self.log, e),
                                  dead_letters=self.dead_letters, keys=self.keys)
        self.completion = CompletionDriver(self.index, lambda e: publish(self.log, e))

    def events(self, type_: str | None = None) -> list:
        out = []
        for topic in ("person", "storage"):
            for p in range(self.log.partitions(topic)):
                out += [r.envelope() for r in self.log.read(topic, p, 0, 100_000)]
        return [e for e in out if type_ is None or e.type == type_]

    def close(self) -> None:
        self.log.close()


@pytest.fixture
def dicom_stack(tmp_path, request):
    stack = DicomStack(tmp_path / "wanying", fsync=getattr(request, "param", "each"))
    yield stack
    stack.close()


@pytest.fixture(scope="session")
def ct_files(tmp_path_factory) -> list[Path]:
    """A small synthetic CT series (explicit VR little endian), generated once per session."""
    from pipelines.dicom.synthetic import ct_series

    return ct_series(tmp_path_factory.mktemp("ct"), slices=12, size=128, patient_id="MRN-T-0001")


@pytest.fixture
def orthanc(tmp_path):
    """A real Orthanc (Debian) as the hospital PACS, on loopback, its change log quiet after 1 s."""
    pacs = services.start_orthanc(tmp_path / "orthanc", extra={"StableAge": 1})
    yield pacs
    pacs.stop()
