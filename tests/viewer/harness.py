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
