"""The doctor API on a temporary embedded platform: reminders, order items, decisions, statistics, roles, audit."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Principal, TokenStore
from streams.topics import publish
from tests.doctor.stream import CT_CHEST, HF1, WH1, WH2, DoctorStream, local
from tests.unit.exam_stream import CST
from wanying.settings import Settings
from wanying.wiring import Platform

PROBLEM = "application/problem+json"
DAY = date(2026, 9, 1)
TOKENS = {
    "doctor": Principal("D0101", "doctor", HF1),
    "other-doctor": Principal("D0101", "doctor", WH2),
    "unbound-doctor": Principal("D9", "doctor", None),
    "regulator": Principal("reg-1", "regulator"),
    "operator": Principal("op-1", "operator"),
    "patient": Principal("p-1", "patient"),
    "system": Principal("his-1", "system", HF1),
}


@pytest.fixture
def env(tmp_path):
    platform = Platform(Settings(data_dir=tmp_path / "data", log_fsync="off"))
    store = TokenStore({TokenStore.hash(f"tok-{n}"): p for n, p in TOKENS.items()})
    b = DoctorStream(keys=platform.keys)
    pk = b.person("34010419850612123")
    a = b.exam(pk, WH1, DAY, CT_CHEST)
    c = b.exam(pk, WH2, DAY + timedelta(days=1), CT_CHEST, report="amended")
    b.opened_at(pk, HF1, local(DAY + timedelta(days=5), 9), doctor="D0101")
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=5)), CT_CHEST, "CT-HEAD-P", doctor="D0101")
    publish(platform.log, b.events)
    runner = platform.runner()
    runner.run_until_caught_up()
    with TestClient(create_app(platform, store)) as client:
        client.as_ = lambda name: {"Authorization": f"Bearer tok-{name}"}
        client.catch_up = runner.run_until_caught_up
        yield platform, client, pk, {"older": a, "newer": c}
    platform.close()


def _events(platform, type_):
    out = []
    for partition in range(platform.log.partitions("person")):
        out += [r.envelope() for r in platform.log.read("person", partition, 0, 10_000)]
    return [e for e in out if e.type == type_]


def test_the_doctor_sees_their_recent_reminders_with_the_list(env):
    platform, client, pk, studies = env
    r = client.get("/api/v1/doctor/reminders", headers=client.as_("doctor"))
    assert r.status_code == 200
    body = r.json()
    assert (body["hospital"], body["doctor_id"], body["count"]) == (HF1, "D0101", 1)
    [reminder] = body["reminders"]
    assert (reminder["person_key"], reminder["exam_count"], reminder["trigger"]) == (pk, 2, "patient_opened")
    assert reminder["study_uids"] == [studies["newer"], studies["older"]]
    listed = {e["study_uid"]: e for e in reminder["exams"]}
    assert listed[studies["newer"]]["report_status"] == "amended" and listed[studies["newer"]]["recognizable"]
    assert listed[studies["older"]]["standard_items"] == [CT_CHEST]
    assert listed[studies["older"]]["hospital_name"] == "芜湖市第二人民医院"
    audits = _events(platform, "RecordAccessed")
    assert [(a.payload["person_key"], a.payload["actor"], a.payload["resource"]) for a in audits] == [
        (pk, "D0101", "doctor_reminders")]
    other = client.get("/api/v1/doctor/reminders", headers=client.as_("other-doctor")).json()
    assert other["count"] == 0  # the same doctor id at another hospital is another doctor


def test_order_items_list_candidates_and_are_audited(env):
    platform, client, pk, studies = env
    r = client.get("/api/v1/doctor/orders/O1/items", headers=client.as_("doctor"))
    assert r.status_code == 200
    items = {i["standard_item"]: i for i in r.json()["items"]}
    assert set(items) == {CT_CHEST, "CT-HEAD-P"}
    assert items["CT-HEAD-P"]["status"] == "no_candidates"
    chest = items[CT_CHEST]
    assert (chest["status"], chest["candidate_count"], chest["rule_version"]) == ("candidates", 2, "2024.1")
    assert [c["study_uid"] for c in chest["candidates"]] == [studies["newer"], studies["older"]]
    assert [a.payload["resource"] for a in _events(platform, "RecordAccessed")] == ["order_items"]
    missing = client.get("/api/v1/doctor/orders/NOPE/items", headers=client.as_("doctor"))
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert client.get("/api/v1/doctor/orders/O1/items", headers=client.as_("other-doctor")).status_code == 404
    unbound = client.get("/api/v1/doctor/orders/O1/items", headers=client.as_("unbound-doctor"))
    assert unbound.status_code == 403 and "not bound to a hospital" in unbound.json()["detail"]


@pytest.mark.parametrize("body,reason", [
    ({"decision": "declined"}, "needs a reason_code"),
    ({"decision": "declined", "reason_code": "too_busy"}, "unknown reason_code 'too_busy'"),
    ({"decision": "declined", "reason_code": "other"}, "needs reason_text"),
    ({"decision": "accepted", "reason_code": "emergency"}, "takes no reason code"),
    ({"decision": "perhaps"}, "must be 'accepted' or 'declined'"),
    ({"decision": "accepted", "candidate_study_uid": "1.2.3.4"}, "is not a candidate"),
])
def test_invalid_decisions_are_refused_with_the_reason_and_kept(env, body, reason):
    platform, client, _, studies = env
    body = {"candidate_study_uid": studies["older"], **body}
    r = client.post(f"/api/v1/doctor/orders/O1/items/{CT_CHEST}/decision", json=body, headers=client.as_("doctor"))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert reason in r.json()["detail"]
    assert r.json()["dead_letter_id"] in {d.id for d in platform.dead_letters.list(channel="doctor-decision")}
    assert _events(platform, "RecognitionDecided") == []


def test_a_decision_on_an_item_the_order_does_not_have_is_refused(env):
    _, client, _, studies = env
    r = client.post("/api/v1/doctor/orders/O1/items/MR-HEAD-P/decision", headers=client.as_("doctor"),
                    json={"candidate_study_uid": studies["older"], "decision": "accepted"})
    assert r.status_code == 422 and "has no checked item 'MR-HEAD-P'" in r.json()["detail"]


def test_decline_one_accept_another_and_the_item_shows_hr(env):
    platform, client, pk, studies = env
    url = f"/api/v1/doctor/orders/O1/items/{CT_CHEST}/decision"
    declined = client.post(url, headers=client.as_("doctor"), json={
        "candidate_study_uid": studies["older"], "decision": "declined", "reason_code": "other",
        "reason_text": "患者病情变化明显"})
    accepted = client.post(url, headers=client.as_("doctor"), json={
        "candidate_study_uid": studies["newer"], "decision": "accepted"})
    assert (declined.status_code, accepted.status_code) == (202, 202)
    decisions = _events(platform, "RecognitionDecided")
    assert [(d.payload["decision"], d.payload.get("reason_code"), d.payload["doctor_id"], d.key, d.source)
            for d in decisions] == [("declined", "other", "D0101", pk, HF1), ("accepted", None, "D0101", pk, HF1)]
    sealed = decisions[0].payload["reason_text"]  # the doctor's words are kept only encrypted
    assert sealed.startswith("enc1.") and "病情" not in sealed and decisions[1].payload.get("reason_text") is None
    client.catch_up()
    items = {i["standard_item"]: i for i in client.get("/api/v1/doctor/orders/O1/items",
                                                       headers=client.as_("doctor")).json()["items"]}
    chest = items[CT_CHEST]
    assert (chest["status"], chest["mark"], chest["label"]) == ("accepted", "HR", "已互认")
    assert [d["reason_text"] for d in chest["decisions"]] == ["患者病情变化明显", None]
    # The mark shows wherever the order is shown: in the patient's exam list too.
    exams = client.get(f"/api/v1/patients/{pk}/exams", headers=client.as_("doctor")).json()["exams"]
    [ordered] = [e for e in exams if e["hospital"] == HF1 and e["order_id"] == "O1"]
    marks = {i["standard_item"]: (i["mark"], i["label"]) for i in ordered["items"]}
    assert marks[CT_CHEST] == ("HR", "已互认") and marks.keys() == items.keys()
    assert all(mark == (None, None) for item, mark in marks.items() if item != CT_CHEST)
    assert not [i for e in exams if e["order_id"] != "O1" for i in e["items"] if i["mark"]]
    assert {c["study_uid"]: c["decision"] for c in chest["candidates"]} == {
        studies["older"]: "declined", studies["newer"]: "accepted"}
    stats = client.get("/api/v1/doctor/statistics", params={"hospital": HF1}, headers=client.as_("regulator"))
    assert stats.status_code == 200
    body = stats.json()
    assert body["totals"] | {"duplicates_found": 1, "decided": 1, "accepted": 1, "recognition_rate": 1.0} == \
        body["totals"]
    # found in the order's month, decided now: each counted in the local month it happened
    this_month = datetime.now(CST).strftime("%Y-%m")
    assert sorted((r["month"], r["duplicates_found"], r["decided"]) for r in body["rows"]) == [
        ("2026-09", 1, 0), (this_month, 0, 1)]
    assert body["refusals"] == []  # the item was accepted in the end: no refusal counted


def test_statistics_are_for_regulators_and_reasons_are_listed(env):
    _, client, _, _ = env
    assert client.get("/api/v1/doctor/statistics", headers=client.as_("doctor")).status_code == 403
    assert client.get("/api/v1/doctor/statistics", headers=client.as_("patient")).status_code == 403
    bad = client.get("/api/v1/doctor/statistics", params={"month": "2026-9"}, headers=client.as_("regulator"))
    assert bad.status_code == 422
    reasons = client.get("/api/v1/doctor/reasons", headers=client.as_("doctor")).json()
    assert [r["code"] for r in reasons["reasons"] if r["needs_text"]] == ["other"]
    assert {r["list"] for r in reasons["reasons"]} == {"national", "local"}


@pytest.mark.parametrize("method,url", [
    ("GET", "/api/v1/doctor/reminders"), ("GET", "/api/v1/doctor/orders/O1/items"),
    ("POST", f"/api/v1/doctor/orders/O1/items/{CT_CHEST}/decision"),
])
def test_doctor_routes_refuse_other_roles(env, method, url):
    _, client, _, _ = env
    assert client.request(method, url).status_code == 401
    for name in ("regulator", "patient", "system", "operator"):
        r = client.request(method, url, headers=client.as_(name))
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
