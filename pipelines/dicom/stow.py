"""STOW-RS (PS3.18 10.5): a PACS posts Part 10 files in one ``multipart/related; type="application/dicom"`` body.

Each part goes through the same accept path as everything else (:meth:`DicomIngest.receive_file`), so the file is
stored byte for byte and its events are the same as for C-STORE. The answer is the standard store-instances
response (application/dicom+json): ReferencedSOPSequence for the stored ones, FailedSOPSequence with a
FailureReason and our reason text for the others; 200 when all were stored, 202 when some were, 409 when none.

:func:`make_router` gives a FastAPI router; the mounting application decides which hospital a request comes from
(its authentication), e.g. ``make_router(ingest, hospital_for=lambda request: token_owner(request))``.
"""
from __future__ import annotations

import json
import re
from typing import Callable

from fastapi import APIRouter, HTTPException, Request, Response

from pipelines.dicom.ingest import DicomIngest
from pipelines.dicom.parse import DicomRejected

STOW_PROCESSING_FAILURE = 0x0110
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)


class StowError(ValueError):
    """The request as a whole cannot be read; ``reason`` is for the sender."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason, self.status = reason, status


def split_multipart(body: bytes, content_type: str) -> list[memoryview]:
    """The bodies of the parts of a multipart/related request (no copies)."""
    if not content_type.lower().startswith("multipart/related"):
        raise StowError("Content-Type must be multipart/related; type=\"application/dicom\"", 415)
    found = _BOUNDARY.search(content_type)
    if not found:
        raise StowError("multipart Content-Type without a boundary parameter")
    delimiter = b"--" + found.group(1).encode("latin-1")
    view = memoryview(body)
    parts = []
    pos = body.find(delimiter)
    if pos < 0:
        raise StowError("multipart body does not contain its boundary")
    while True:
        pos += len(delimiter)
        if body[pos:pos + 2] == b"--":
            return parts
        head_end = body.find(b"\r\n\r\n", pos)
        if head_end < 0:
            raise StowError("multipart part without a header/body separator (truncated?)")
        nxt = body.find(b"\r\n" + delimiter, head_end + 4)
        if nxt < 0:
            raise StowError("multipart body ends without its closing boundary (truncated?)")
        headers = body[pos:head_end].decode("latin-1").lower()
        if "content-type" in headers and "application/dicom" not in headers:
            raise StowError("each part must be application/dicom (Part 10 files)", 415)
        parts.append(view[head_end + 4:nxt])
        pos = nxt + 2


def store_instances(ingest: DicomIngest, body: bytes, content_type: str, *, hospital: str,
                    source: str = "stow-rs", base_url: str = "") -> tuple[int, dict]:
    """Store every part; returns the HTTP status and the application/dicom+json response."""
    referenced, failed = [], []
    for part in split_multipart(body, content_type):
        try:
            accepted = ingest.receive_file(part, hospital=hospital, source_ae=source)
        except DicomRejected as exc:
            failed.append({"00081197": {"vr": "US", "Value": [STOW_PROCESSING_FAILURE]},
                           "00081196": {"vr": "US", "Value": [exc.status]},
                           "00090010": {"vr": "LO", "Value": ["WANYING"]},
                           "00091001": {"vr": "LT", "Value": [exc.reason]}})
            continue
        info = accepted.info
        referenced.append({
            "00081150": {"vr": "UI", "Value": [info.sop_class_uid]},
            "00081155": {"vr": "UI", "Value": [info.sop_uid]},
            "00081190": {"vr": "UR", "Value": [f"{base_url}/studies/{info.study_uid}/series/{info.series_uid}"
                                               f"/instances/{info.sop_uid}"]},
        })
    ingest.store.sync()  # a batching store: everything in this request is on disk before we answer
    response: dict = {}
    if referenced:
        response["00081199"] = {"vr": "SQ", "Value": referenced}
    if failed:
        response["00081198"] = {"vr": "SQ", "Value": failed}
    status = 200 if not failed else (202 if referenced else 409)
    return status, response


def make_router(ingest: DicomIngest, hospital_for: Callable[[object], str], prefix: str = "/dicom-web"):
    router = APIRouter(prefix=prefix)

    @router.post("/studies")
    async def stow(request: Request) -> Response:
        hospital = hospital_for(request)
        body = await request.body()
        try:
            status, doc = store_instances(ingest, body, request.headers.get("content-type", ""), hospital=hospital,
                                          base_url=str(request.base_url).rstrip("/") + prefix)
        except StowError as exc:
            raise HTTPException(exc.status, exc.reason) from None
        return Response(json.dumps(doc), status_code=status, media_type="application/dicom+json")

    return router
