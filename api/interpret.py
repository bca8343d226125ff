"""Report interpretation for patients: mark a report's terms, talk about it, read a photographed report.

Thin: the logic is in ``interpret/``. Conversation turns go to the log as events (text encrypted); when a request
names a person, the read of their report is audited with ``RecordAccessed``. Refused photos are problem JSON and
their bytes go to the dead-letter store.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.auth import Principal, role
from interpret import dialogue, ocr, redflags
from interpret.chat_client import ChatClient, ChatConfig
from interpret.conversations import Conversations, started_event, turn_event
from interpret.marking import default_marker
from schemas.events import RecordAccessed
from schemas.registry import REGISTRY
from schemas.types import DicomUID, Identifier, PersonKey
from streams.topics import publish

router = APIRouter(prefix="/api/v1/interpret", tags=["interpret"])

MAX_REPORT_CHARS = 20_000
MAX_MESSAGE_CHARS = 1_000
MAX_PHOTO_BYTES = 12 * 1024 * 1024  # a phone photo is 2-6 MB; the multipart envelope adds a little
OCR_CHANNEL = "interpret-ocr"
# The built web pages (npm run build in web/), served by the app at /app/.
WEB_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"


class ReportRef(BaseModel):
    """Whose report this is, when it is a stored one (both optional: a paper report has no reference)."""

    model_config = ConfigDict(extra="forbid")

    person_key: PersonKey | None = None
    study_uid: DicomUID | None = None
    report_id: Identifier | None = None


class MarkRequest(ReportRef):
    text: str = Field(min_length=1, max_length=MAX_REPORT_CHARS)


class ChatRequest(ReportRef):
    conversation_id: str | None = Field(None, max_length=64, description="absent to start a new conversation")
    report_text: str | None = Field(None, max_length=MAX_REPORT_CHARS, description="needed to start one")
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


def _problem(status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
                        status_code=status, media_type="application/problem+json")


def _forbidden_person(who: Principal, person_key: str | None) -> JSONResponse | None:
    """A patient bound to a person (a verified patient session) talks only about their own reports."""
    own = getattr(who, "person_key", None)
    if who.role == "patient" and own and person_key and person_key != own:
        return _problem(403, "forbidden", "a patient may only interpret their own reports")
    return None


def _envelope(payload, who: Principal, key: str):
    return REGISTRY.new(payload, key=key, source=who.hospital or "wanying-api", occurred_at=datetime.now(timezone.utc))


def _audit(who: Principal, ref: ReportRef, resource: str):
    """The RecordAccessed envelope for a read of a person's report, if the request names a person."""
    if not ref.person_key:
        return None
    target = ref.report_id or ref.study_uid
    name = f"{resource}:{target}" if target else resource
    return _envelope(RecordAccessed(person_key=ref.person_key, actor=who.name, role=who.role, resource=name[:256]),
                     who, ref.person_key)


def _chat_model(request: Request):
    """The hospital's chat model from settings, built once; ``None`` (offline fallback) when none is configured."""
    state = request.app.state
    if not hasattr(state, "interpret_model"):
        config = ChatConfig.from_settings(state.platform.settings)
        state.interpret_model = (ChatClient(config), config.model) if config.configured else (None, None)
    return state.interpret_model


def _conversations(request: Request) -> Conversations:
    state = request.app.state
    if not hasattr(state, "interpret_conversations"):
        state.interpret_conversations = Conversations()
    return state.interpret_conversations


@router.post("/mark")
def mark(body: MarkRequest, request: Request, who: Principal = role("patient", "doctor")):
    """The glossary terms in a report, each with its plain explanation, level, department, whether the report
    rules it out (negated) or only suspects it (uncertain), and the section it is in."""
    if (refused := _forbidden_person(who, body.person_key)) is not None:
        return refused
    marker = default_marker()
    spans = marker.mark(body.text)
    if (audit := _audit(who, body, "report_interpretation")) is not None:
        publish(request.app.state.platform.log, [audit])
    return {"glossary_version": marker.glossary.version, "spans": [s.to_dict() for s in spans],
            "summary": dialogue.summary(spans), "disclaimer": dialogue.DISCLAIMER}


@router.post("/chat")
def chat(body: ChatRequest, request: Request, who: Principal = role("patient", "doctor")):
    """Answer a patient's question about the report. Red-flag words always get the emergency answer; otherwise
    the hospital's model answers if one is configured, else the offline glossary fallback. Every turn is an event."""
    if (refused := _forbidden_person(who, body.person_key)) is not None:
        return refused
    platform = request.app.state.platform
    store = _conversations(request)
    events = []
    if body.conversation_id:
        live = store.get(body.conversation_id, who.name)
        if live is None:
            return _problem(404, "conversation not found",
                            "this conversation has ended or belongs to someone else; start a new one "
                            "(send report_text without conversation_id)")
    else:
        if not body.report_text or not body.report_text.strip():
            return _problem(422, "report needed", "send report_text to start a conversation about a report")
        live = store.open(who.name, dialogue.start(body.report_text), body.person_key)
        events.append(_envelope(started_event(
            live.id, live.conversation, request.app.state.platform.keys, actor=who.name, role=who.role, person_key=live.person_key,
            study_uid=body.study_uid, report_id=body.report_id), who, live.person_key or live.id))
        if (audit := _audit(who, body, "report_conversation")) is not None:
            events.append(audit)
    model, model_name = _chat_model(request)
    with store.turn_lock(live.id):
        live = store.get(live.id, who.name) or live  # with any turn another request has just added
        began = time.monotonic()
        conversation, answer = dialogue.respond(live.conversation, body.message, model=model)
        latency_ms = round((time.monotonic() - began) * 1000)
        store.update(live, conversation)
        first = len(conversation.turns) - 2
        key = live.person_key or live.id
        for index, turn in ((first, conversation.turns[first]), (first + 1, answer)):
            events.append(_envelope(turn_event(live.id, index, turn, platform.keys, person_key=live.person_key,
                                               model=model_name, latency_ms=latency_ms), who, key))
        publish(platform.log, events)  # inside the lock: turns reach the log in their order
    flag = next((r.flag for r in redflags.RULES if r.flag.name == answer.red_flag), None)
    return {
        "conversation_id": live.id, "turn_index": first + 1, "answer": answer.text, "source": answer.source,
        "red_flag": answer.red_flag or None, "red_flag_label": flag.label if flag else None,
        "emergency": answer.source == "red_flag", "fallback_reason": answer.fallback_reason or None,
        "disclaimer": dialogue.DISCLAIMER,
    }


async def _upload(request: Request) -> tuple[bytes | None, UploadFile | None, str]:
    """The raw body (``None`` when over the limit) and the uploaded ``file`` part, or the reason there is none."""
    from api.app import _read_capped  # the app module imports this router

    body = await _read_capped(request, MAX_PHOTO_BYTES)
    if body is None:
        return None, None, ""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return body, None, "send the photo as multipart/form-data in a field named 'file'"

    async def stream():
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=1, max_fields=5).parse()
    except MultiPartException as exc:
        return body, None, f"malformed multipart body: {exc.message}"
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        return body, None, "no file in the form field 'file'"
    return body, upload, ""


@router.post("/ocr")
async def read_photo(request: Request, who: Principal = role("patient", "doctor")):
    """Read the text of a photographed paper report (multipart field ``file``: JPEG, PNG, ...). The text comes back
    for the patient to check and correct before it is marked; nothing is stored unless the photo is refused."""
    platform = request.app.state.platform
    body, upload, reason = await _upload(request)
    if body is None:
        declared = request.headers.get("content-length", "?")
        letter = platform.dead_letters.put(
            channel=OCR_CHANNEL, source=who.name, body=b"",
            reason=f"photo upload of {declared} bytes exceeds {MAX_PHOTO_BYTES} bytes (body not kept)")
        return _problem(413, "photo too large",
                        f"the photo must be under {MAX_PHOTO_BYTES // (1024 * 1024)} MB; take it again at a lower "
                        "resolution or crop it to the report", dead_letter_id=letter)
    if upload is None:
        letter = platform.dead_letters.put(channel=OCR_CHANNEL, source=who.name, reason=reason, body=body)
        return _problem(422, "photo rejected", reason, dead_letter_id=letter)
    data = await upload.read()
    try:
        text = await run_in_threadpool(ocr.read_report, data)
    except ValueError as exc:
        reason = f"cannot read the photo: {exc}"
    else:
        if text.strip():
            return {"text": text, "lines": text.count("\n") + 1, "filename": upload.filename}
        reason = "no text found in the photo; photograph the report flat, in good light, filling the frame"
    letter = platform.dead_letters.put(channel=OCR_CHANNEL, source=who.name, reason=reason, body=data)
    return _problem(422, "photo rejected", reason, dead_letter_id=letter)
