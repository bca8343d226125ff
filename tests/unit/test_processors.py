"""ExamHistory and HospitalDailyCounts as pure functions: no database, no log."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from streams.processors import ExamHistory, HospitalDailyCounts
from streams.processors.base import Processor
from tests.unit.exam_stream import CST, HF, WH, StreamBuilder, realistic_stream


def fold(proc: Processor, events, *, via_json: bool = False) -> dict:
    """Apply events the way a runtime does: per state key, in order; optionally storing state as JSON between."""
    states: dict = {}
    for e in events:
        if e.type not in proc.handles or (key := proc.state_key(e)) is None:
            continue
        state = states[key] if key in states else proc.initial()
        assert proc.decide(state, e) == []
        states[key] = proc.evolve(state, e)
        if via_json:
            states[key] = json.loads(json.dumps(states[key]))
    return states


def exams(states: dict, pk: str) -> dict[str, dict]:
    return {row["exam_id"]: row for row in ExamHistory().rows(pk, states[pk])["exam_history"]}


def test_order_study_report_join_by_accession_into_one_exam():
    b = StreamBuilder()
    pk = b.person("11010519491231002")
    b.order(pk, HF, "O1", accession="ACC1")
    b.received(pk, HF, "1.2.3", accession="ACC1")
    b.completed(pk, HF, "1.2.3", accession="ACC1", series=2, per_series=40)
    report = b.report(pk, HF, "R1", accession="ACC1")
    rows = exams(fold(ExamHistory(), b.events), pk)
    assert list(rows) == [f"{HF}:O1"]
    exam = rows[f"{HF}:O1"]
    assert (exam["order_id"], exam["accession_number"], exam["study_uid"]) == ("O1", "ACC1", "1.2.3")
    assert (exam["status"], exam["report_status"], exam["report_id"]) == ("reported", "final", "R1")
    assert (exam["instance_count"], exam["series_count"], exam["modality"]) == (80, 2, "CT")
    assert exam["reported_at"] == report.payload["signed_at"]
    assert exam["last_event_at"] == report.occurred_at.isoformat()


def test_study_and_report_join_by_order_id_and_study_uid():
    b = StreamBuilder()
    pk = b.person("11010519491231002")
    b.order(pk, HF, "O1")
    b.completed(pk, HF, "1.2.3", order_id="O1")
    b.report(pk, HF, "R1", study_uid="1.2.3")
    rows = exams(fold(ExamHistory(), b.events), pk)
    assert list(rows) == [f"{HF}:O1"]
    assert rows[f"{HF}:O1"]["status"] == "reported"


def test_same_identifiers_at_another_hospital_are_another_exam():
    b = StreamBuilder()
    pk = b.person("11010519491231002")
    b.order(pk, HF, "O1", accession="ACC1")
    b.order(pk, WH, "O1", accession="ACC1")
    b.received(pk, WH, "1.2.9", accession="ACC1")
    rows = exams(fold(ExamHistory(), b.events), pk)
    assert {k: v["status"] for k, v in rows.items()} == {f"{HF}:O1": "ordered", f"{WH}:O1": "imaging"}


def test_study_without_order_is_an_exam_of_its_own():
    b = StreamBuilder()
    pk = b.person("11010519491231002")
    b.received(pk, WH, "1.2.9", modality="MR")
    rows = exams(fold(ExamHistory(), b.events), pk)
    assert list(rows) == [f"{WH}:1.2.9"]
    assert (rows[f"{WH}:1.2.9"]["status"], rows[f"{WH}:1.2.9"]["modality"]) == ("imaging", "MR")


def test_cancellation_applies_to_an_open_order_only():
    b = StreamBuilder()
    pk = b.person("11010519491231002")
    b.order(pk, HF, "O1")
    b.cancel(pk, HF, "O1")
    b.order(pk, HF, "O2", accession="ACC2")
    b.received(pk, HF, "1.2.2", accession="ACC2")
    b.cancel(pk, HF, "O2")  # too late: the images exist
    rows = exams(fold(ExamHistory(), b.events), pk)
    assert rows[f"{HF}:O1"]["status"] == "cancelled"
    assert rows[f"{HF}:O2"]["status"] == "imaging"


def test_study_for_a_cancelled_order_revives_it():
    b = StreamBuilder()
    pk = b.person("11010519491231002")
    b.order(pk, HF, "O1", accession="A1")
    b.cancel(pk, HF, "O1")
    b.received(pk, HF, "1.2.1", accession="A1")
    assert exams(fold(ExamHistory(), b.events), pk)[f"{HF}:O1"]["status"] == "imaging"


def test_amendment_finds_the_report_by_its_id():
    b = StreamBuilder()
    pk = b.person("11010519491231002")
    b.received(pk, HF, "1.2.3")
    b.report(pk, HF, "R1", study_uid="1.2.3")
    amend = b.amend(pk, HF, "R1")
    rows = exams(fold(ExamHistory(), b.events), pk)
    assert list(rows) == [f"{HF}:1.2.3"]
    assert rows[f"{HF}:1.2.3"]["report_status"] == "amended"
    assert rows[f"{HF}:1.2.3"]["reported_at"] == amend.payload["signed_at"]


def test_report_before_the_last_images_stays_reported():
    b = StreamBuilder()
    pk = b.person("11010519491231002")
    b.received(pk, HF, "1.2.3", accession="A1")
    b.report(pk, HF, "R1", study_uid="1.2.3")
    b.completed(pk, HF, "1.2.3", accession="A1", series=3, per_series=5)
    exam = exams(fold(ExamHistory(), b.events), pk)[f"{HF}:1.2.3"]
    assert (exam["status"], exam["report_status"], exam["instance_count"]) == ("reported", "final", 15)


def test_patient_linked_lists_the_hospital_scoped_key():
    b = StreamBuilder()
    pk, local = b.person("11010519491231002"), b.local_person(HF, "MRN-1")
    b.order(local, HF, "O1")
    b.link(pk, local, HF)
    states = fold(ExamHistory(), b.events)
    rows = ExamHistory().rows(pk, states[pk])
    assert rows["person_links"] == [{"person_key": pk, "linked_key": local, "hospital": HF, "method": "id_number"}]
    assert rows["exam_history"] == []
    assert list(exams(states, local)) == [f"{HF}:O1"]


def test_state_survives_json_storage_between_events():
    b = StreamBuilder()
    realistic_stream(b)
    for proc in (ExamHistory(), HospitalDailyCounts()):
        assert fold(proc, b.events, via_json=True) == fold(proc, b.events)


def test_history_key_values_select_one_person():
    assert ExamHistory().key_values("abc") == {"person_key": "abc"}


def test_daily_counts_use_the_local_day_in_shanghai():
    b = StreamBuilder(start=datetime(2026, 11, 27, 23, 50, tzinfo=CST))
    pk = b.person("11010519491231002")
    b.order(pk, HF, "O1")  # 23:55 local
    second = b.order(pk, HF, "O2")  # 00:00 local on the 28th, 16:00 UTC on the 27th
    b.order(pk, WH, "O3")
    b.cancel(pk, HF, "O2")
    proc = HospitalDailyCounts()
    as_utc = second.model_copy(update={"occurred_at": second.occurred_at.astimezone(timezone.utc)})
    assert as_utc.occurred_at.date().day == 27
    assert proc.state_key(as_utc) == f"{HF}|2026-11-28"
    states = fold(proc, b.events)
    assert states == {
        f"{HF}|2026-11-27": {"ExamOrdered": 1},
        f"{HF}|2026-11-28": {"ExamOrdered": 1, "ExamCancelled": 1},
        f"{WH}|2026-11-28": {"ExamOrdered": 1},
    }
    assert proc.rows(f"{HF}|2026-11-28", states[f"{HF}|2026-11-28"]) == {"hospital_daily_counts": [
        {"hospital": HF, "day": "2026-11-28", "event_type": "ExamCancelled", "count": 1},
        {"hospital": HF, "day": "2026-11-28", "event_type": "ExamOrdered", "count": 1},
    ]}
    assert proc.key_values(f"{HF}|2026-11-28") == {"hospital": HF, "day": "2026-11-28"}


def test_daily_counts_ignore_events_without_a_hospital_and_uncounted_types():
    b = StreamBuilder()
    pk, local = b.person("11010519491231002"), b.local_person(HF, "MRN-1")
    link = b.link(pk, local, HF)
    proc = HospitalDailyCounts()
    assert link.type not in proc.handles
    ownerless = link.model_copy(update={"type": "ExamOrdered", "payload": {"order_id": "x"}})
    assert proc.state_key(ownerless) is None
