from __future__ import annotations

import io
import json

import pytest
from openpyxl import Workbook

from tests.ingest.api_client import PROBLEM, api, platform, platform_events  # noqa: F401 - fixtures
from tests.ingest.hl7_samples import ID_1, NAME_1, PHONE_1

PATIENT = {"name": NAME_1, "id_number": ID_1, "phone": PHONE_1, "patient_id": "M0012345"}
AT = "2026-11-28T09:30:00+08:00"
EVENTS = [
    {"kind": "visit", "message_id": "H1", "occurred_at": AT, "patient": PATIENT, "visit_id": "MZ1",
     "patient_class": "outpatient", "department": "呼吸内科", "doctor_id": "D0231"},
    {"kind": "doctor_sign_in", "occurred_at": AT, "doctor_id": "D0231", "department": "呼吸内科",
     "workstation": "WS-3-12"},
    {"kind": "patient_opened", "occurred_at": AT, "patient": PATIENT, "doctor_id": "D0231", "visit_id": "MZ1"},
    {"kind": "order", "occurred_at": AT, "patient": PATIENT, "order_id": "SQ1", "item_code": "X11",
     "item_name": "双膝正侧位", "modality": "DX", "visit_id": "MZ1"},
    {"kind": "order", "occurred_at": AT, "patient": PATIENT, "order_id": "SQ2", "item_code": "X90",
     "item_name": "膝关节正侧位"},
    {"kind": "cancel", "occurred_at": AT, "patient": PATIENT, "order_id": "SQ2", "reason": "重复开单"},
    {"kind": "report", "occurred_at": AT, "patient": PATIENT, "report_id": "R1", "status": "final",
     "findings": "双膝关节退行性变", "impression": "退行性骨关节病", "author_id": "R0045", "signed_at": AT},
    {"kind": "patient", "occurred_at": AT, "patient": {**PATIENT, "phone": "13900001111"}},
]


def post(api, doc, role="system"):
    body = doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False).encode()
    return api.post("/api/v1/his/events", content=body, headers=api.headers_for(role))


def test_every_kind_becomes_its_event(api, platform):
    r = post(api, EVENTS)
    assert r.status_code == 202, r.text
    assert [e["type"] for e in r.json()["events"]] == [
        "VisitStarted", "DoctorSignedIn", "PatientOpened", "ExamOrdered", "ExamOrdered", "ExamCancelled",
        "ReportFinalized", "PatientUpdated"]
    events = platform_events(platform)
    types = sorted(e.type for e in events)
    assert types.count("ExamCodeMapped") == 1 and types.count("ExamCodeQueued") == 1
    assert all(e.source == "AH-HF-001" for e in events)
    blob = "".join(e.model_dump_json() for e in events)
    assert ID_1 not in blob and NAME_1 not in blob and PHONE_1 not in blob and "退行性" not in blob


def test_message_id_makes_resends_idempotent(api, platform):
    post(api, EVENTS[0])
    post(api, EVENTS[0])
    assert len({e.event_id for e in platform_events(platform)}) == 1


@pytest.mark.parametrize("doc, words", [
    (b"\xff\xfe", "not valid UTF-8 JSON"),
    ({**EVENTS[0], "kind": "dance"}, "kind"),
    ({**EVENTS[0], "patient_class": "vip"}, "patient_class"),
    ({**EVENTS[0], "occurred_at": "2026-11-28T09:30:00"}, "time zone"),
    ({**EVENTS[0], "patient": {**PATIENT, "id_number": ID_1[:-1] + "0"}}, "check digit"),
    ({**EVENTS[0], "patient": {**PATIENT, "phone": "12345"}}, "mobile number"),
    ([EVENTS[0], {**EVENTS[3], "order_id": ""}], "#1"),
    ({**EVENTS[6], "status": "amended"}, "amend_reason"),
])
def test_bad_input_is_problem_json_and_dead_letter(api, platform, doc, words):
    r = post(api, doc)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert words in r.json()["detail"], r.json()
    assert ID_1 not in r.text and PHONE_1 not in r.text
    letter = platform.dead_letters.get(r.json()["dead_letter_id"])
    sent = doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False).encode()
    assert letter.body == sent and letter.channel == "his-json"
    assert platform_events(platform) == []  # all or nothing


def test_mapping_review_accept_and_excel_import_over_http(api, platform):
    post(api, [EVENTS[4]])
    queue = api.get("/api/v1/his/mappings/review", headers=api.headers_for("operator")).json()
    assert [q["local_code"] for q in queue] == ["X90"] and queue[0]["suggestions"][0]["code"].startswith("DR-KNEE")
    r = api.post("/api/v1/his/mappings/AH-HF-001/X90/accept", headers=api.headers_for("operator"),
                 json={"items": ["DR-KNEE-L-AP_LAT", "DR-KNEE-R-AP_LAT"]})
    assert r.status_code == 200 and r.json()["standard_items"] == ["DR-KNEE-L-AP_LAT", "DR-KNEE-R-AP_LAT"]
    assert api.get("/api/v1/his/mappings/review", headers=api.headers_for("operator")).json() == []
    book = Workbook()
    book.active.append(["hospital", "local_code", "local_name", "standard_items"])
    book.active.append(["AH-HF-001", "MR9", "头颅MR平扫", "MR-HEAD-P"])
    book.active.append(["AH-HF-001", "MR10", "头颅MR", "NOPE"])
    buf = io.BytesIO()
    book.save(buf)
    r = api.post("/api/v1/his/mappings/import", content=buf.getvalue(), headers={
        **api.headers_for("operator"),
        "content-type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
    assert r.status_code == 207 and r.json()["events"] == 1 and "NOPE" in r.json()["rejected_lines"][0]
    mapped = [e for e in platform_events(platform) if e.type == "ExamCodeMapped"]
    assert {e.payload["method"] for e in mapped} == {"manual", "import"}


def test_dead_letter_replay_after_fix(api, platform):
    from pipelines.his_json.replay import his_replayer

    bad = {**EVENTS[0], "patient_class": "vip"}
    letter_id = post(api, bad).json()["dead_letter_id"]
    letter = platform.dead_letters.get(letter_id)
    handler = his_replayer(letter.channel, platform.log, platform.keys)
    with pytest.raises(Exception, match="patient_class"):
        platform.dead_letters.replay(letter_id, handler)  # still bad: the letter stays open
    assert platform.dead_letters.get(letter_id).status == "open"
    fixed = his_replayer("his-json", platform.log, platform.keys)
    # the operator corrects the class at the source and the HIS resends; replaying the corrected body succeeds
    fixed(json.dumps({**bad, "patient_class": "outpatient"}).encode(), letter.source)
    assert [e.type for e in platform_events(platform)] == ["VisitStarted"]
