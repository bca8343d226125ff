"""The FastAPI application. Routes only authenticate, authorize, validate, append or read."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import Principal, TokenStore, role
from api.dicomweb import router as dicomweb_router
from api.doctor import router as doctor_router
from api.doctor_stream import router as doctor_stream_router, start_with_app as start_doctor_feed
from api.his import router as his_router
from api.interpret import WEB_DIST, router as interpret_router
from api.qc import router as qc_router
from api.reports import router as reports_router
from pipelines.identity import InvalidIdNumber, PlainPerson, person_key_of
from pipelines.intake import MAX_EVENT_BYTES, Rejected
from schemas.events import RecordAccessed
from schemas.registry import REGISTRY
from schemas.types import HOSPITAL_CODE_PATTERN, PERSON_KEY_PATTERN, HospitalCode, Identifier
from streams.processors.daily_counts import hospital_daily_counts
from streams.processors.history import exam_history, person_links
from streams.processors.recognition import order_items
from streams.topics import publish
from wanying.wiring import Platform


def problem(status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
        status_code=status,
        media_type="application/problem+json",
    )


class PersonKeyRequest(BaseModel):
    """A person as a hospital identifies them: the national ID number, or failing that its own patient ID."""

    hospital: HospitalCode
    id_number: str | None = Field(None, max_length=40)
    hospital_patient_id: Identifier | None = None


def create_app(platform: Platform, tokens: TokenStore) -> FastAPI:
    app = FastAPI(title="Wanying 皖影", version="0.1.0", description="Regional medical-imaging exchange API")
    app.state.platform = platform
    app.state.tokens = tokens

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem(exc.status_code, _TITLES.get(exc.status_code, "error"), str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the input back: it may hold an ID number or a phone number.
        reasons = ["{}: {}".format(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()[:5]]
        return problem(422, "invalid request", "; ".join(reasons))

    @app.get("/health", tags=["ops"])
    def health() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    def ready() -> JSONResponse:
        """Readiness: the log and the views database answer, and how far the views lag behind the log."""
        from qc.worker import lag as qc_lag

        try:
            qc = qc_lag(platform.log)  # first: whatever it has scored is on the log before the views lag is read
            lag = _lag(platform)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; the reason is reported
            return JSONResponse({"status": "not ready", "reason": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready", "views_lag": lag, "qc_lag": qc})

    @app.get("/api/v1/stats", tags=["ops"])
    def stats(_: Principal = role("operator")) -> dict:
        """Event counts per topic, view row counts, projector lag and dead letters."""
        return {
            "events": {t: platform.log.count(t) for t in platform.topics()},
            "views": platform.projector.count_rows(),
            "views_lag": _lag(platform),
            "dead_letters": platform.dead_letters.counts(),
        }

    @app.post("/api/v1/events", tags=["ingest"], status_code=202)
    async def post_events(request: Request, who: Principal = role("system", "operator")) -> JSONResponse:
        """Append one event envelope or a JSON array of them. Invalid input is refused (problem JSON) and kept."""
        body = await _read_capped(request, MAX_REQUEST_BYTES)
        if body is None:
            return problem(413, "too large", f"request body exceeds {MAX_REQUEST_BYTES} bytes; send smaller batches")
        try:
            positions = platform.intake.submit(body, source=who.hospital or who.name)
        except Rejected as exc:
            return problem(422, "event rejected", exc.reason, dead_letter_id=exc.dead_letter_id)
        return JSONResponse(
            {"accepted": len(positions), "positions": [[p.topic, p.partition, p.offset] for p in positions]},
            status_code=202,
        )

    @app.post("/api/v1/persons/key", tags=["ingest"])
    def person_key(body: PersonKeyRequest, who: Principal = role("system")) -> dict:
        """The partition key of a person (nothing is stored). A malformed ID number is refused with the GB 11643
        reason; the number itself is never echoed, logged or kept."""
        if who.hospital and who.hospital != body.hospital:
            return problem(403, "forbidden", f"this token speaks for {who.hospital}, not {body.hospital}")
        person = PlainPerson(id_number=body.id_number, hospital_patient_id=body.hospital_patient_id)
        try:
            key = person_key_of(person, body.hospital, platform.keys)
        except InvalidIdNumber as exc:
            return problem(422, "invalid person identifier", str(exc))
        return {"person_key": key, "scope": "national" if body.id_number else "hospital"}

    @app.get("/api/v1/deadletters", tags=["ops"])
    def deadletters(
        channel: str | None = None, limit: int = Query(100, ge=1, le=1000), _: Principal = role("operator")
    ) -> list[dict]:
        """Open dead letters with their reasons (bodies via the CLI, since they may hold personal data)."""
        return [
            {"id": d.id, "received_at": d.received_at, "channel": d.channel, "source": d.source,
             "reason": d.reason, "sha256": d.sha256, "size": d.size}
            for d in platform.dead_letters.list(channel=channel, limit=limit)
        ]

    @app.get("/api/v1/patients/{person_key}/exams", tags=["history"])
    def patient_exams(
        person_key: str = Path(pattern=PERSON_KEY_PATTERN), who: Principal = role("doctor", "operator")
    ) -> dict:
        """A person's exams at every hospital (including hospital-scoped records linked to them). Audited."""
        with platform.projector.engine.connect() as conn:
            keys = [person_key] + [
                r[0] for r in conn.execute(sa.select(person_links.c.linked_key).where(
                    person_links.c.person_key == person_key))
            ]
            rows = conn.execute(
                sa.select(exam_history).where(exam_history.c.person_key.in_(keys))
                # Explicit NULL placement: SQLite and PostgreSQL disagree by default. Not yet imaged comes first.
                .order_by(
                    exam_history.c.study_date.desc().nulls_first(),
                    exam_history.c.ordered_at.desc().nulls_last(),
                    exam_history.c.exam_id,
                )
            ).mappings().all()
            items = conn.execute(
                sa.select(order_items.c.hospital, order_items.c.order_id, order_items.c.standard_item,
                          order_items.c.status, order_items.c.mark, order_items.c.label)
                .where(order_items.c.person_key.in_(keys)).order_by(order_items.c.standard_item)
            ).mappings().all()
        by_order: dict[tuple[str, str], list[dict]] = {}
        for item in items:
            by_order.setdefault((item["hospital"], item["order_id"]), []).append(
                {k: item[k] for k in ("standard_item", "status", "mark", "label")})
        _audit(platform, who, person_key, "exam_history")
        # Each ordered exam lists its standard items with their recognition status: 已互认 (mark HR) when the
        # doctor accepted an earlier exam instead of repeating it.
        exams = [{**r, "items": by_order.get((r["hospital"], r["order_id"]), [])} for r in rows]
        return {"person_key": person_key, "count": len(rows), "exams": exams}

    @app.get("/api/v1/hospitals/{hospital}/daily-counts", tags=["statistics"])
    def daily_counts(
        hospital: str = Path(pattern=HOSPITAL_CODE_PATTERN), _: Principal = role("operator", "regulator")
    ) -> list[dict]:
        """Events per local day and type for one hospital."""
        with platform.projector.engine.connect() as conn:
            rows = conn.execute(
                sa.select(hospital_daily_counts).where(hospital_daily_counts.c.hospital == hospital)
                .order_by(hospital_daily_counts.c.day, hospital_daily_counts.c.event_type)
            ).mappings().all()
        return [dict(r) for r in rows]

    app.include_router(his_router)
    app.include_router(interpret_router)
    app.include_router(doctor_router)
    app.include_router(doctor_stream_router)
    start_doctor_feed(app)  # tails at once only when cache nodes are configured (prefetch)
    app.include_router(dicomweb_router)
    app.include_router(qc_router)
    app.include_router(reports_router)
    # The built pages (web/dist, made by infra/setup.sh); before the first build they are simply 404.
    app.mount("/app", StaticFiles(directory=WEB_DIST, html=True, check_dir=False), name="web")
    return app


MAX_REQUEST_BYTES = 8 * MAX_EVENT_BYTES  # beyond this a body is not even read: refused before it fills memory


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The request body, or ``None`` as soon as it grows past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


_TITLES = {401: "unauthorized", 403: "forbidden", 404: "not found", 405: "method not allowed", 413: "too large"}


def _lag(platform: Platform) -> int:
    stored = platform.projector.positions()
    lag = 0
    for topic in platform.topics():
        for partition, end in platform.log.end_offsets(topic).items():
            lag += end - stored.get((topic, partition), 0)
    return lag


def _audit(platform: Platform, who: Principal, person_key: str, resource: str) -> None:
    event = REGISTRY.new(
        RecordAccessed(person_key=person_key, actor=who.name, role=who.role, resource=resource),
        key=person_key,
        source=who.hospital or "wanying-api",
        occurred_at=datetime.now(timezone.utc),
    )
    publish(platform.log, [event])
