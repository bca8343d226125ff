"""The duplicate check and mutual recognition as pure processors: every rule, window edge, exception and decision."""
from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta

import pytest

from schemas.recognition_rules import default_rules
from streams.processors import DoctorReminders, Recognition, RecognitionStats, Reminders
from tests.doctor.fold import Run
from tests.doctor.stream import (AQ2, CT_CHEST, HF1, HF2, HF3, HF4, NOWHERE, WH1, WH2, DoctorStream, local)

DAY = date(2026, 9, 1)  # rule version 2024.1 is in force: CT/MR/DR 30 days, US 14, MG 90, children 7


def with_chest_ct_rule_from(day: date):
    """The shipped rules plus a version in force from ``day`` that narrows the plain chest CT window to 14 days."""
    rules = default_rules()
    current = rules.versions[-1]
    new = dataclasses.replace(current, version="test-2026.12", effective_from=day, by_item={CT_CHEST: 14},
                              source="test: an item-level rule change")
    return dataclasses.replace(rules, versions=(*rules.versions, new))


def run_of(b: DoctorStream, *, rules=None, feedback: str = "next") -> Run:
    run = Run([Reminders(rules=rules), DoctorReminders(), Recognition(rules=rules), RecognitionStats()],
              feedback=feedback)
    run.feed(b.events)
    return run


def found(run: Run, order_id: str | None = None) -> list[tuple[str, str, str]]:
    """DuplicateFound of the new orders (the builder's earlier exams are orders too, named E<n>)."""
    return sorted((e.payload["order_id"], e.payload["standard_item"], e.payload["candidate_study_uid"])
                  for e in run.of("DuplicateFound") if order_id in (None, e.payload["order_id"])
                  and not e.payload["order_id"].startswith("E"))


def item_row(run: Run, order_id: str, item: str = CT_CHEST) -> dict:
    rows = [r for r in run.rows(Recognition(), "order_items")
            if (r["order_id"], r["standard_item"]) == (order_id, item)]
    assert len(rows) == 1, rows
    return {**rows[0], "candidates": json.loads(rows[0]["candidates"]), "decisions": json.loads(rows[0]["decisions"])}


@pytest.fixture
def b() -> DoctorStream:
    return DoctorStream()


@pytest.fixture
def pk(b) -> str:
    return b.person("34010419850612123")


# ------------------------------------------------------------------ the basic match


def test_same_item_within_window_is_a_duplicate_with_the_rule_version(b, pk):
    uid = b.exam(pk, WH1, DAY, CT_CHEST)
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=10)), CT_CHEST)
    run = run_of(b)
    assert found(run) == [("O1", CT_CHEST, uid)]
    dup = run.of("DuplicateFound")[0]
    assert dup.payload["candidate_hospital"] == WH1 and dup.payload["rule_version"] == "2024.1"
    assert dup.key == pk and dup.causation_id == b.events[-1].event_id
    row = item_row(run, "O1")
    assert (row["status"], row["mark"], row["label"], row["candidate_count"]) == ("candidates", None, None, 1)
    assert row["candidates"][0] | {"days_before": 10} == row["candidates"][0]
    assert row["candidates"][0]["hospital_name"] == "芜湖市第二人民医院"


def test_other_items_and_orders_without_resolved_items_are_not_checked(b, pk):
    b.exam(pk, WH1, DAY, "CT-CHEST-E")  # enhanced, not plain
    b.exam(pk, WH1, DAY, "DR-CHEST-PA")
    b.order_at(pk, HF1, "O0", local(DAY + timedelta(days=2)))  # no ExamItemsResolved: nothing to check
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=2)), CT_CHEST)
    run = run_of(b)
    assert found(run) == []
    assert item_row(run, "O1")["status"] == "no_candidates"
    assert not [r for r in run.rows(Recognition(), "order_items") if r["order_id"] == "O0"]


def test_an_order_split_into_two_items_checks_each(b, pk):
    chest = b.exam(pk, WH1, DAY, CT_CHEST)
    abdomen = b.exam(pk, WH1, DAY, "CT-UPPER_ABD-P")
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=3)), CT_CHEST, "CT-UPPER_ABD-P", "CT-HEAD-P")
    run = run_of(b)
    assert found(run) == sorted([("O1", CT_CHEST, chest), ("O1", "CT-UPPER_ABD-P", abdomen)])
    assert item_row(run, "O1", "CT-HEAD-P")["status"] == "no_candidates"


# ------------------------------------------------------------------ validity windows: day N in, day N+1 out


@pytest.mark.parametrize("item,modality,days", [
    (CT_CHEST, "CT", 30), ("MR-HEAD-P", "MR", 30), ("DR-CHEST-PA", "DR", 30), ("US-ABDOMEN", "US", 14),
    ("MG-BREAST-B-CC_MLO", "MG", 90),
])
def test_window_edges_per_modality_in_shanghai_dates(item, modality, days):
    for offset, hour, expected in [(days, 23, True), (days + 1, 0, False), (0, 12, True)]:
        b = DoctorStream()
        pk = b.person("34010419850612123")
        uid = b.exam(pk, WH1, DAY, item, modality=modality)
        # 23:59 local on day N is 15:59 UTC; 00:01 local on day N+1 is still day N in UTC: local dates decide.
        at = local(DAY + timedelta(days=offset), hour, 59 if hour == 23 else 1)
        b.checked_order(pk, HF1, "O1", at, item)
        assert found(run_of(b)) == ([("O1", item, uid)] if expected else []), (item, offset)


def test_default_rules_windows_are_labelled_defaults():
    rules = default_rules()
    v = rules.at(DAY)
    assert v.version == "2024.1" and "DEFAULT" in v.source
    assert (v.window_days("CT-CHEST-P"), v.window_days("US-ABDOMEN"), v.window_days("DR-KNEE-L-AP_LAT")) == (30, 14, 30)
    assert all(e.source for e in v.exceptions)


def test_a_study_taken_after_the_order_date_is_not_a_candidate(b, pk):
    b.checked_order(pk, HF1, "O1", local(DAY), CT_CHEST)
    later = DoctorStream(keys=b.keys)
    later.exam(pk, WH1, DAY + timedelta(days=1), CT_CHEST)
    # the study is known before the items are resolved again (a mapping change re-emits them)
    b.events += later.events
    b.items(b.events[0], CT_CHEST, at=local(DAY + timedelta(days=2)))
    assert found(run_of(b)) == []


# ------------------------------------------------------------------ rule versions switch on their effective date


def test_rule_version_in_force_on_the_order_date_decides():
    switch = date(2026, 12, 1)
    rules = with_chest_ct_rule_from(switch)
    b = DoctorStream()
    pk = b.person("34010419850612123")
    old = b.exam(pk, WH1, switch - timedelta(days=20), CT_CHEST)
    recent = b.exam(pk, WH2, switch - timedelta(days=10), CT_CHEST)
    b.checked_order(pk, HF1, "BEFORE", local(switch - timedelta(days=1), 23, 59), CT_CHEST)
    b.checked_order(pk, HF1, "AFTER", local(switch, 0, 1), CT_CHEST)
    run = run_of(b, rules=rules)
    assert found(run, "BEFORE") == sorted([("BEFORE", CT_CHEST, old), ("BEFORE", CT_CHEST, recent)])
    assert found(run, "AFTER") == [("AFTER", CT_CHEST, recent)]
    versions = {e.payload["order_id"]: e.payload["rule_version"] for e in run.of("DuplicateFound")
                if e.payload["hospital"] == HF1}
    assert versions == {"BEFORE": "2024.1", "AFTER": "test-2026.12"}
    assert item_row(run, "AFTER")["rule_version"] == "test-2026.12"
    # replaying the same log under the shipped rules re-evaluates: the later order keeps both candidates
    assert len(found(run_of(b), "AFTER")) == 2


def test_no_rule_in_force_means_no_check(b, pk):
    b.exam(pk, WH1, date(2023, 12, 1), CT_CHEST)
    b.checked_order(pk, HF1, "O1", local(date(2023, 12, 5)), CT_CHEST)
    run = run_of(b)
    assert found(run) == [] and run.rows(Recognition(), "order_items") == []


# ------------------------------------------------------------------ hospital level and alliances


@pytest.mark.parametrize("producer,orderer,accepted", [
    (WH1, HF1, True),   # 三甲 -> 三甲: same level
    (WH2, HF1, True),   # 三乙 -> 三甲: same tier
    (HF1, HF3, True),   # 三甲 -> 二甲: upward
    (AQ2, HF1, False),  # 二乙 -> 三甲, no shared alliance: refused
    (HF3, HF2, False),  # 二甲 -> 三甲 outside the alliance
    (HF3, HF1, True),   # 二甲 -> 三甲 inside 合肥一院医联体: any level
    (HF4, HF1, True),   # 一级 -> 三甲 inside the alliance
    (NOWHERE, HF1, False),  # producer missing from the directory: level cannot be checked
    (HF2, HF2, True),   # the same hospital
])
def test_hospital_level_rule(producer, orderer, accepted):
    b = DoctorStream()
    pk = b.person("34010419850612123")
    uid = b.exam(pk, producer, DAY, CT_CHEST)
    b.checked_order(pk, orderer, "O1", local(DAY + timedelta(days=5)), CT_CHEST)
    assert found(run_of(b)) == ([("O1", CT_CHEST, uid)] if accepted else [])


def test_alliance_rule_can_be_switched_off():
    rules = default_rules()
    strict = dataclasses.replace(rules, versions=tuple(dataclasses.replace(v, alliance_any_level=False)
                                                        for v in rules.versions))
    b = DoctorStream()
    pk = b.person("34010419850612123")
    b.exam(pk, HF3, DAY, CT_CHEST)
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=5)), CT_CHEST)
    assert found(run_of(b, rules=strict)) == []
    assert len(found(run_of(b))) == 1


# ------------------------------------------------------------------ QC grade and report status


@pytest.mark.parametrize("grades,accepted", [
    (("甲",), True), (("乙",), True), (("丙",), False), (("废片",), False),
    (("甲", "丙"), False),  # the worst series decides
    ((), True),  # not scored yet: accepted under the labelled default
])
def test_qc_grade_needed(grades, accepted):
    b = DoctorStream()
    pk = b.person("34010419850612123")
    uid = b.exam(pk, WH1, DAY, CT_CHEST, qc=grades)
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=5)), CT_CHEST)
    run = run_of(b)
    assert found(run) == ([("O1", CT_CHEST, uid)] if accepted else [])
    if accepted and grades:
        assert item_row(run, "O1")["candidates"][0]["qc_grade"] == max(grades, key="甲乙丙".find)


def test_unscored_studies_refused_when_the_rules_say_so():
    rules = default_rules()
    strict = dataclasses.replace(rules, versions=tuple(dataclasses.replace(v, unscored_accepted=False)
                                                        for v in rules.versions))
    b = DoctorStream()
    pk = b.person("34010419850612123")
    b.exam(pk, WH1, DAY, CT_CHEST)
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=5)), CT_CHEST)
    assert found(run_of(b, rules=strict)) == []


@pytest.mark.parametrize("report,accepted", [("none", False), ("final", True), ("amended", True)])
def test_report_must_be_final_and_amended_counts(report, accepted):
    b = DoctorStream()
    pk = b.person("34010419850612123")
    uid = b.exam(pk, WH1, DAY, CT_CHEST, report=report)
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=5)), CT_CHEST)
    run = run_of(b)
    assert found(run) == ([("O1", CT_CHEST, uid)] if accepted else [])
    if accepted:
        assert item_row(run, "O1")["candidates"][0]["report_status"] == report


# ------------------------------------------------------------------ cancelled orders


def test_a_cancelled_earlier_order_is_never_a_candidate(b, pk):
    b.exam(pk, WH1, DAY, CT_CHEST, cancel=True)
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=2)), CT_CHEST)
    assert found(run_of(b)) == []


def test_a_cancelled_new_order_shows_cancelled_and_is_not_checked_again(b, pk):
    from schemas import events as ev

    uid = b.exam(pk, WH1, DAY, CT_CHEST)
    order = b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=2)), CT_CHEST)
    b._at(ev.ExamCancelled(hospital=HF1, order_id="O1", person_key=pk), pk, local(DAY + timedelta(days=2), 11))
    b.items(order, CT_CHEST, "CT-HEAD-P", at=local(DAY + timedelta(days=2), 12))  # mapping changed afterwards
    run = run_of(b)
    assert found(run) == [("O1", CT_CHEST, uid)]
    assert item_row(run, "O1")["status"] == "cancelled"


# ------------------------------------------------------------------ exceptions


def test_emergency_orders_are_not_held_back(b, pk):
    b.exam(pk, WH1, DAY, CT_CHEST)
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=2)), CT_CHEST, patient_class="emergency")
    run = run_of(b)
    assert found(run) == []
    row = item_row(run, "O1")
    assert (row["status"], row["exception"]) == ("skipped", "emergency")


def test_children_get_the_shorter_window(b, pk):
    b.visit_born(pk, HF1, "V1", birth_year=2021, at=local(DAY - timedelta(days=30)))
    uid = b.exam(pk, WH1, DAY, CT_CHEST)
    b.checked_order(pk, HF1, "DAY7", local(DAY + timedelta(days=7), 23), CT_CHEST)
    b.checked_order(pk, HF1, "DAY8", local(DAY + timedelta(days=8), 0, 30), CT_CHEST)
    run = run_of(b)
    assert found(run) == [("DAY7", CT_CHEST, uid)]


# ------------------------------------------------------------------ the same exam ordered twice at once


def test_two_orders_of_the_same_item_at_the_same_moment_each_get_their_candidates(b, pk):
    first = b.exam(pk, WH1, DAY, CT_CHEST)
    second = b.exam(pk, HF2, DAY + timedelta(days=3), CT_CHEST)
    at = local(DAY + timedelta(days=6))
    o1 = b.order_at(pk, HF1, "O1", at)
    o2 = b.order_at(pk, HF1, "O2", at)
    b.items(o1, CT_CHEST)
    b.items(o2, CT_CHEST)
    run = run_of(b)
    expected = [(o, CT_CHEST, s) for o in ("O1", "O2") for s in sorted((first, second))]
    assert found(run) == sorted(expected)  # neither pending order is a candidate for the other
    assert len({e.event_id for e in run.of("DuplicateFound") if e.payload["order_id"] in ("O1", "O2")}) == 4
    for order_id in ("O1", "O2"):
        assert item_row(run, order_id)["candidate_count"] == 2
    stats, _ = run.statistics(hospital=HF1)
    assert [(s["duplicates_found"], s["candidates"]) for s in stats] == [(2, 4)]


def test_items_resolved_again_adds_no_duplicate_for_known_candidates(b, pk):
    uid = b.exam(pk, WH1, DAY, CT_CHEST)
    order = b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=2)), CT_CHEST)
    b.items(order, CT_CHEST, at=local(DAY + timedelta(days=2), 11))
    run = run_of(b)
    assert found(run) == [("O1", CT_CHEST, uid)]
    assert item_row(run, "O1")["candidate_count"] == 1


# ------------------------------------------------------------------ a patient with no ID number, later linked


@pytest.mark.parametrize("report_after_link", [False, True])
def test_exams_under_a_hospital_key_count_once_linked(b, report_after_link):
    from schemas import events as ev

    national = b.person("34010219900101002")
    scoped = b.local_person(WH1, "MRN-77")
    uid = b.exam(scoped, WH1, DAY, CT_CHEST, report="none")
    report_at = local(DAY, 18)
    link_at = local(DAY + timedelta(days=1))
    if report_after_link:
        b._at(ev.PatientLinked(person_key=national, linked_key=scoped, hospital=WH1, method="id_number"),
              national, link_at)
        b.clock = report_at + timedelta(days=1)
        b.report(scoped, WH1, "RL", study_uid=uid)
    else:
        b.clock = report_at
        b.report(scoped, WH1, "RL", study_uid=uid)
        b._at(ev.PatientLinked(person_key=national, linked_key=scoped, hospital=WH1, method="id_number"),
              national, link_at)
    b.opened_at(national, HF1, local(DAY + timedelta(days=4), 9))
    b.checked_order(national, HF1, "O1", local(DAY + timedelta(days=4)), CT_CHEST)
    run = run_of(b)
    assert found(run) == [("O1", CT_CHEST, uid)]
    [handover] = run.of("HospitalKeyLinked")
    assert (handover.key, handover.payload["person_key"]) == (scoped, national)
    merged = run.of("PersonHistoryMerged")
    assert merged and all(m.key == national and m.payload["linked_key"] == scoped for m in merged)
    assert len(merged) == (2 if report_after_link else 1)  # the late report is handed over on its own
    assert [r.payload["study_uids"] for r in run.of("ReminderRaised")] == [[uid]]


def test_linked_exams_arriving_after_the_order_is_checked_are_found_too(b):
    """All in one batch: the handed-over exams reach the national key after its order was checked."""
    from schemas import events as ev

    national = b.person("34010219900101002")
    scoped = b.local_person(WH1, "MRN-77")
    uid = b.exam(scoped, WH1, DAY, CT_CHEST)
    b._at(ev.PatientLinked(person_key=national, linked_key=scoped, hospital=WH1, method="id_number"),
          national, local(DAY + timedelta(days=1)))
    b.checked_order(national, HF1, "O1", local(DAY + timedelta(days=4)), CT_CHEST)
    run = run_of(b, feedback="end")
    assert found(run) == [("O1", CT_CHEST, uid)]
    [dup] = [e for e in run.of("DuplicateFound") if e.payload["order_id"] == "O1"]
    assert dup.causation_id == run.of("PersonHistoryMerged")[0].event_id
    assert dup.correlation_id == b.events[-3].event_id  # the PatientLinked that started the handover


def test_a_report_signed_after_the_order_was_checked_makes_a_candidate(b, pk):
    uid = b.exam(pk, WH1, DAY, CT_CHEST, report="none")
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=1)), CT_CHEST)
    run = run_of(b)
    assert found(run) == []
    b.clock = local(DAY + timedelta(days=1), 11)
    b.report(pk, WH1, "LATE", study_uid=uid)
    assert found(run_of(b)) == [("O1", CT_CHEST, uid)]


def test_before_the_link_the_national_key_knows_nothing(b):
    national = b.person("34010219900101002")
    scoped = b.local_person(WH1, "MRN-77")
    b.exam(scoped, WH1, DAY, CT_CHEST)
    b.checked_order(national, HF1, "O1", local(DAY + timedelta(days=4)), CT_CHEST)
    assert found(run_of(b)) == []


# ------------------------------------------------------------------ decisions


def test_accepting_marks_the_item_hr_and_declining_records_the_reason(b, pk):
    a = b.exam(pk, WH1, DAY, CT_CHEST)
    c = b.exam(pk, WH2, DAY + timedelta(days=1), CT_CHEST)
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=5)), CT_CHEST)
    b.decision(pk, HF1, "O1", CT_CHEST, a, "declined", "image_quality")
    run = run_of(b)
    row = item_row(run, "O1")
    assert row["status"] == "candidates" and row["mark"] is None  # one candidate still open
    b.decision(pk, HF1, "O1", CT_CHEST, c, "accepted")
    run = run_of(b)
    row = item_row(run, "O1")
    assert (row["status"], row["mark"], row["label"]) == ("accepted", "HR", "已互认")
    assert [(d["decision"], d["reason_code"], d["doctor_id"]) for d in row["decisions"]] == [
        ("declined", "image_quality", "D1"), ("accepted", None, "D1")]
    assert {c_["study_uid"]: c_["decision"] for c_ in row["candidates"]} == {a: "declined", c: "accepted"}


def test_declining_every_candidate_declines_the_item(b, pk):
    a = b.exam(pk, WH1, DAY, CT_CHEST)
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=5)), CT_CHEST)
    b.decision(pk, HF1, "O1", CT_CHEST, a, "declined", "other", "患者要求复查")
    row = item_row(run_of(b), "O1")
    sealed = row["decisions"][0]["reason_text"]
    assert (row["status"], row["mark"]) == ("declined", None)
    assert "患者" not in sealed and b.keys.decrypt(sealed, context="reason_text") == "患者要求复查"


@pytest.mark.parametrize("code", list(default_rules().reasons))
def test_every_reason_code_is_valid_when_declining(code):
    rules = default_rules()
    text = "说明" if rules.reasons[code].needs_text else None
    assert rules.decision_problem("declined", code, text) is None
    assert rules.reasons[code].list in ("national", "local")


@pytest.mark.parametrize("decision,code,text,expected", [
    ("declined", None, None, "needs a reason_code"),
    ("declined", "bored", None, "unknown reason_code 'bored'"),
    ("declined", "other", None, "needs reason_text"),
    ("declined", "other", "  ", "needs reason_text"),
    ("accepted", "other", None, "takes no reason code"),
    ("maybe", None, None, "must be 'accepted' or 'declined'"),
])
def test_invalid_decisions_are_explained(decision, code, text, expected):
    assert expected in default_rules().decision_problem(decision, code, text)


def test_national_and_local_reason_lists_are_complete():
    reasons = default_rules().reasons
    national = {c for c, r in reasons.items() if r.list == "national"}
    local_ = {c for c, r in reasons.items() if r.list == "local"}
    assert national == {"disease_change", "fast_changing", "critical_decision", "emergency", "judicial_appraisal",
                        "other"}
    assert local_ == {"wrong_body_part", "outside_window", "image_quality"}
    assert [c for c, r in reasons.items() if r.needs_text] == ["other"]


# ------------------------------------------------------------------ statistics


def test_statistics_per_hospital_item_and_month(b):
    people = [b.person(f"3401041985061{n:04d}") for n in range(4)]
    uids = [b.exam(p, WH1, DAY, CT_CHEST) for p in people]
    for n, p in enumerate(people):
        b.checked_order(p, HF1, f"O{n}", local(DAY + timedelta(days=4)), CT_CHEST)
    b.decision(people[0], HF1, "O0", CT_CHEST, uids[0], "accepted")
    b.decision(people[1], HF1, "O1", CT_CHEST, uids[1], "declined", "disease_change")
    b.decision(people[2], HF1, "O2", CT_CHEST, uids[2], "declined", "disease_change")
    b.decision(people[2], HF1, "O2", CT_CHEST, uids[2], "accepted")  # changed their mind: the last answer counts
    run = run_of(b)
    [stats], refusals = run.statistics(hospital=HF1)
    assert (stats["month"], stats["duplicates_found"], stats["decided"], stats["accepted"], stats["declined"]) == (
        "2026-09", 4, 3, 2, 1)
    assert stats["recognition_rate"] == round(2 / 3, 4)
    assert [(r["reason_code"], r["count"]) for r in refusals] == [("disease_change", 1)]


# ------------------------------------------------------------------ determinism


def test_decided_events_are_deterministic(b, pk):
    b.exam(pk, WH1, DAY, CT_CHEST)
    b.opened_at(pk, HF1, local(DAY + timedelta(days=2), 9))
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=2)), CT_CHEST)
    first, second = run_of(b), run_of(b)
    ids = [e.event_id for e in first.decided]
    assert ids and ids == [e.event_id for e in second.decided]
    assert [e.model_dump(exclude={"recorded_at"}) for e in first.decided] == [
        e.model_dump(exclude={"recorded_at"}) for e in second.decided]
    # deciding again on the same state and event (a redelivery) gives the same ids
    rec = Recognition()
    before = Run([Reminders(), Recognition()])
    before.feed(b.events[:-1])
    state = before.state(rec, pk)
    once, twice = rec.decide(json.loads(json.dumps(state)), b.events[-1]), rec.decide(state, b.events[-1])
    assert once and [e.event_id for e in once] == [e.event_id for e in twice]
    assert {e.event_id for e in once} <= set(ids)
    replay = first.feed(list(first.log))  # replaying the log appends nothing new
    assert replay == []


@pytest.mark.parametrize("offset,expected", [(14, True), (15, False)])
def test_an_item_level_window_has_the_same_edges(offset, expected):
    """An item's own window (14 days here) wins over its modality's, with the same edges."""
    day = date(2026, 12, 20)
    rules = with_chest_ct_rule_from(date(2026, 12, 1))
    b = DoctorStream()
    pk = b.person("34010419850612123")
    uid = b.exam(pk, WH1, day - timedelta(days=offset), CT_CHEST)
    b.checked_order(pk, HF1, "O1", local(day, 23, 59), CT_CHEST)
    assert found(run_of(b, rules=rules)) == ([("O1", CT_CHEST, uid)] if expected else [])
    assert rules.at(day).window_days("CT-CHEST-E") == 30
