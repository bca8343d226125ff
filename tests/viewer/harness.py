"""A DICOMweb backend for the viewer's tests and benchmark: Orthanc (Debian, DICOMweb plugin) behind a small
same-origin front that serves ``web/dist`` at ``/app`` and forwards ``/dicomweb`` to Orthanc's ``/dicom-web``."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from infra.services import free_port, start_orthanc
from tests.viewer.synthetic import Study, part10

WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"
FORWARDED = ("content-type", "content-length", "content-encoding")


def front_app(orthanc_url: str) -> Starlette:
    upstream = httpx.AsyncClient(base_url=f"{orthanc_url}/dicom-web", timeout=60)

    async def forward(request: Request) -> StreamingResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("accept",)}
        sent = upstream.build_request(request.method, "/" + request.path_params["path"],
                                      params=request.query_params, headers=headers)
        answer = await upstream.send(sent, stream=True)
        return StreamingResponse(answer.aiter_raw(), status_code=answer.status_code,
                                 headers={k: v for k, v in answer.headers.items() if k.lower() in FORWARDED},
                                 background=BackgroundTask(answer.aclose))

    return Starlette(routes=[
        Route("/dicomweb/{path:path}", forward),
        Mount("/app", StaticFiles(directory=WEB_DIST, html=True)),
    ])


def serve(app, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the viewer's test front did not start")
        time.sleep(0.05)
    return server, thread


def upload(orthanc_url: str, studies: list[Study]) -> None:
    with httpx.Client(base_url=orthanc_url, timeout=60) as client:
        for study in studies:
            for ds in study.datasets:
                client.post("/instances", content=part10(ds)).raise_for_status()


@contextmanager
def orthanc_backend(workdir: Path, studies: list[Study]) -> Iterator[str]:
    """Yields the base URL of the front (``/app/viewer.html`` and ``/dicomweb`` under it)."""
    if not (WEB_DIST / "viewer.html").is_file():
        raise RuntimeError(f"{WEB_DIST} has no viewer build: run `bash infra/setup.sh`")
    orthanc = start_orthanc(workdir / "orthanc", extra={"StableAge": 1})
    server = None
    try:
        upload(orthanc.url, studies)
        port = free_port()
        server, thread = serve(front_app(orthanc.url), port)
        yield f"http://127.0.0.1:{port}"
    finally:
        if server is not None:
            server.should_exit = True
            thread.join(timeout=10)
        orthanc.stop()


def stow_body(studies: list[Study], boundary: str = "wanying-viewer-test") -> tuple[bytes, str]:
    parts = [b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + part10(ds) + b"\r\n"
             for study in studies for ds in study.datasets]
    body = b"".join(parts) + b"--" + boundary.encode() + b"--\r\n"
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


@contextmanager
def wanying_backend(workdir: Path, studies: list[Study]) -> Iterator[tuple[str, str]]:
    """Our API (DICOMweb at /dicomweb, the web build at /app) over a temporary platform, the studies stored by
    STOW-RS with a hospital system token and their series bundles built ahead, as the platform builds them when a
    study completes (``pipelines/dicomweb/prebuild.py``). Yields (base URL, a doctor's token)."""
    from api.app import create_app
    from api.auth import TokenStore
    from wanying.settings import Settings
    from wanying.wiring import Platform

    if not (WEB_DIST / "viewer.html").is_file():
        raise RuntimeError(f"{WEB_DIST} has no viewer build: run `bash infra/setup.sh`")
    data = workdir / "data"
    platform = Platform(Settings(data_dir=data, log_fsync="off"))
    tokens = TokenStore.create_dev(data / "api-tokens.json")
    server = None
    try:
        port = free_port()
        server, thread = serve(create_app(platform, TokenStore.load(data / "api-tokens.json")), port)
        base = f"http://127.0.0.1:{port}"
        for study in studies:
            for start in range(0, len(study.datasets), 50):
                chunk = Study(study.study_uid, study.series_uid, study.frame_of_reference, study.geometry,
                              study.datasets[start:start + 50])
                body, content_type = stow_body([chunk])
                answer = httpx.post(f"{base}/dicomweb/studies", content=body, timeout=120, headers={
                    "Authorization": f"Bearer {tokens['system']}", "Content-Type": content_type,
                    "Accept": "application/dicom+json"})
                answer.raise_for_status()
            platform.dicomweb.prebuild(study.study_uid)  # what the bundle-prebuild worker does at StudyCompleted
        yield base, tokens["doctor"]
    finally:
        if server is not None:
            server.should_exit = True
            thread.join(timeout=10)
        platform.close()
