"""The report interpretation API on a temporary embedded platform: roles, conversation events, audit, OCR refusals."""
from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient

from api import interpret as interpret_api
from api.app import create_app
from api.auth import TokenStore
from interpret.conversations import TEXT_CONTEXT, started_terms
from schemas.events import ConversationStarted
from tests.interpret.chat_stub import OK_ANSWER, ChatStub
from tests.interpret.photos import photograph, render
from wanying.settings import Settings
from wanying.wiring import Platform

PROBLEM = "application/problem+json"
REPORT = "检查所见：右肺上叶见磨玻璃结节，大小约6mm。未见胸腔积液。\n诊断意见：1. 右肺上叶磨玻璃结节。2. 脂肪肝。"
PERSON = "a" * 64
OTHER_ROLES = ("operator", "regulator", "system")


def _app(tmp_path, **settings):
    data = tmp_path / "data"
    platform = Platform(Settings(data_dir=data, log_fsync="off", **settings))
    tokens = TokenStore.create_dev(data / "api-tokens.json")
    return platform, tokens, create_app(platform, TokenStore.load(data / "api-tokens.json"))


@pytest.fixture
def env(tmp_path):
    platform, tokens, app = _app(tmp_path)
    with TestClient(app) as client:
        client.as_ = lambda role: {"Authorization": f"Bearer {tokens[role]}"}
        yield platform, client
    platform.close()


def _events(platform, type_: str | None = None) -> list:
    out = []
    for partition in range(platform.log.partitions("person")):
        out += [r.envelope() for r in platform.log.read("person", partition, 0, 100_000)]
    return [e for e in out if type_ is None or e.type == type_]


# ------------------------------------------------------------------ roles


@pytest.mark.parametrize("path", ["/api/v1/interpret/mark", "/api/v1/interpret/chat", "/api/v1/interpret/ocr"])
def test_only_patients_and_doctors_may_use_interpretation(env, path):
    _, client = env
    assert client.post(path, json={"text": REPORT}).status_code == 401
    for other in OTHER_ROLES:
        denied = client.post(path, json={"text": REPORT}, headers=client.as_(other))
        assert denied.status_code == 403, other
        assert denied.headers["content-type"] == PROBLEM


# ------------------------------------------------------------------ mark


def test_mark_returns_explained_spans_and_audits_only_a_persons_report(env):
    platform, client = env
    for who in ("patient", "doctor"):
        r = client.post("/api/v1/interpret/mark", json={"text": REPORT}, headers=client.as_(who))
        assert r.status_code == 200, r.text
    spans = {s["term"]: s for s in r.json()["spans"]}
    nodule, effusion = spans["磨玻璃结节"], spans["胸腔积液"]
    assert (nodule["negated"], nodule["level"], nodule["department"]) == (False, "follow_up", "呼吸内科")
    assert nodule["explanation"] and REPORT[nodule["start"]:nodule["end"]] == "磨玻璃结节"
    assert effusion["negated"] is True and nodule["section"] in ("检查所见", "诊断意见")
    assert "医生" in r.json()["disclaimer"]
    assert _events(platform, "RecordAccessed") == []  # a report not linked to anyone: nobody to audit

    r = client.post("/api/v1/interpret/mark", json={"text": REPORT, "person_key": PERSON, "report_id": "R-77"},
                    headers=client.as_("doctor"))
    assert r.status_code == 200
    [audit] = _events(platform, "RecordAccessed")
    assert (audit.key, audit.payload["actor"], audit.payload["role"]) == (PERSON, "demo-doctor", "doctor")
    assert audit.payload["resource"] == "report_interpretation:R-77"


def test_mark_refuses_an_empty_or_oversized_report_without_echoing_it(env):
    _, client = env
    assert client.post("/api/v1/interpret/mark", json={"text": ""}, headers=client.as_("patient")).status_code == 422
    big = "肺结节" * (interpret_api.MAX_REPORT_CHARS // 3 + 1)
    r = client.post("/api/v1/interpret/mark", json={"text": big}, headers=client.as_("patient"))
    assert r.status_code == 422 and "肺结节" not in r.text
    bad_key = client.post("/api/v1/interpret/mark", json={"text": REPORT, "person_key": "110105194912310021"},
                          headers=client.as_("patient"))
    assert bad_key.status_code == 422 and "110105194912310021" not in bad_key.text


# ------------------------------------------------------------------ chat


def test_chat_without_model_falls_back_and_records_every_turn_encrypted(env):
    platform, client = env
    me = client.as_("patient")
    assert client.post("/api/v1/interpret/chat", json={"message": "我该挂什么科？"}, headers=me).status_code == 422
    first = client.post("/api/v1/interpret/chat", headers=me, json={
        "report_text": REPORT, "message": "我该挂什么科？", "person_key": PERSON, "study_uid": "1.2.3.4"})
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["source"], answer["fallback_reason"], answer["emergency"]) == ("fallback", "no_model", False)
    assert "呼吸内科" in answer["answer"] and answer["disclaimer"] in answer["answer"]
    second = client.post("/api/v1/interpret/chat", headers=me, json={
        "conversation_id": answer["conversation_id"], "message": "饮食上要注意什么？"})
    assert second.status_code == 200 and second.json()["turn_index"] == 3
    assert "脂肪肝" in second.json()["answer"]

    [started] = _events(platform, "ConversationStarted")
    assert started.key == PERSON and started.payload["study_uid"] == "1.2.3.4"
    assert "磨玻璃结节" not in started.model_dump_json()  # which findings a report has is encrypted too
    decoded = started_terms(ConversationStarted(**started.payload), platform.keys)
    terms = {t.canonical: t for t in decoded}
    assert terms["胸腔积液"].negated is True and terms["磨玻璃结节"].level == "follow_up"
    assert REPORT not in started.model_dump_json()
    turns = sorted(_events(platform, "ConversationTurnRecorded"), key=lambda e: e.payload["turn_index"])
    assert [t.payload["turn_index"] for t in turns] == [0, 1, 2, 3]
    assert [t.payload["role"] for t in turns] == ["patient", "assistant"] * 2
    assert {t.key for t in turns} == {PERSON}
    assert "挂什么科" not in turns[0].model_dump_json()  # encrypted on the log
    assert platform.keys.decrypt(turns[0].payload["text"], context=TEXT_CONTEXT) == "我该挂什么科？"
    assert platform.keys.decrypt(turns[1].payload["text"], context=TEXT_CONTEXT) == answer["answer"]
    assert turns[1].payload["fallback_reason"] == "no_model" and "model" not in turns[1].payload
    assert turns[1].payload["latency_ms"] >= 0
    [audit] = _events(platform, "RecordAccessed")
    assert audit.payload["resource"] == "report_conversation:1.2.3.4"


def test_red_flag_answer_is_an_emergency_and_recorded_as_such(env):
    platform, client = env
    r = client.post("/api/v1/interpret/chat", headers=client.as_("patient"),
                    json={"report_text": REPORT, "message": "我现在胸口痛，还出冷汗"})
    body = r.json()
    assert (body["source"], body["red_flag"], body["emergency"]) == ("red_flag", "chest_pain", True)
    assert "120" in body["answer"] and body["red_flag_label"] == "胸痛"
    reply = [e for e in _events(platform, "ConversationTurnRecorded") if e.payload["role"] == "assistant"]
    assert [(e.payload["source"], e.payload["red_flag"]) for e in reply] == [("red_flag", "chest_pain")]
    assert [e.key for e in reply] == [body["conversation_id"]]  # no person: the conversation is the key


def test_nobody_continues_anothers_conversation(env):
    _, client = env
    started = client.post("/api/v1/interpret/chat", headers=client.as_("patient"),
                          json={"report_text": REPORT, "message": "严重吗？"}).json()
    stolen = client.post("/api/v1/interpret/chat", headers=client.as_("doctor"),
                         json={"conversation_id": started["conversation_id"], "message": "严重吗？"})
    assert stolen.status_code == 404 and stolen.headers["content-type"] == PROBLEM
    assert "start a new one" in stolen.json()["detail"]


def test_chat_uses_the_model_from_settings(tmp_path):
    with ChatStub() as stub:
        platform, tokens, app = _app(tmp_path, chat_base_url=stub.base_url, chat_model="local-qwen",
                                     chat_timeout_s=5)
        with TestClient(app) as client:
            r = client.post("/api/v1/interpret/chat", headers={"Authorization": f"Bearer {tokens['patient']}"},
                            json={"report_text": REPORT, "message": "磨玻璃结节是什么？"})
        assert r.json()["source"] == "model" and r.json()["answer"].startswith(OK_ANSWER)
        assert "磨玻璃结节" in stub.requests[0]["body"]["messages"][0]["content"]  # grounded in the report
        reply = [e for e in _events(platform, "ConversationTurnRecorded") if e.payload["role"] == "assistant"]
        assert reply[0].payload["model"] == "local-qwen" and reply[0].payload["source"] == "model"
        platform.close()


# ------------------------------------------------------------------ OCR


def test_ocr_reads_a_photographed_report(env):
    _, client = env
    page, _ = render("诊断意见：右肺上叶磨玻璃结节。\n脂肪肝。", size=36, width=700)
    photo = photograph(page, angle=3.0, seed=7)
    r = client.post("/api/v1/interpret/ocr", headers=client.as_("patient"),
                    files={"file": ("report.jpg", photo, "image/jpeg")})
    assert r.status_code == 200, r.text
    assert "磨玻璃结节" in r.json()["text"] and "脂肪肝" in r.json()["text"]
    marked = client.post("/api/v1/interpret/mark", json={"text": r.json()["text"]}, headers=client.as_("patient"))
    assert {"磨玻璃结节", "脂肪肝"} <= {s["canonical"] for s in marked.json()["spans"]}


def test_unreadable_photos_are_refused_and_kept_with_their_bytes(env):
    platform, client = env
    junk = b"\xff\xd8 this is not a jpeg"
    r = client.post("/api/v1/interpret/ocr", headers=client.as_("patient"),
                    files={"file": ("report.jpg", junk, "image/jpeg")})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert "cannot read the photo" in r.json()["detail"]
    letter = platform.dead_letters.get(r.json()["dead_letter_id"])
    assert (letter.channel, letter.body, letter.sha256) == ("interpret-ocr", junk, hashlib.sha256(junk).hexdigest())

    no_file = client.post("/api/v1/interpret/ocr", headers=client.as_("doctor"), data={"note": "x"})
    assert no_file.status_code == 422 and "'file'" in no_file.json()["detail"]
    assert platform.dead_letters.get(no_file.json()["dead_letter_id"]).size > 0

    blank = photograph(render(" ", size=30, width=300)[0], angle=0, seed=1)
    empty = client.post("/api/v1/interpret/ocr", headers=client.as_("patient"),
                        files={"file": ("blank.jpg", blank, "image/jpeg")})
    assert empty.status_code == 422 and "no text" in empty.json()["detail"]
    assert platform.dead_letters.get(empty.json()["dead_letter_id"]).body == blank
    assert platform.dead_letters.counts()["interpret-ocr"]["open"] == 3


def test_oversized_photo_is_413_and_counted(env, monkeypatch):
    platform, client = env
    monkeypatch.setattr(interpret_api, "MAX_PHOTO_BYTES", 50_000)
    r = client.post("/api/v1/interpret/ocr", headers=client.as_("patient"),
                    files={"file": ("big.jpg", b"\0" * 60_000, "image/jpeg")})
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    assert "under" in r.json()["detail"]
    letter = platform.dead_letters.get(r.json()["dead_letter_id"])
    assert letter.channel == "interpret-ocr" and "exceeds 50000 bytes" in letter.reason


def test_simultaneous_messages_in_one_conversation_get_distinct_turns(env, monkeypatch):
    import time
    from concurrent.futures import ThreadPoolExecutor

    platform, client = env
    respond = interpret_api.dialogue.respond

    def slow_respond(*args, **kwargs):  # a model takes seconds: wide open for a double-tapped message
        time.sleep(0.05)
        return respond(*args, **kwargs)

    monkeypatch.setattr(interpret_api.dialogue, "respond", slow_respond)
    me = client.as_("patient")
    started = client.post("/api/v1/interpret/chat", headers=me, json={"report_text": REPORT, "message": "严重吗？"})
    cid = started.json()["conversation_id"]
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda q: client.post("/api/v1/interpret/chat", headers=me, json={
            "conversation_id": cid, "message": q}), ["挂什么科？", "饮食要注意什么？", "脂肪肝是什么？", "要复查吗？"]))
    assert sorted(r.json()["turn_index"] for r in replies) == [3, 5, 7, 9]
    turns = [e.payload["turn_index"] for e in _events(platform, "ConversationTurnRecorded")]
    assert turns == list(range(10))  # one partition, in order
