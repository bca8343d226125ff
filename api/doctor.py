"""The doctor side: recent history reminders, an order's items with their earlier-exam candidates, the
accept/decline decision (已互认), and the regulator's recognition figures. Thin: authorize, validate, read a view
or append an event; every read of a patient's data is audited (``RecordAccessed``)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import Principal, role
from pipelines.mapping.catalog import default_catalog
from schemas.events import RecognitionDecided, RecordAccessed
from schemas.hospitals import default_hospitals
from schemas.registry import REGISTRY
from schemas.types import HOSPITAL_CODE_PATTERN
from streams.processors.recognition import order_items, recognition_statistics
from streams.processors.reminders import doctor_reminders, reminder_exams
from streams.topics import publish

router = APIRouter(prefix="/api/v1/doctor", tags=["doctor"])
CHANNEL = "doctor-decision"
REASON_TEXT = "reason_text"  # encryption context of RecognitionDecided.reason_text


class Decision(BaseModel):
    candidate_study_uid: str = Field(min_length=1, max_length=64)
    decision: str = Field(description="accepted | declined")
    reason_code: str | None = Field(None, max_length=64, description="required when declining; see /reasons")
    reason_text: str | None = Field(None, max_length=256, description="required for reason 'other'")


def _problem(status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
                        status_code=status, media_type="application/problem+json")


def _hospital_of(who: Principal) -> str:
    if not who.hospital:
        raise HTTPException(403, f"token {who.name!r} is not bound to a hospital; a doctor's token must be")
    return who.hospital


def audit_access(request: Request, who: Principal, person_keys: set[str], resource: str) -> None:
    now = datetime.now(timezone.utc)
    events = [REGISTRY.new(RecordAccessed(person_key=k, actor=who.name, role=who.role, resource=resource),
                           key=k, source=who.hospital or "wanying-api", occurred_at=now) for k in sorted(person_keys)]
    if events:
        publish(request.app.state.platform.log, events)


def _sealed_reason(request: Request, body: Decision) -> str | None:
    if body.decision != "declined" or not (body.reason_text or "").strip():
        return None
    return request.app.state.platform.keys.encrypt(body.reason_text.strip(), context=REASON_TEXT)


def _opened_decisions(request: Request, decisions: list[dict]) -> list[dict]:
    """The decisions with the doctor's reason text decrypted for the reader (the views hold only ciphertext)."""
    keys = request.app.state.platform.keys
    return [{**d, "reason_text": keys.decrypt(d["reason_text"], context=REASON_TEXT) if d.get("reason_text") else None}
            for d in decisions]


def _engine(request: Request):
    return request.app.state.platform.projector.engine


@router.get("/reasons")
def reasons(request: Request, _: Principal = role("doctor", "regulator", "operator")) -> dict:
    """The reasons a doctor may give for declining an earlier result (national list, then local list)."""
    rules = request.app.state.platform.rules
    return {"source": rules.reasons_source, "reasons": [
        {"code": r.code, "name": r.name, "list": r.list, "needs_text": r.needs_text} for r in rules.reasons.values()]}


@router.get("/reminders")
def recent_reminders(request: Request, limit: int = Query(20, ge=1, le=50),
                     who: Principal = role("doctor")) -> dict:
    """The calling doctor's latest reminders, newest first, each with its list of exams at other hospitals."""
    hospital = _hospital_of(who)
    with _engine(request).connect() as conn:
        reminders = conn.execute(
            sa.select(doctor_reminders).where(doctor_reminders.c.hospital == hospital,
                                              doctor_reminders.c.doctor_id == who.name)
            .order_by(doctor_reminders.c.raised_at.desc(), doctor_reminders.c.reminder_id.desc()).limit(limit)
        ).mappings().all()
        ids = [r["reminder_id"] for r in reminders]
        exams = conn.execute(sa.select(reminder_exams).where(reminder_exams.c.reminder_id.in_(ids))
                             .order_by(reminder_exams.c.position)).mappings().all() if ids else []
    by_reminder: dict[str, list[dict]] = {}
    for e in exams:
        row = {k: v for k, v in e.items() if k not in ("reminder_id", "person_key", "position")}
        row["standard_items"] = json.loads(row["standard_items"])
        by_reminder.setdefault(e["reminder_id"], []).append(row)
    out = [{**{k: v for k, v in r.items() if k != "study_uids"}, "study_uids": json.loads(r["study_uids"]),
            "exams": by_reminder.get(r["reminder_id"], [])} for r in reminders]
    audit_access(request, who, {r["person_key"] for r in reminders}, "doctor_reminders")
    return {"hospital": hospital, "doctor_id": who.name, "count": len(out), "reminders": out}


def _items(request: Request, hospital: str, order_id: str) -> list[dict]:
    with _engine(request).connect() as conn:
        rows = conn.execute(sa.select(order_items).where(order_items.c.hospital == hospital,
                                                         order_items.c.order_id == order_id)
                            .order_by(order_items.c.standard_item)).mappings().all()
    return [{**r, "candidates": json.loads(r["candidates"]), "decisions": json.loads(r["decisions"])} for r in rows]


@router.get("/orders/{order_id}/items")
def order_items_of(request: Request, order_id: str = Path(min_length=1, max_length=64),
                   who: Principal = role("doctor")) -> dict:
    """An order of the doctor's hospital: its standard items, each with its status (已互认 when accepted) and the
    earlier exams that may be recognised instead of repeating it."""
    hospital = _hospital_of(who)
    items = _items(request, hospital, order_id)
    if not items:
        raise HTTPException(404, f"no checked order {order_id!r} at {hospital} (its standard items may not be "
                                 "resolved yet, or the views are still catching up)")
    audit_access(request, who, {i["person_key"] for i in items}, "order_items")
    items = [{**i, "decisions": _opened_decisions(request, i["decisions"])} for i in items]
    return {"hospital": hospital, "order_id": order_id, "person_key": items[0]["person_key"], "items": items}


@router.post("/orders/{order_id}/items/{standard_item}/decision", status_code=202)
def decide(request: Request, body: Decision, order_id: str = Path(min_length=1, max_length=64),
           standard_item: str = Path(min_length=1, max_length=64), who: Principal = role("doctor")) -> JSONResponse:
    """Accept (已互认) or decline one earlier exam for an ordered item. Declining needs a reason code from
    ``/reasons``; reason ``other`` needs a text. Appends ``RecognitionDecided``."""
    hospital = _hospital_of(who)
    item = next((i for i in _items(request, hospital, order_id) if i["standard_item"] == standard_item), None)
    problem = request.app.state.platform.rules.decision_problem(body.decision, body.reason_code, body.reason_text)
    if item is None:
        problem = f"order {order_id!r} at {hospital} has no checked item {standard_item!r}"
    elif not any(c["study_uid"] == body.candidate_study_uid for c in item["candidates"]):
        offered = ", ".join(c["study_uid"] for c in item["candidates"]) or "none"
        problem = f"study {body.candidate_study_uid} is not a candidate for {standard_item} (offered: {offered})"
    if problem:
        letter = request.app.state.platform.dead_letters.put(channel=CHANNEL, source=hospital, reason=problem,
                                                             body=body.model_dump_json().encode())
        return _problem(422, "decision rejected", problem, dead_letter_id=letter)
    event = REGISTRY.new(
        RecognitionDecided(hospital=hospital, order_id=order_id, person_key=item["person_key"],
                           standard_item=standard_item, candidate_study_uid=body.candidate_study_uid,
                           doctor_id=who.name, decision=body.decision,  # type: ignore[arg-type]
                           reason_code=body.reason_code if body.decision == "declined" else None,
                           reason_text=_sealed_reason(request, body)),
        key=item["person_key"], source=hospital, occurred_at=datetime.now(timezone.utc))
    publish(request.app.state.platform.log, [event])
    return JSONResponse({"event_id": str(event.event_id), "decision": body.decision}, status_code=202)


@router.get("/statistics")
def statistics(request: Request, hospital: str | None = Query(None, pattern=HOSPITAL_CODE_PATTERN),
               month: str | None = Query(None, pattern=r"^\d{4}-\d{2}$"),
               standard_item: str | None = Query(None, max_length=64),
               _: Principal = role("regulator", "operator")) -> dict:
    """Duplicates found, decisions, recognition rate (accepted / decided) and refusal reasons per ordering
    hospital, standard item and local month."""
    filters = {"hospital": hospital, "month": month, "standard_item": standard_item}
    with _engine(request).connect() as conn:
        rows, refusals = recognition_statistics(conn, **filters)
    totals = {k: sum(r[k] for r in rows)
              for k in ("duplicates_found", "candidates", "decided", "accepted", "declined")}
    totals["recognition_rate"] = round(totals["accepted"] / totals["decided"], 4) if totals["decided"] else None
    hospitals, catalog = default_hospitals(), default_catalog()
    names = {
        "hospitals": {h: hospitals.name(h) for h in sorted({r["hospital"] for r in rows})},
        "items": {i: catalog.items[i].name if i in catalog.items else i
                  for i in sorted({r["standard_item"] for r in rows})},
        "reasons": {r.code: r.name for r in request.app.state.platform.rules.reasons.values()},
    }
    return {"filters": filters, "totals": totals, "rows": rows, "refusals": refusals, "names": names}
