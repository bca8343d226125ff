"""HIS ingest over HTTP: FHIR R4 JSON and plain JSON events; exam-code mapping review. Thin: validate, convert
(pure functions in ``pipelines.fhir`` / ``pipelines.his_json``), append. Refusals are problem JSON with the reason,
and the original bytes go to the dead-letter store."""
from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.auth import Principal, role
from pipelines.fhir.convert import FhirConverter, FhirError
from pipelines.fhir.convert import parse_body as parse_fhir
from pipelines.his_json.convert import HisJsonError, parse_body as parse_his_json, to_events
from pipelines.hl7.convert import Conversion
from pipelines.hl7.ingest import append_conversion
from pipelines.mapping.store import MappingError

router = APIRouter(prefix="/api/v1/his", tags=["his"])


def _problem(status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
                        status_code=status, media_type="application/problem+json")


def mapping_store(request: Request):
    """The mapping tables: ``app.state.exam_mappings`` if a test set one, else the platform's."""
    return getattr(request.app.state, "exam_mappings", None) or request.app.state.platform.exam_mappings


def _reject(request: Request, channel: str, source: str, reason: str, body: bytes, **extra) -> JSONResponse:
    letter = request.app.state.platform.dead_letters.put(channel=channel, source=source, reason=reason, body=body)
    return _problem(422, "HIS message rejected", reason, dead_letter_id=letter, **extra)


def _accepted(request: Request, conversion: Conversion) -> JSONResponse:
    positions = append_conversion(request.app.state.platform.log, conversion, mapping_store(request))
    return JSONResponse({"accepted": len(conversion.events),
                         "events": [{"type": e.type, "event_id": str(e.event_id)} for e in conversion.events],
                         "appended": len(positions)}, status_code=202)


def _hospital(who: Principal) -> str | None:
    return who.hospital


@router.post("/fhir", status_code=202)
async def post_fhir(request: Request, who: Principal = role("system")) -> JSONResponse:
    """A FHIR R4 Encounter, ServiceRequest, DiagnosticReport or Patient, alone or in a Bundle."""
    body = await request.body()
    hospital = _hospital(who)
    if not hospital:
        return _problem(403, "forbidden", f"token {who.name!r} is not bound to a hospital; ask for a hospital token")
    platform = request.app.state.platform
    try:
        conversion = FhirConverter(platform.keys).convert(parse_fhir(body), hospital)
    except FhirError as exc:
        return _reject(request, "his-fhir", hospital, exc.reason, body, location=exc.location)
    return _accepted(request, conversion)


@router.post("/events", status_code=202)
async def post_events(request: Request, who: Principal = role("system")) -> JSONResponse:
    """Plain JSON HIS events (visit, patient, order, cancel, report, doctor_sign_in, patient_opened)."""
    body = await request.body()
    hospital = _hospital(who)
    if not hospital:
        return _problem(403, "forbidden", f"token {who.name!r} is not bound to a hospital; ask for a hospital token")
    platform = request.app.state.platform
    try:
        conversion = to_events(parse_his_json(body), hospital, platform.keys)
    except HisJsonError as exc:
        return _reject(request, "his-json", hospital, exc.reason, body)
    return _accepted(request, conversion)


@router.get("/mappings/review")
def review_mappings(request: Request, hospital: str | None = None, status: str = "pending",
                    _: Principal = role("operator")) -> list[dict]:
    """Local exam codes waiting for review, with ranked suggestions."""
    return [{"hospital": m.hospital, "local_code": m.local_code, "local_name": m.local_name, "status": m.status,
             "items": list(m.items), "reason": m.reason, "seen": m.seen_count,
             "suggestions": [{"rank": i, "code": s[0], "name": s[1], "score": s[2]}
                             for i, s in enumerate(m.suggestions, 1)]}
            for m in mapping_store(request).list(hospital=hospital, status=status)]


@router.post("/mappings/{hospital}/{local_code}/accept")
async def accept_mapping(request: Request, hospital: str, local_code: str,
                         who: Principal = role("operator")) -> JSONResponse:
    """Body ``{"items": [...]}`` or ``{"suggestion": n}``; records ExamCodeMapped."""
    try:
        doc = await request.json() if await request.body() else {}
    except ValueError:
        return _problem(422, "invalid request", "body must be JSON: {\"items\": [...]} or {\"suggestion\": n}")
    items = doc.get("items") if isinstance(doc, dict) else None
    suggestion = doc.get("suggestion", 1) if isinstance(doc, dict) else 1
    if (items is not None and not (isinstance(items, list) and all(isinstance(i, str) for i in items))) or \
            not isinstance(suggestion, int):
        return _problem(422, "invalid request", "items must be a list of item codes; suggestion an integer")
    try:
        events = mapping_store(request).accept(hospital, local_code, items=items, suggestion=suggestion,
                                               actor=who.name)
    except MappingError as exc:
        return _problem(422, "mapping refused", str(exc))
    from streams.topics import publish

    publish(request.app.state.platform.log, events)
    return JSONResponse({"hospital": hospital, "local_code": local_code,
                         "standard_items": events[-1].payload["standard_items"]})


@router.post("/mappings/import")
async def import_mappings(request: Request, who: Principal = role("operator")) -> JSONResponse:
    """A CSV (text/csv) or Excel (.xlsx content type) mapping table; bad lines are listed and not applied."""
    from pipelines.mapping.files import read_rows
    from streams.topics import publish

    body = await request.body()
    kind = request.headers.get("content-type", "")
    suffix = ".xlsx" if "spreadsheet" in kind or body[:2] == b"PK" else ".csv"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(body)
        try:
            rows = read_rows(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable upload is the sender's to fix
            return _problem(422, "unreadable table", f"{type(exc).__name__}: {exc}"[:300])
    events, errors = mapping_store(request).import_rows(rows, actor=who.name)
    publish(request.app.state.platform.log, events)
    return JSONResponse({"events": len(events), "rejected_lines": errors}, status_code=200 if not errors else 207)
