from __future__ import annotations

import pytest

from pipelines.hl7.message import parse
from streams.topics import publish
from schemas.registry import REGISTRY
from tests.ingest.conftest import all_events
from tests.ingest.hl7_samples import (ID_1, ID_2, NAME_1, NAME_2, PHONE_1, PHONE_2, adt_a04, encode, orm_o01,
                                     oru_r01, zwy)


def _ack_fields(ack: bytes, codec: str = "utf-8") -> dict[str, list[str]]:
    return {line[:3]: line.split("|") for line in ack.decode(codec).split("\r") if line}


def _no_plaintext(events):
    blob = "".join(e.model_dump_json() for e in events)
    for secret in (ID_1, ID_2, NAME_1, NAME_2, PHONE_1, PHONE_2, "磨玻璃结节"):
        assert secret not in blob, secret


@pytest.mark.parametrize("charset", ["UNICODE UTF-8", "GB 18030-2000", "GBK", ""])
def test_adt_a04_becomes_visit_started_with_protected_person(hl7_ingest, event_log, keys, charset):
    ack = hl7_ingest.handle(encode(adt_a04(charset=charset), charset), "test")
    fields = _ack_fields(ack, "utf-8" if charset == "UNICODE UTF-8" else "gb18030")
    assert fields["MSA"][1:3] == ["AA", "ADT0001"]
    assert fields["MSH"][8] == "ACK^A04^ACK" and fields["MSH"][17] == charset
    [event] = all_events(event_log)
    assert event.type == "VisitStarted" and event.source == "AHSL"
    p = event.payload
    assert p["visit_id"] == "MZ20261128001" and p["patient_class"] == "outpatient" and p["department"] == "呼吸内科门诊"
    assert p["doctor_id"] == "D0231" and p["person_key"] == keys.person_key(ID_1) == event.key
    assert keys.decrypt(p["person"]["name"], context="name") == NAME_1
    assert keys.decrypt(p["person"]["phone"], context="phone") == PHONE_1  # the mobile, not the landline
    assert keys.decrypt(p["person"]["id_number"], context="id_number") == ID_1
    assert p["person"]["hospital_patient_id"] == "M0012345" and p["person"]["birth_year"] == 1985
    _no_plaintext([event])


def test_resent_message_gives_the_same_event_ids(hl7_ingest, event_log):
    raw = adt_a04().encode()
    hl7_ingest.handle(raw, "t")
    hl7_ingest.handle(raw, "t")
    ids = {e.event_id for e in all_events(event_log)}
    assert len(ids) == 1


def test_adt_a08_updates_patient(hl7_ingest, event_log):
    raw = adt_a04().replace("ADT^A04^ADT_A01", "ADT^A08^ADT_A01").encode()
    assert b"MSA|AA" in hl7_ingest.handle(raw, "t")
    assert [e.type for e in all_events(event_log)] == ["PatientUpdated"]


def test_orders_split_and_feed_the_mapping_queue(hl7_ingest, event_log, mappings):
    raw = orm_o01(items=(("CT0401", "胸部+上腹部CT平扫", "CT"), ("DR0999", "膝关节正侧位", "DX"))).encode("gbk")
    assert b"MSA|AA" in hl7_ingest.handle(raw, "t")
    events = all_events(event_log)
    orders = [e for e in events if e.type == "ExamOrdered"]
    assert [(o.payload["order_id"], o.payload["local_item_code"], o.payload["accession_number"],
             o.payload["modality"]) for o in orders] == [
        ("SQ20261128001", "CT0401", "ACC20261128001", "CT"), ("SQ20261128002", "DR0999", "ACC20261128002", "DX")]
    assert orders[0].payload["local_item_name"] == "胸部+上腹部CT平扫"
    assert sorted(e.type for e in events) == ["ExamCodeMapped", "ExamCodeQueued", "ExamItemsResolved",
                                              "ExamOrdered", "ExamOrdered"]
    [resolved] = [e for e in events if e.type == "ExamItemsResolved"]
    assert resolved.payload["order_id"] == "SQ20261128001" and resolved.causation_id == orders[0].event_id
    assert resolved.payload["standard_items"] == ["CT-CHEST-P", "CT-UPPER_ABD-P"] and resolved.key == orders[0].key
    assert [m.local_code for m in mappings.review_queue()] == ["DR0999"]
    for e in events:
        REGISTRY.validate(e)
    # the reviewer maps the queued code: the waiting order is resolved then
    later = mappings.accept("AHSL", "DR0999", items=["DR-KNEE-L-AP_LAT", "DR-KNEE-R-AP_LAT"], actor="reviewer")
    assert [e.type for e in later] == ["ExamCodeMapped", "ExamItemsResolved"]
    assert later[1].payload["order_id"] == "SQ20261128002" and later[1].payload["method"] == "manual"
    publish(event_log, later)
    before = {e.event_id for e in all_events(event_log)}
    # the same message again adds no new facts (same event ids, dropped by idempotent consumers)
    hl7_ingest.handle(raw, "t")
    assert {e.event_id for e in all_events(event_log)} == before


def test_omi_o23_and_cancel(hl7_ingest, event_log):
    hl7_ingest.handle(orm_o01(control="A").replace("ORM^O01^ORM_O01", "OMI^O23^OMI_O23").encode(), "t")
    hl7_ingest.handle(orm_o01(control="B", control_code="CA").encode(), "t")
    assert sorted(e.type for e in all_events(event_log)) == ["ExamCancelled", "ExamCodeMapped", "ExamItemsResolved",
                                                             "ExamOrdered"]
    cancel = next(e for e in all_events(event_log) if e.type == "ExamCancelled")
    assert cancel.payload["order_id"] == "SQ20261128001"


@pytest.mark.parametrize("status, kind", [("F", "ReportFinalized"), ("C", "ReportAmended")])
def test_oru_report(hl7_ingest, event_log, keys, status, kind):
    ack = hl7_ingest.handle(oru_r01(status=status, charset="GB 18030-2000").encode("gb18030"), "t")
    assert b"MSA|AA" in ack
    [event] = all_events(event_log)
    p = event.payload
    assert event.type == kind and p["report_id"] == "RPT20261128001" and p["author_id"] == "R0045"
    assert "磨玻璃结节" in keys.decrypt(p["findings"], context="findings")
    assert "\n纵隔" in keys.decrypt(p["findings"], context="findings")  # \.br\ escape
    assert keys.decrypt(p["impression"], context="impression").startswith("右肺上叶磨玻璃结节")
    assert p["signed_at"].startswith("2026-11-28T11:30:00+08:00")
    if kind == "ReportFinalized":
        assert p["study_uid"] == "1.2.156.112605.20261128.1001" and p["accession_number"] == "ACC20261128001"
    _no_plaintext([event])


def test_z_messages(hl7_ingest, event_log, keys):
    assert b"MSA|AA" in hl7_ingest.handle(zwy(trigger="Z01").encode(), "t")
    assert b"MSA|AA" in hl7_ingest.handle(zwy(control="Z2", trigger="Z02").encode(), "t")
    events = {e.type: e for e in all_events(event_log)}
    assert events["PatientOpened"].payload["person_key"] == keys.person_key(ID_1)
    assert events["DoctorSignedIn"].payload == {"hospital": "AHSL", "doctor_id": "D0231", "department": "呼吸内科",
                                                 "workstation": "WS-3-12"}


@pytest.mark.parametrize("mutate, ack, location, words", [
    (lambda m: m.replace("|AHSL|WANYING", "|NOBODY|WANYING"), "AR", "MSH-4", "not registered"),
    (lambda m: m.replace("ADT^A04^ADT_A01", "ADT^A99"), "AR", "MSH-9", "not accepted"),
    (lambda m: m.replace(ID_1, ID_1[:-1] + ("0" if ID_1[-1] != "0" else "1")), "AE", "PID-3", "check digit"),
    (lambda m: m.replace("MZ20261128001", ""), "AE", "PV1-19", "visit number"),
    (lambda m: m.replace("PV1|1|O|", "PV1|1|Q|"), "AE", "PV1-2", "patient class"),
])
def test_bad_messages_are_nakked_and_kept(hl7_ingest, event_log, dead_letters, mutate, ack, location, words):
    raw = mutate(adt_a04()).encode()
    reply = _ack_fields(hl7_ingest.handle(raw, "peer"))
    assert reply["MSA"][1] == ack and reply["MSA"][2] == "ADT0001" and words in reply["MSA"][3]
    assert reply["ERR"][2].startswith(location.replace("-", "^1^")) and reply["ERR"][4] == "E"
    [letter] = dead_letters.list(channel="hl7")
    assert letter.body == raw and words in letter.reason
    assert all_events(event_log) == []


def test_preliminary_report_and_bad_order_control_are_refused(hl7_ingest, dead_letters):
    assert b"MSA|AR" in hl7_ingest.handle(oru_r01(status="P").encode(), "t")
    assert b"MSA|AE" in hl7_ingest.handle(orm_o01(control_code="XO").encode(), "t")
    assert len(dead_letters.list(channel="hl7")) == 2


def test_dead_letter_replays_after_the_fix(hl7_ingest, dead_letters, event_log):
    raw = adt_a04(facility="NEWHOSP").encode()
    assert b"MSA|AR" in hl7_ingest.handle(raw, "t")
    [letter] = dead_letters.list()
    hl7_ingest.senders.by_facility["NEWHOSP"] = "HFEY"  # the operator registers the facility
    dead_letters.replay(letter.id, hl7_ingest.replay)
    assert dead_letters.list() == [] and [e.source for e in all_events(event_log)] == ["HFEY"]


def test_internal_errors_become_ae_and_a_dead_letter(hl7_ingest, dead_letters, monkeypatch):
    from pipelines.hl7 import ingest as module

    def boom(*_a, **_k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(module, "publish", boom)
    reply = hl7_ingest.handle(adt_a04().encode(), "t")
    assert b"MSA|AE" in reply and b"internal error" in reply
    assert dead_letters.list()[0].reason.startswith("internal error")


def test_parse_keeps_message_bytes_for_ack_charset():
    msg = parse(adt_a04(charset="GB 18030-2000").encode("gb18030"))
    assert msg.declared_charset == "GB 18030-2000"


def test_reused_control_id_with_other_content_is_not_lost(hl7_ingest, event_log):
    hl7_ingest.handle(adt_a04(control="SAME", visit="V1").encode(), "t")
    hl7_ingest.handle(adt_a04(control="SAME", visit="V2").encode(), "t")
    assert len({e.event_id for e in all_events(event_log)}) == 2


def test_ack_names_the_charset_actually_read_when_msh18_was_wrong(hl7_ingest):
    ack = hl7_ingest.handle(adt_a04(charset="UNICODE UTF-8").encode("gbk"), "t")
    assert b"MSA|AA" in ack and ack.split(b"\r")[0].endswith(b"|GB 18030-2000")
