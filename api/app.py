"""The FastAPI application. Routes only authenticate, authorize, validate, append or read."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.auth import Principal, TokenStore, role
from pipelines.intake import Rejected
from schemas.events import RecordAccessed
from schemas.registry import REGISTRY
from streams.processors.daily_counts import hospital_daily_counts
from streams.processors.history import exam_history, person_links
from streams.topics import publish
from wanying.wiring import Platform


def problem(status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
        status_code=status,
        media_type="application/problem+json",
    )


def create_app(platform: Platform, tokens: TokenStore) -> FastAPI:
    app = FastAPI(title="Wanying 皖影", version="0.1.0", description="Regional medical-imaging exchange API")
    app.state.platform = platform
    app.state.tokens = tokens

    @app.get("/health", tags=["ops"])
    def health() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    def ready() -> JSONResponse:
        """Readiness: the log and the views database answer, and how far the views lag behind the log."""
        try:
            lag = _lag(platform)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; the reason is reported
            return JSONResponse({"status": "not ready", "reason": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready", "views_lag": lag})

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
        body = await request.body()
        try:
            positions = platform.intake.submit(body, source=who.hospital or who.name)
        except Rejected as exc:
            return problem(422, "event rejected", exc.reason, dead_letter_id=exc.dead_letter_id)
        return JSONResponse(
            {"accepted": len(positions), "positions": [[p.topic, p.partition, p.offset] for p in positions]},
            status_code=202,
        )

    @app.get("/api/v1/deadletters", tags=["ops"])
    def deadletters(channel: str | None = None, limit: int = 100, _: Principal = role("operator")) -> list[dict]:
        """Open dead letters with their reasons (bodies via the CLI, since they may hold personal data)."""
        return [
            {"id": d.id, "received_at": d.received_at, "channel": d.channel, "source": d.source,
             "reason": d.reason, "sha256": d.sha256, "size": d.size}
            for d in platform.dead_letters.list(channel=channel, limit=min(limit, 1000))
        ]

    @app.get("/api/v1/patients/{person_key}/exams", tags=["history"])
    def patient_exams(person_key: str, who: Principal = role("doctor", "operator")) -> dict:
        """A person's exams at every hospital (including hospital-scoped records linked to them). Audited."""
        with platform.views_engine.connect() as conn:
            keys = [person_key] + [
                r[0] for r in conn.execute(sa.select(person_links.c.linked_key).where(
                    person_links.c.person_key == person_key))
            ]
            rows = conn.execute(
                sa.select(exam_history).where(exam_history.c.person_key.in_(keys))
                .order_by(exam_history.c.study_date.desc(), exam_history.c.ordered_at.desc())
            ).mappings().all()
        _audit(platform, who, person_key, "exam_history")
        return {"person_key": person_key, "count": len(rows), "exams": [dict(r) for r in rows]}

    @app.get("/api/v1/hospitals/{hospital}/daily-counts", tags=["statistics"])
    def daily_counts(hospital: str, _: Principal = role("operator", "regulator")) -> list[dict]:
        """Events per local day and type for one hospital."""
        with platform.views_engine.connect() as conn:
            rows = conn.execute(
                sa.select(hospital_daily_counts).where(hospital_daily_counts.c.hospital == hospital)
                .order_by(hospital_daily_counts.c.day, hospital_daily_counts.c.event_type)
            ).mappings().all()
        return [dict(r) for r in rows]

    return app


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
