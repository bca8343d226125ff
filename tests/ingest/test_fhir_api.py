from __future__ import annotations

import base64
import json

import pytest

from tests.ingest.api_client import PROBLEM, api, platform, platform_events  # noqa: F401 - fixtures
from tests.ingest.hl7_samples import ID_1, NAME_1, PHONE_1

PATIENT = {"resourceType": "Patient", "id": "p1",
           "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "M0012345"},
                          {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                "code": "NNCHN"}]}, "value": ID_1}],
           "name": [{"text": NAME_1}], "telecom": [{"system": "phone", "value": "0551-62283114"},
                                                   {"system": "phone", "value": PHONE_1}],
           "gender": "male", "birthDate": "1985-06-12"}
ENCOUNTER = {"resourceType": "Encounter", "id": "e1", "status": "in-progress",
             "identifier": [{"value": "MZ20261128001"}], "class": {"code": "AMB"},
             "subject": {"reference": "Patient/p1"}, "serviceType": {"text": "呼吸内科"},
             "participant": [{"individual": {"reference": "Practitioner/D0231"}}],
             "period": {"start": "2026-11-28T09:30:00+08:00"}}
ORDER = {"resourceType": "ServiceRequest", "id": "s1", "status": "active", "intent": "order",
         "identifier": [{"type": {"coding": [{"code": "PLAC"}]}, "value": "SQ001"},
                        {"type": {"coding": [{"code": "ACSN"}]}, "value": "ACC001"}],
         "code": {"coding": [{"system": "urn:hospital:AH-HF-001:items", "code": "CT0401", "display": "胸部+上腹部CT平扫"},
                             {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}]},
         "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
         "requester": {"reference": "Practitioner/D0231"}, "authoredOn": "2026-11-28T09:40:00+08:00"}
REPORT = {"resourceType": "DiagnosticReport", "id": "r1", "status": "final", "code": {"text": "胸部CT平扫"},
          "identifier": [{"value": "RPT001"}, {"type": {"coding": [{"code": "ACSN"}]}, "value": "ACC001"}],
          "subject": {"reference": "Patient/p1"}, "issued": "2026-11-28T11:30:00+08:00",
          "resultsInterpreter": [{"reference": "Practitioner/R0045"}],
          "imagingStudy": [{"reference": "ImagingStudy/1.2.156.1.2.3"}],
          "conclusion": "右肺上叶磨玻璃结节", "conclusionCode": [{"coding": [{"code": "critical"}]}],
          "presentedForm": [{"contentType": "text/plain; charset=utf-8",
                             "data": base64.b64encode("右肺上叶见6mm磨玻璃结节".encode()).decode()}]}


def bundle(*resources):
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]}


def post(api, doc, role="system"):
    body = doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False).encode()
    return api.post("/api/v1/his/fhir", content=body,
                    headers={**api.headers_for(role), "content-type": "application/fhir+json"})


def test_bundle_becomes_events_with_protected_person(api, platform):
    r = post(api, bundle(PATIENT, ENCOUNTER, ORDER, REPORT))
    assert r.status_code == 202, r.text
    assert [e["type"] for e in r.json()["events"]] == ["VisitStarted", "ExamOrdered", "ReportFinalized"]
    events = {e.type: e for e in platform_events(platform)}
    keys = platform.keys
    visit = events["VisitStarted"].payload
    assert visit["person_key"] == keys.person_key(ID_1) and visit["patient_class"] == "outpatient"
    assert visit["doctor_id"] == "D0231" and visit["department"] == "呼吸内科" and visit["visit_id"] == "MZ20261128001"
    assert keys.decrypt(visit["person"]["phone"], context="phone") == PHONE_1
    order = events["ExamOrdered"].payload
    assert (order["order_id"], order["accession_number"], order["modality"], order["visit_id"]) == (
        "SQ001", "ACC001", "CT", "MZ20261128001")
    report = events["ReportFinalized"].payload
    assert report["study_uid"] == "1.2.156.1.2.3" and report["author_id"] == "R0045" and report["critical"]
    assert keys.decrypt(report["findings"], context="findings") == "右肺上叶见6mm磨玻璃结节"
    assert events["ExamCodeMapped"].payload["standard_items"] == ["CT-CHEST-P", "CT-UPPER_ABD-P"]
    blob = "".join(e.model_dump_json() for e in platform_events(platform))
    assert ID_1 not in blob and NAME_1 not in blob and PHONE_1 not in blob


def test_resend_is_idempotent_by_event_id(api, platform):
    post(api, bundle(PATIENT, ENCOUNTER))
    post(api, bundle(PATIENT, ENCOUNTER))
    assert len({e.event_id for e in platform_events(platform)}) == 1


def test_cancel_amend_and_lone_patient(api, platform):
    assert post(api, bundle(PATIENT, {**ORDER, "status": "revoked", "note": [{"text": "患者取消"}]})).status_code == 202
    assert post(api, bundle(PATIENT, {**REPORT, "status": "amended"})).status_code == 202
    assert post(api, PATIENT).status_code == 202
    types = sorted(e.type for e in platform_events(platform))
    assert types == ["ExamCancelled", "PatientUpdated", "ReportAmended"]


def test_subject_outside_the_message_gets_a_hospital_scoped_key(api, platform):
    assert post(api, ENCOUNTER).status_code == 202
    [event] = platform_events(platform)
    assert event.key.startswith("h.AH-HF-001.")


@pytest.mark.parametrize("doc, words", [
    (b"{not json", "not valid UTF-8 JSON"),
    ({"resourceType": "Observation", "id": "o"}, "Observation not accepted"),
    (bundle(PATIENT, {**ENCOUNTER, "status": "finished"}), "Encounter.status 'finished'"),
    (bundle(PATIENT, {**ENCOUNTER, "class": {"code": "XYZ"}}), "Encounter.class.code"),
    (bundle({**PATIENT, "identifier": [{"type": {"coding": [{"code": "NNCHN"}]}, "value": ID_1[:-1] + "0"}]},
            ENCOUNTER), "check digit"),
    (bundle(PATIENT, {**REPORT, "status": "preliminary"}), "only final"),
    (bundle(PATIENT, {**REPORT, "issued": "2026-11-28T11:30:00"}), "time zone"),
    (bundle(PATIENT, {**ORDER, "code": {"text": "x"}}), "local exam item code"),
])
def test_bad_input_is_problem_json_and_dead_letter(api, platform, doc, words):
    r = post(api, doc)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert words in r.json()["detail"]
    letter = platform.dead_letters.get(r.json()["dead_letter_id"])
    sent = doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False).encode()
    assert letter.body == sent and letter.channel == "his-fhir" and words in letter.reason
    assert ID_1 not in r.text
    assert [e.type for e in platform_events(platform)] == []


def test_only_system_tokens(api):
    assert post(api, PATIENT, role="doctor").status_code == 403
    assert api.post("/api/v1/his/fhir", content=b"{}").status_code == 401
