"""The doctor-side views on PostgreSQL hold exactly what they hold on SQLite."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from schemas import events as ev
from streams.topics import publish
from tests.doctor.stream import CT_CHEST, HF1, WH1, WH2, DoctorStream, local
from wanying.settings import Settings
from wanying.wiring import Platform

DOCTOR_VIEWS = ("order_items", "reminder_exams", "doctor_reminders", "recognition_outcomes", "recognition_outcome_reasons")


def _story(b: DoctorStream) -> None:
    day = date(2026, 9, 1)
    pk = b.person("34010419850612123")
    a = b.exam(pk, WH1, day, CT_CHEST, qc=("乙",))
    c = b.exam(pk, WH2, day + timedelta(days=2), CT_CHEST, report="amended")
    b.opened_at(pk, HF1, local(day + timedelta(days=4), 9))
    b.checked_order(pk, HF1, "O1", local(day + timedelta(days=4)), CT_CHEST)
    b.decision(pk, HF1, "O1", CT_CHEST, a, "declined", "wrong_body_part")
    b.decision(pk, HF1, "O1", CT_CHEST, c, "accepted")
    national = b.person("34010219900101002")
    scoped = b.local_person(WH1, "MRN-77")
    b.exam(scoped, WH1, day, CT_CHEST)
    b._at(ev.PatientLinked(person_key=national, linked_key=scoped, hospital=WH1, method="id_number"),
          national, local(day + timedelta(days=1)))
    b.checked_order(national, HF1, "O2", local(day + timedelta(days=3)), CT_CHEST)
    b.decision(national, HF1, "O2", CT_CHEST, "1.2.826.0.1.3", "declined", "other", "术前需要最新影像")


def _views(tmp_path, name: str, events, **settings) -> dict:
    platform = Platform(Settings(data_dir=tmp_path / name, log_fsync="off", **settings))
    try:
        publish(platform.log, events)
        platform.runner().run_until_caught_up()
        dump = platform.projector.dump()
        return {t: dump[t] for t in DOCTOR_VIEWS}
    finally:
        platform.close()


@pytest.mark.postgres
def test_doctor_views_match_on_sqlite_and_postgresql(tmp_path, postgres_url):
    b = DoctorStream()
    _story(b)
    sqlite = _views(tmp_path, "lite", b.events)
    assert all(sqlite.values()), {t: len(rows) for t, rows in sqlite.items()}
    assert _views(tmp_path, "pg", b.events, views_url=postgres_url) == sqlite
