"""STOW-RS over real HTTP (uvicorn on loopback): parts stored byte for byte, failures reported per instance."""
from __future__ import annotations

import hashlib
import threading
import time
import uuid

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException

from infra.services import free_port
from pipelines.dicom.stow import make_router


def multipart(files: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + f + b"\r\n"
                    for f in files) + b"--" + boundary.encode() + b"--\r\n"
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


@pytest.fixture
def stow_url(dicom_stack):
    def hospital_for(request) -> str:
        if request.headers.get("authorization") != "Bearer ahsl-test-token":
            raise HTTPException(401, "unknown sender")
        return "AHSL"

    app = FastAPI()
    app.include_router(make_router(dicom_stack.ingest, hospital_for))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/dicom-web"
    server.should_exit = True
    thread.join(10)


def test_stow_stores_parts_byte_for_byte_and_reports_failures(stow_url, dicom_stack, ct_files):
    good = [f.read_bytes() for f in ct_files[:4]]
    body, content_type = multipart(good + [good[0][:-300]])
    headers = {"content-type": content_type, "authorization": "Bearer ahsl-test-token"}
    response = httpx.post(f"{stow_url}/studies", content=body, headers=headers, timeout=30)
    assert response.status_code == 202 and response.headers["content-type"] == "application/dicom+json"
    doc = response.json()
    assert len(doc["00081199"]["Value"]) == 4 and len(doc["00081198"]["Value"]) == 1
    assert "truncated" in doc["00081198"]["Value"][0]["00091001"]["Value"][0]
    for data in good:
        assert dicom_stack.store.get(hashlib.sha256(data).hexdigest()) == data
    assert len(dicom_stack.dead_letters.list(channel="dicom")) == 1
    denied = httpx.post(f"{stow_url}/studies", content=body, headers={"content-type": content_type})
    assert denied.status_code == 401
    bad = httpx.post(f"{stow_url}/studies", content=b"x", headers={**headers, "content-type": "application/json"})
    assert bad.status_code == 415
