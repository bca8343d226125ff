"""A real centre (uvicorn on a loopback port, temporary platform) holding a small synthetic CT series."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.auth import TokenStore
from infra.services import free_port
from pipelines.dicom.synthetic import ct_series
from wanying.settings import Settings
from wanying.wiring import Platform

HOSPITAL = "AH-HF-001"


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def serve(app, port: int | None = None) -> Served:
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return Served(f"http://127.0.0.1:{port}", server, thread)


@dataclass
class Centre:
    url: str
    platform: Platform
    tokens: dict[str, str]
    tokens_file: Path
    paths: list[Path]
    study: str
    series: str

    def auth(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def client(self, role: str = "doctor") -> httpx.Client:
        return httpx.Client(base_url=self.url + "/dicomweb", headers=self.auth(role), timeout=60)

    def events(self, type_: str) -> list:
        log = self.platform.log
        out = []
        for p in range(log.partitions("person")):
            out += [r.envelope() for r in log.read("person", p, 0, 1_000_000)]
        return [e for e in out if e.type == type_]


def make_platform(tmp: Path) -> tuple[Platform, dict, Path]:
    data = tmp / "data"
    platform = Platform(Settings(data_dir=data, log_fsync="off"))
    tokens = TokenStore.create_dev(data / "api-tokens.json")
    return platform, tokens, data / "api-tokens.json"


def ingest_files(platform: Platform, paths: list[Path], hospital: str = HOSPITAL) -> None:
    for p in paths:
        platform.dicom_ingest.receive_file(p.read_bytes(), hospital=hospital, source_ae="TESTPACS")


@pytest.fixture(scope="package")
def centre(tmp_path_factory) -> Centre:
    tmp = tmp_path_factory.mktemp("centre")
    platform, tokens, tokens_file = make_platform(tmp)
    paths = ct_series(tmp / "ct", slices=12, size=64, patient_id="MRN-CT-77", accession="ACC-CT-77")
    ingest_files(platform, paths)
    import pydicom

    first = pydicom.dcmread(paths[0], stop_before_pixels=True)
    served = serve(create_app(platform, TokenStore.load(tokens_file)))
    yield Centre(served.url, platform, tokens, tokens_file, paths, first.StudyInstanceUID, first.SeriesInstanceUID)
    served.stop()
    platform.close()
