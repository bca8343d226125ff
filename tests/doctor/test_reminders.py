"""History reminders as pure processors: who is reminded of what, once, and what the list says."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from schemas import events as ev
from streams.processors import DoctorReminders, Recognition, Reminders
from tests.doctor.fold import Run
from tests.doctor.stream import AQ2, CT_CHEST, HF1, WH1, WH2, DoctorStream, local

DAY = date(2026, 9, 1)


def run_of(b: DoctorStream) -> Run:
    run = Run([Reminders(), DoctorReminders(), Recognition()])
    run.feed(b.events)
    return run


@pytest.fixture
def b() -> DoctorStream:
    return DoctorStream()


@pytest.fixture
def pk(b) -> str:
    return b.person("34010419850612123")


def test_opening_a_patient_reminds_of_exams_at_other_hospitals_only(b, pk):
    newer = b.exam(pk, WH1, DAY + timedelta(days=3), CT_CHEST)
    older = b.exam(pk, WH2, DAY, "DR-CHEST-PA", modality="DR")
    b.exam(pk, HF1, DAY, CT_CHEST)  # the doctor's own hospital: already in its HIS
    b.exam(pk, WH1, DAY, CT_CHEST, cancel=True)  # never performed
    opened = b.opened_at(pk, HF1, local(DAY + timedelta(days=5)), doctor="D7")
    run = run_of(b)
    [reminder] = run.of("ReminderRaised")
    p = reminder.payload
    assert (p["hospital"], p["doctor_id"], p["trigger"], p["exam_count"]) == (HF1, "D7", "patient_opened", 2)
    assert p["study_uids"] == [newer, older]  # newest first
    assert reminder.key == pk and reminder.causation_id == opened.event_id


def test_no_history_elsewhere_no_reminder(b, pk):
    b.exam(pk, HF1, DAY, CT_CHEST)
    b.opened_at(pk, HF1, local(DAY + timedelta(days=5)))
    assert run_of(b).of("ReminderRaised") == []


def test_a_visit_with_a_doctor_reminds_and_the_following_open_does_not_repeat_it(b, pk):
    b.exam(pk, WH1, DAY, CT_CHEST)
    b.visit_born(pk, HF1, "V1", birth_year=1985, at=local(DAY + timedelta(days=5), 9), doctor="D7")
    b.opened_at(pk, HF1, local(DAY + timedelta(days=5), 9, 2), doctor="D7")
    b.opened_at(pk, HF1, local(DAY + timedelta(days=5), 9, 5), doctor="D8")  # another doctor: reminded
    b.opened_at(pk, HF1, local(DAY + timedelta(days=5), 11), doctor="D7")  # later the same day: reminded again
    run = run_of(b)
    assert [(r.payload["trigger"], r.payload["doctor_id"]) for r in run.of("ReminderRaised")] == [
        ("visit_started", "D7"), ("patient_opened", "D8"), ("patient_opened", "D7")]


def test_a_new_exam_elsewhere_is_reminded_at_once(b, pk):
    b.exam(pk, WH1, DAY, CT_CHEST)
    b.opened_at(pk, HF1, local(DAY + timedelta(days=5), 9))
    uid = b.exam(pk, WH2, DAY + timedelta(days=5), "DR-CHEST-PA", modality="DR")
    b.opened_at(pk, HF1, local(DAY + timedelta(days=5), 9, 30))  # within the quiet hour, but something is new
    reminders = run_of(b).of("ReminderRaised")
    assert [r.payload["exam_count"] for r in reminders] == [1, 2] and reminders[1].payload["study_uids"][0] == uid


def test_the_list_says_what_is_recognisable_at_the_doctors_hospital(b, pk):
    good = b.exam(pk, WH1, DAY, CT_CHEST, qc=("乙",))
    low_level = b.exam(pk, AQ2, DAY, CT_CHEST)  # 二级乙等, other alliance
    poor = b.exam(pk, WH2, DAY, "DR-CHEST-PA", modality="DR", qc=("丙",))
    pending = b.exam(pk, WH1, DAY + timedelta(days=1), "MR-HEAD-P", modality="MR", report="none")
    amended = b.exam(pk, WH2, DAY - timedelta(days=40), CT_CHEST, report="amended")
    b.opened_at(pk, HF1, local(DAY + timedelta(days=2)))
    run = run_of(b)
    rows = {r["study_uid"]: r for r in run.rows(Reminders(), "reminder_exams")}
    assert rows[good]["recognizable"] and rows[good]["why_not"] is None and rows[good]["qc_grade"] == "乙"
    assert rows[good]["hospital_name"] == "芜湖市第二人民医院"
    assert json.loads(rows[good]["standard_items"]) == [CT_CHEST]
    assert (rows[low_level]["recognizable"], rows[low_level]["why_not"]) == (False, "hospital_level")
    assert (rows[poor]["recognizable"], rows[poor]["why_not"]) == (False, "qc_grade")
    assert (rows[pending]["recognizable"], rows[pending]["why_not"]) == (False, "report_not_final")
    assert (rows[amended]["recognizable"], rows[amended]["why_not"], rows[amended]["report_status"]) == (
        False, "outside_window", "amended")
    [reminder] = run.of("ReminderRaised")
    assert {r["reminder_id"] for r in rows.values()} == {str(reminder.event_id)}
    assert [r["position"] for r in run.rows(Reminders(), "reminder_exams")] == list(range(5))


def test_doctor_view_has_a_row_per_reminder_in_time_order(b):
    people = [b.person(f"3401041985061{n:04d}") for n in range(53)]
    for n, p in enumerate(people):
        b.exam(p, WH1, DAY, CT_CHEST)
        b.opened_at(p, HF1, local(DAY + timedelta(days=1), 8) + timedelta(minutes=n), doctor="D7")
    b.opened_at(people[0], WH2, local(DAY + timedelta(days=2)), doctor="D7")  # same id at another hospital
    run = run_of(b)
    rows = run.rows(DoctorReminders(), "doctor_reminders")
    mine = sorted((r for r in rows if (r["hospital"], r["doctor_id"]) == (HF1, "D7")), key=lambda r: r["raised_at"])
    assert [r["person_key"] for r in mine] == people
    assert len({r["reminder_id"] for r in mine}) == len(people) and all(r["exam_count"] == 1 for r in mine)
    assert [r["person_key"] for r in rows if r["hospital"] == WH2] == [people[0]]


def test_a_linked_patient_is_reminded_of_what_was_recorded_under_the_hospital_key(b):
    national = b.person("34010219900101002")
    scoped = b.local_person(WH1, "MRN-77")
    uid = b.exam(scoped, WH1, DAY, CT_CHEST)
    b.opened_at(national, HF1, local(DAY + timedelta(days=1)))  # before the link: nothing known
    b._at(ev.PatientLinked(person_key=national, linked_key=scoped, hospital=WH1, method="manual"),
          national, local(DAY + timedelta(days=2)))
    b.opened_at(national, HF1, local(DAY + timedelta(days=3)))
    run = run_of(b)
    assert [r.payload["study_uids"] for r in run.of("ReminderRaised")] == [[uid]]
    state = run.state(Reminders(), national)
    assert state["links"] == {scoped: WH1}
    assert run.state(Reminders(), scoped)["merged_into"] == national
