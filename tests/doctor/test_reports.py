"""The report a doctor opens from the plugin: the processor keeps the current (encrypted) text, amendments win by
signing time whatever order they arrive in; the API decrypts for doctors only and audits the read."""
from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Principal, TokenStore
from streams.processors import ReportTexts
from streams.topics import publish
from tests.doctor.fold import Run
from tests.doctor.stream import CT_CHEST, HF1, WH1, DoctorStream
from tests.doctor.test_doctor_api import _events
from wanying.settings import Settings
from wanying.wiring import Platform

DAY = date(2026, 9, 1)


def _row(run: Run, hospital: str, report_id: str) -> dict:
    proc = ReportTexts()
    key = f"{hospital}|{report_id}"
    [row] = proc.rows(key, run.state(proc, key))["report_texts"]
    return row


def test_final_then_amended_keeps_the_amended_text_encrypted():
    b = DoctorStream()
    pk = b.person("34010419850612123")
    uid = b.exam(pk, WH1, DAY, CT_CHEST, report="amended")
    run = Run([ReportTexts()])
    run.feed(b.events)
    row = _row(run, WH1, "R1")
    assert (row["status"], row["amendments"], row["amended_reason"], row["study_uid"]) == ("amended", 1, "漏诊结节", uid)
    assert "结节" not in row["findings"] + row["impression"]  # only ciphertext in the view
    assert b.keys.decrypt(row["impression"], context="impression") == "右肺下叶小结节, 建议随访"


def test_an_amendment_arriving_before_its_original_is_not_overwritten():
    b = DoctorStream()
    pk = b.person("34010419850612123")
    b.exam(pk, WH1, DAY, CT_CHEST, report="amended")
    final, amended = [e for e in b.events if e.type in ("ReportFinalized", "ReportAmended")]
    run = Run([ReportTexts()])
    run.feed([e for e in b.events if e is not final])
    run.feed([final])
    row = _row(run, WH1, "R1")
    assert (row["status"], row["amendments"]) == ("amended", 1)
    assert b.keys.decrypt(row["findings"], context="findings") == "右肺下叶小结节"
    assert row["study_uid"] == final.payload["study_uid"]  # what only the original carries is still taken


def test_a_plain_final_report():
    b = DoctorStream()
    pk = b.person("34010419850612123")
    b.exam(pk, WH1, DAY, CT_CHEST)
    run = Run([ReportTexts()])
    run.feed(b.events)
    row = _row(run, WH1, "R1")
    assert (row["status"], row["amendments"], row["amended_reason"], row["critical"]) == ("final", 0, None, False)
    assert b.keys.decrypt(row["findings"], context="findings") == "两肺纹理清晰"


TOKENS = {"doctor": Principal("D0101", "doctor", HF1), "regulator": Principal("reg-1", "regulator"),
          "operator": Principal("op-1", "operator"), "patient": Principal("p-1", "patient")}


@pytest.fixture
def api(tmp_path):
    platform = Platform(Settings(data_dir=tmp_path / "data", log_fsync="off"))
    b = DoctorStream(keys=platform.keys)
    pk = b.person("34010419850612123")
    uid = b.exam(pk, WH1, DAY, CT_CHEST, report="amended")
    publish(platform.log, b.events)
    platform.runner().run_until_caught_up()
    store = TokenStore({TokenStore.hash(f"tok-{n}"): p for n, p in TOKENS.items()})
    with TestClient(create_app(platform, store)) as client:
        client.as_ = lambda name: {"Authorization": f"Bearer tok-{name}"}
        yield platform, client, pk, uid
    platform.close()


def test_a_doctor_reads_another_hospitals_report_and_the_read_is_audited(api):
    platform, client, pk, uid = api
    r = client.get(f"/api/v1/reports/{WH1}/R1", headers=client.as_("doctor"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["findings"], body["impression"]) == ("右肺下叶小结节", "右肺下叶小结节, 建议随访")
    assert (body["status"], body["amendments"], body["amended_reason"]) == ("amended", 1, "漏诊结节")
    assert (body["study_uid"], body["hospital_name"], body["modality"]) == (uid, "芜湖市第二人民医院", "CT")
    audits = [e.payload for e in _events(platform, "RecordAccessed") if e.payload["resource"] == "report"]
    assert [(a["person_key"], a["actor"]) for a in audits] == [(pk, "D0101")]


@pytest.mark.parametrize("who, status", [("regulator", 403), ("operator", 403), ("patient", 403)])
def test_only_doctors_read_report_text(api, who, status):
    _, client, _, _ = api
    assert client.get(f"/api/v1/reports/{WH1}/R1", headers=client.as_(who)).status_code == status
    assert client.get(f"/api/v1/reports/{WH1}/R1").status_code == 401


def test_an_unknown_report_is_404_with_a_reason(api):
    _, client, _, _ = api
    r = client.get(f"/api/v1/reports/{WH1}/R99", headers=client.as_("doctor"))
    assert r.status_code == 404 and "R99" in r.json()["detail"]
