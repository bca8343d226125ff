"""DICOMweb under ``/dicomweb``: QIDO-RS, WADO-RS, STOW-RS and the per-series bundle (the fast path).

Roles: doctors, operators and regulators read (regulators review image quality; they never write); ``system``
tokens (a hospital's PACS or cache node) read and store; operators store too. Patients read their own studies
and share tokens the shared ones (:mod:`api.scope`; anything else is 404). Every request that reads a study's images or metadata appends one ``StudyViewed``
(one per request, however many frames it carries); a search appends one ``RecordAccessed`` per person found. Reads by
a ``system`` token (a cache node filling itself) are recorded as ``RecordAccessed`` with resource
``dicomweb:cache-fill``: the cache node reports the doctors' own views through ``POST /dicomweb/audit/views``.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Iterable

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from api.auth import Principal, require, role
from api.scope import visible_studies
from pipelines.dicomweb import access_log
from pipelines.dicomweb.bundle import MEDIA_TYPE as BUNDLE_MEDIA_TYPE
from pipelines.dicomweb.multipart import MultipartError, Part, frame_parts, new_boundary, related_content_type
from pipelines.dicomweb.query import QueryError
from pipelines.dicomweb.render import RenderError, parse_options
from pipelines.dicomweb.service import DicomWebService, NotFound
from pipelines.dicomweb.transfer import NotAcceptable, parse_accept
from schemas.events import RecordAccessed, StudyViewed
from schemas.registry import REGISTRY
from schemas.types import DicomUID
from streams.topics import publish

PREFIX = "/dicomweb"
READ = ("doctor", "operator", "regulator", "system", "patient", "share")
WRITE = ("system", "operator")
DICOM_JSON = "application/dicom+json"
MAX_STOW_BYTES = 2 * 1024**3
UID = r"^[0-9]+(\.[0-9]+)*$"

STUDY_UID_KEYS = ("StudyInstanceUID", "0020000D")


def _study_scope(request: Request, who: Principal = Depends(require(*READ, *WRITE))) -> None:
    """Before every route: a patient or share token reaches only its own studies (404 for any other), and its
    searches are limited to them (see ``_qido``). Each route still checks its own roles."""
    allowed = visible_studies(request.app.state.platform, who)
    request.state.visible_studies = allowed
    if request.method not in ("GET", "HEAD"):
        return  # stores: no patient or share role may store, which the route's own role check says (403)
    study = request.path_params.get("study")
    if allowed is not None and study is not None and study not in allowed:
        raise HTTPException(404, f"study {study} is not among the studies this token may see")


router = APIRouter(prefix=PREFIX, tags=["dicomweb"], dependencies=[Depends(_study_scope)])
access_log.install()
_service_lock = threading.Lock()


def service(request: Request) -> DicomWebService:
    state = request.app.state
    with _service_lock:
        if getattr(state, "dicomweb", None) is None:
            state.dicomweb = state.platform.dicomweb
    return state.dicomweb


def _root(request: Request) -> str:
    url = request.base_url
    server = request.scope.get("server") or (None, None)
    # dicomweb-client sends "Host: 127.0.0.1" without the port; then the listening port is the right one
    if url.port is None and server[1] not in (None, 80, 443) and "x-forwarded-host" not in request.headers:
        url = url.replace(port=server[1])
    return str(url).rstrip("/") + PREFIX


def _fail(exc: Exception) -> HTTPException:
    """The HTTP answer to what the service refused: 404 not here, 406 no acceptable representation, else 400."""
    code = 404 if isinstance(exc, NotFound) else 406 if isinstance(exc, NotAcceptable) else 400
    return HTTPException(code, str(exc))


# ------------------------------------------------------------------ audit


def _envelope(payload, key: str, who: Principal):
    return REGISTRY.new(payload, key=key, source=who.hospital or "wanying-api", occurred_at=datetime.now(timezone.utc))


def audit_view(request: Request, who: Principal, study: str) -> None:
    person = service(request).person_key(study)
    if person is None:
        return
    if who.role == "system":
        payload = RecordAccessed(person_key=person, actor=who.name, role=who.role,
                                 resource=f"dicomweb:cache-fill:{study}")
    else:
        payload = StudyViewed(person_key=person, study_uid=study, actor=who.name, role=who.role,
                              hospital=who.hospital)
    publish(request.app.state.platform.log, [_envelope(payload, person, who)])


def audit_search(request: Request, who: Principal, results: list[dict]) -> None:
    svc = service(request)
    studies = {r["0020000D"]["Value"][0] for r in results if r.get("0020000D", {}).get("Value")}
    persons = {svc.person_key(s) for s in studies} - {None}
    events = [_envelope(RecordAccessed(person_key=p, actor=who.name, role=who.role, resource="dicomweb:search"),
                        p, who) for p in sorted(persons)]
    if events:
        publish(request.app.state.platform.log, events)


# ------------------------------------------------------------------ QIDO-RS


def _scoped(params: list[tuple[str, str]], allowed: frozenset[str] | None) -> list[tuple[str, str]] | None:
    """The query limited to the studies the caller may see (a UID list match); ``None`` when nothing is left."""
    if allowed is None:
        return params
    asked = [uid for k, v in params if k in STUDY_UID_KEYS for uid in v.replace("\\", ",").split(",") if uid]
    keep = sorted(allowed & set(asked)) if asked else sorted(allowed)
    if not keep:
        return None
    return [(k, v) for k, v in params if k not in STUDY_UID_KEYS] + [("StudyInstanceUID", ",".join(keep))]


def _qido(request: Request, who: Principal, level: str, study: str | None = None, series: str | None = None):
    params = _scoped(list(request.query_params.multi_items()), request.state.visible_studies)
    if params is None:
        return Response(status_code=204)
    try:
        results = service(request).search(level, params, _root(request), study=study, series=series)
    except (QueryError, ValueError) as exc:
        raise _fail(exc) from None
    audit_search(request, who, results)
    if not results:
        return Response(status_code=204)
    return JSONResponse(results, media_type=DICOM_JSON)


@router.get("/studies", summary="QIDO-RS: search for studies")
def search_studies(request: Request, who: Principal = role(*READ)):
    """Matching on PatientID, PatientName (fuzzymatching=true for word prefixes), StudyDate (ranges), StudyTime,
    AccessionNumber, ModalitiesInStudy, StudyInstanceUID (lists), any other attribute (checked on the originals);
    includefield, limit, offset."""
    return _qido(request, who, "study")


@router.get("/series", summary="QIDO-RS: search for series")
def search_series(request: Request, who: Principal = role(*READ)):
    return _qido(request, who, "series")


@router.get("/instances", summary="QIDO-RS: search for instances")
def search_instances(request: Request, who: Principal = role(*READ)):
    return _qido(request, who, "instance")


@router.get("/studies/{study}/series", summary="QIDO-RS: series of a study")
def search_study_series(request: Request, study: DicomUID, who: Principal = role(*READ)):
    return _qido(request, who, "series", study)


@router.get("/studies/{study}/instances", summary="QIDO-RS: instances of a study")
def search_study_instances(request: Request, study: DicomUID, who: Principal = role(*READ)):
    return _qido(request, who, "instance", study)


@router.get("/studies/{study}/series/{series}/instances", summary="QIDO-RS: instances of a series")
def search_series_instances(request: Request, study: DicomUID, series: DicomUID, who: Principal = role(*READ)):
    return _qido(request, who, "instance", study, series)


# ------------------------------------------------------------------ WADO-RS: instances and metadata


def _multipart(parts: Iterable[Part], part_type: str, transfer_syntax: str | None = None) -> StreamingResponse:
    boundary = new_boundary()
    return StreamingResponse(frame_parts(parts, boundary),
                             media_type=related_content_type(part_type, boundary, transfer_syntax))


def _retrieve(request: Request, who: Principal, study: str, series: str | None = None, sop: str | None = None):
    svc = service(request)
    try:
        rows = svc.rows(study, series, sop)
        syntax, parts = svc.instance_parts(rows, parse_accept(request.headers.get("accept")))
    except (NotFound, NotAcceptable) as exc:
        raise _fail(exc) from None
    audit_view(request, who, study)
    return _multipart(parts, "application/dicom", syntax)


@router.get("/studies/{study}", summary="WADO-RS: a study's instances (multipart/related application/dicom)")
def retrieve_study(request: Request, study: DicomUID, who: Principal = role(*READ)):
    """Originals as stored by default; ``transfer-syntax`` in Accept asks for a lossless transcode
    (1.2.840.10008.1.2.1, 1.2.840.10008.1.2.4.201 HTJ2K, 1.2.840.10008.1.2.4.80 JPEG-LS)."""
    return _retrieve(request, who, study)


@router.get("/studies/{study}/series/{series}", summary="WADO-RS: a series' instances")
def retrieve_series(request: Request, study: DicomUID, series: DicomUID, who: Principal = role(*READ)):
    return _retrieve(request, who, study, series)


@router.get("/studies/{study}/series/{series}/instances/{sop}", summary="WADO-RS: one instance")
def retrieve_instance(request: Request, study: DicomUID, series: DicomUID, sop: DicomUID,
                      who: Principal = role(*READ)):
    return _retrieve(request, who, study, series, sop)


def _metadata(request: Request, who: Principal, study: str, series: str | None = None, sop: str | None = None):
    svc = service(request)
    try:
        docs = svc.metadata(svc.rows(study, series, sop), _root(request))
    except NotFound as exc:
        raise _fail(exc) from None
    audit_view(request, who, study)
    return JSONResponse(docs, media_type=DICOM_JSON)


@router.get("/studies/{study}/metadata", summary="WADO-RS: metadata of a study (DICOM JSON)")
def study_metadata(request: Request, study: DicomUID, who: Principal = role(*READ)):
    return _metadata(request, who, study)


@router.get("/studies/{study}/series/{series}/metadata", summary="WADO-RS: metadata of a series")
def series_metadata(request: Request, study: DicomUID, series: DicomUID, who: Principal = role(*READ)):
    return _metadata(request, who, study, series)


@router.get("/studies/{study}/series/{series}/instances/{sop}/metadata", summary="WADO-RS: metadata of an instance")
def instance_metadata(request: Request, study: DicomUID, series: DicomUID, sop: DicomUID,
                      who: Principal = role(*READ)):
    return _metadata(request, who, study, series, sop)


# ------------------------------------------------------------------ WADO-RS: frames, bulk data, rendered


def _frame_numbers(text: str) -> list[int]:
    try:
        numbers = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        raise HTTPException(400, "frame list must be numbers separated by commas, e.g. 1,2,3") from None
    if not numbers or len(numbers) > 10000:
        raise HTTPException(400, "ask for between 1 and 10000 frames")
    return numbers


@router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{frames}", summary="WADO-RS: frames")
def retrieve_frames(request: Request, study: DicomUID, series: DicomUID, sop: DicomUID, frames: str,
                    who: Principal = role(*READ)):
    """Frames as stored (application/octet-stream for native pixel data), or HTJ2K / JPEG-LS lossless when the
    Accept header's ``type`` and ``transfer-syntax`` ask for it."""
    svc = service(request)
    accept = parse_accept(request.headers.get("accept"))
    try:
        [row] = svc.rows(study, series, sop)
        answer = svc.frames(row, _frame_numbers(frames), accept)
    except (NotFound, NotAcceptable) as exc:
        raise _fail(exc) from None
    audit_view(request, who, study)
    part_type = f"{answer.media_type}; transfer-syntax={answer.transfer_syntax}"
    if accept and not accept[0].multipart and len(answer.frames) == 1 and accept[0].media_type != "*/*":
        return Response(answer.frames[0], media_type=part_type)
    return _multipart((Part(part_type, f) for f in answer.frames), answer.media_type, answer.transfer_syntax)


@router.get("/studies/{study}/series/{series}/instances/{sop}/bulkdata/{tag}", summary="WADO-RS: bulk data")
def retrieve_bulkdata(request: Request, study: DicomUID, series: DicomUID, sop: DicomUID, tag: str,
                      who: Principal = role(*READ)):
    svc = service(request)
    try:
        [row] = svc.rows(study, series, sop)
        data = svc.bulkdata(row, tag)
    except NotFound as exc:
        raise _fail(exc) from None
    audit_view(request, who, study)
    return _multipart([Part("application/octet-stream", data)], "application/octet-stream")


def _render(request: Request, who: Principal, study: str, series: str | None, sop: str | None, frame: int | None,
            thumbnail: bool, window: str | None, preset: str | None, viewport: str | None, quality: str | None):
    svc = service(request)
    try:
        options = parse_options(request.headers.get("accept"), window, preset, viewport, quality,
                                thumbnail=thumbnail)
        rows = svc.rows(study, series, sop)
        data = svc.rendered(rows[0], frame, options) if sop else svc.thumbnail(rows, options)
    except (NotFound, RenderError) as exc:
        raise _fail(exc) from None
    audit_view(request, who, study)
    return Response(data, media_type=options.media_type, headers={"Cache-Control": "private, max-age=300"})


_RENDER_QUERY = dict(
    window=Query(None, description="center,width[,linear|sigmoid] (PS3.18)"),
    preset=Query(None, description="soft_tissue, lung, bone, brain, abdomen, mediastinum, liver, stroke"),
    viewport=Query(None, description="width,height: the image is scaled to fit"),
    quality=Query(None, description="JPEG quality 1-100"),
)


@router.get("/studies/{study}/series/{series}/instances/{sop}/rendered", summary="WADO-RS: rendered instance")
def rendered_instance(request: Request, study: DicomUID, series: DicomUID, sop: DicomUID,
                      window: str | None = _RENDER_QUERY["window"], preset: str | None = _RENDER_QUERY["preset"],
                      viewport: str | None = _RENDER_QUERY["viewport"], quality: str | None = _RENDER_QUERY["quality"],
                      who: Principal = role(*READ)):
    """JPEG (default) or PNG (Accept: image/png) of the first frame, windowed."""
    return _render(request, who, study, series, sop, 1, False, window, preset, viewport, quality)


@router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{frame}/rendered",
            summary="WADO-RS: rendered frame")
def rendered_frame(request: Request, study: DicomUID, series: DicomUID, sop: DicomUID, frame: int,
                   window: str | None = _RENDER_QUERY["window"], preset: str | None = _RENDER_QUERY["preset"],
                   viewport: str | None = _RENDER_QUERY["viewport"], quality: str | None = _RENDER_QUERY["quality"],
                   who: Principal = role(*READ)):
    return _render(request, who, study, series, sop, frame, False, window, preset, viewport, quality)


@router.get("/studies/{study}/thumbnail", summary="WADO-RS: study thumbnail")
def study_thumbnail(request: Request, study: DicomUID, viewport: str | None = _RENDER_QUERY["viewport"],
                    preset: str | None = _RENDER_QUERY["preset"], who: Principal = role(*READ)):
    return _render(request, who, study, None, None, None, True, None, preset, viewport, None)


@router.get("/studies/{study}/series/{series}/thumbnail", summary="WADO-RS: series thumbnail (middle image)")
def series_thumbnail(request: Request, study: DicomUID, series: DicomUID,
                     viewport: str | None = _RENDER_QUERY["viewport"], preset: str | None = _RENDER_QUERY["preset"],
                     who: Principal = role(*READ)):
    return _render(request, who, study, series, None, None, True, None, preset, viewport, None)


@router.get("/studies/{study}/series/{series}/instances/{sop}/thumbnail", summary="WADO-RS: instance thumbnail")
def instance_thumbnail(request: Request, study: DicomUID, series: DicomUID, sop: DicomUID,
                       viewport: str | None = _RENDER_QUERY["viewport"], preset: str | None = _RENDER_QUERY["preset"],
                       who: Principal = role(*READ)):
    return _render(request, who, study, series, sop, 1, True, None, preset, viewport, None)


# ------------------------------------------------------------------ the fast path: series bundles


class _BundleFile(FileResponse):
    chunk_size = 4 * 1024 * 1024  # 64 KiB chunks cost more in the event loop than the copy itself


@router.get("/studies/{study}/series/{series}/bundle", summary="Fast path: the whole series in one streamed object")
def series_bundle(request: Request, study: DicomUID, series: DicomUID,
                  encoding: str = Query("raw", pattern="^(raw|htj2k)$",
                                        description="raw: native little endian frames; htj2k: lossless HTJ2K"),
                  who: Principal = role(*READ)):
    """Format in ``pipelines/dicomweb/bundle.py``: header (instances, frame offsets, DICOM JSON metadata) first,
    then the frames. Range requests (``Range: bytes=a-b``, ``If-Range``), ``ETag`` / ``If-None-Match``. Built
    from the originals on first use and whenever the series changed."""
    svc = service(request)
    try:
        built = svc.bundle(study, series, encoding)
    except NotFound as exc:
        raise _fail(exc) from None
    audit_view(request, who, study)
    headers = {"ETag": built.etag, "Cache-Control": "private, no-cache", "Accept-Ranges": "bytes",
               "X-Bundle-Source": built.source_sha256}
    if built.etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return _BundleFile(built.path, media_type=BUNDLE_MEDIA_TYPE, headers=headers)


router.add_api_route("/studies/{study}/series/{series}/bundle", series_bundle, methods=["HEAD"],
                     operation_id="series_bundle_head", include_in_schema=False)


# ------------------------------------------------------------------ STOW-RS


async def _stow(request: Request, who: Principal, study: str | None, hospital: str | None):
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/related"):
        raise HTTPException(415, "STOW-RS takes multipart/related; type=\"application/dicom\" (Part 10 files)")
    origin = who.hospital or hospital
    if not origin:
        raise HTTPException(400, "say which hospital the instances come from: ?hospital=CODE (operator tokens)")
    if who.hospital and hospital and hospital != who.hospital:
        raise HTTPException(403, f"this token speaks for {who.hospital}, not {hospital}")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_STOW_BYTES:
        raise HTTPException(413, f"send at most {MAX_STOW_BYTES} bytes per request")
    body = await request.body()
    from starlette.concurrency import run_in_threadpool

    svc = service(request)
    try:
        result = await run_in_threadpool(svc.stow, body, content_type, hospital=origin,
                                         source=f"STOW-{who.name}"[:16], study=study)
    except MultipartError as exc:
        raise _fail(exc) from None
    return JSONResponse(result.response(_root(request), study), status_code=result.http_status,
                        media_type=DICOM_JSON)


@router.post("/studies", summary="STOW-RS: store instances")
async def stow_studies(request: Request, hospital: str | None = Query(None, pattern=r"^[A-Z0-9_-]{2,32}$"),
                       who: Principal = role(*WRITE)):
    """Each part goes through the same ingest path as the C-STORE SCP; refused parts are listed in
    FailedSOPSequence (0008,1198) with a FailureReason and kept as dead letters. 200 all stored, 202 some
    refused, 409 none stored."""
    return await _stow(request, who, None, hospital)


@router.post("/studies/{study}", summary="STOW-RS: store instances of one study")
async def stow_study(request: Request, study: DicomUID,
                     hospital: str | None = Query(None, pattern=r"^[A-Z0-9_-]{2,32}$"),
                     who: Principal = role(*WRITE)):
    return await _stow(request, who, study, hospital)


# ------------------------------------------------------------------ views reported by cache nodes


class ReportedView(BaseModel):
    study_uid: DicomUID
    actor: str = Field(min_length=1, max_length=64)
    role: str = Field(pattern="^(doctor|operator|regulator)$")
    viewed_at: datetime


@router.post("/audit/views", status_code=202, summary="A cache node reports the views it served locally")
def report_views(request: Request, views: list[ReportedView], who: Principal = role("system")) -> dict:
    svc = service(request)
    events, unknown = [], []
    for v in views[:10000]:
        person = svc.person_key(v.study_uid)
        if person is None:
            unknown.append(v.study_uid)
            continue
        events.append(REGISTRY.new(
            StudyViewed(person_key=person, study_uid=v.study_uid, actor=v.actor, role=v.role, hospital=who.hospital),
            key=person, source=who.hospital or "wanying-cache", occurred_at=v.viewed_at))
    if events:
        publish(request.app.state.platform.log, events)
    return {"recorded": len(events), "unknown_studies": unknown}
