"""The doctor side through the embedded runtime on the demo world (scale 0.2): the multi-hospital chest-CT patient
is reminded of the other hospitals' exams and their chest CTs are found as duplicates; a rebuild replays the same
decisions without adding a single event to the log."""
from __future__ import annotations

import json
import pytest
import sqlalchemy as sa

from pipelines.exam_items import from_resolver, items_resolved
from pipelines.mapping.catalog import default_catalog
from pipelines.mapping.resolve import ItemResolver
from streams.processors.recognition import order_items, recognition_outcomes, recognition_statistics
from streams.processors.reminders import doctor_reminders, reminder_exams
from wanying.demo.load import append_events, write_files
from wanying.demo.timeline import world_events
from wanying.demo.world import build_world
from wanying.settings import Settings
from wanying.wiring import Platform

SEED, SCALE = 20261128, 0.2


def _with_items(envelopes, lookup):
    """What the HIS intake does: the items of each order right after it."""
    out = []
    for e in envelopes:
        out.append(e)
        if (resolved := items_resolved(e, lookup)) is not None:
            out.append(resolved)
    return out


def _by_hour(envelopes):
    hours: dict[str, list] = {}
    for e in envelopes:
        hours.setdefault(e.occurred_at.astimezone().strftime("%Y%m%d%H"), []).append(e)
    return [hours[h] for h in sorted(hours)]


def _events(platform, type_=None):
    return [r.envelope() for p in range(platform.log.partitions("person"))
            for r in platform.log.read("person", p, 0, 100_000) if type_ is None or r.envelope().type == type_]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("doctor-demo")
    platform = Platform(Settings(data_dir=data, log_fsync="off"))
    world = build_world(SEED, SCALE)
    stored = write_files(world, data / "demo")
    envelopes = _with_items(world_events(world, platform.keys, {s.study_uid: s for s in stored}),
                            from_resolver(ItemResolver(default_catalog())))
    runner = platform.runner()
    for hour in _by_hour(envelopes):  # as the HIS sends them: the runtime keeps up hour by hour
        append_events(platform.log, hour)
        runner.run_until_caught_up()
    yield platform, world
    platform.close()


def test_the_repeat_patient_is_reminded_and_gets_duplicates(demo):
    platform, world = demo
    patient = world.patient(world.repeat_patient)
    key = platform.keys.person_key(patient.id_number)
    chest = [(v, o) for v, o in world.orders() if v.patient_key == patient.key and o.item_key == "CT_CHEST"]
    assert len({v.hospital for v, _ in chest}) == 3
    reminders = [e for e in _events(platform, "ReminderRaised") if e.key == key]
    assert [r.payload["exam_count"] for r in reminders] == [1, 2]  # the 2nd and 3rd hospital
    dups = [e for e in _events(platform, "DuplicateFound") if e.key == key]
    later = {o.order_id for _, o in chest[1:]}
    assert {d.payload["order_id"] for d in dups} == later
    assert {d.payload["standard_item"] for d in dups} == {"CT-CHEST-P"}
    with platform.views_engine.connect() as conn:
        rows = conn.execute(sa.select(order_items).where(order_items.c.person_key == key)).mappings().all()
        listed = conn.execute(sa.select(reminder_exams).where(reminder_exams.c.person_key == key)).mappings().all()
        visit = next(v for v, o in chest if o.order_id == chest[2][1].order_id)
        mine = conn.execute(sa.select(doctor_reminders).where(
            doctor_reminders.c.hospital == visit.hospital, doctor_reminders.c.doctor_id == visit.doctor_id,
            doctor_reminders.c.person_key == key)).mappings().all()
    third = next(r for r in rows if r["order_id"] == chest[2][1].order_id and r["standard_item"] == "CT-CHEST-P")
    candidates = json.loads(third["candidates"])
    assert third["status"] == "candidates" and len(candidates) == 2
    assert "amended" in {c["report_status"] for c in candidates}  # the second hospital's report was corrected
    assert len(mine) == 1 and json.loads(mine[0]["study_uids"]) == [c["study_uid"] for c in candidates]
    assert {r["study_uid"] for r in listed} == {c["study_uid"] for c in candidates}


def test_the_unidentified_patient_is_checked_against_the_emergency_scan_once_linked(demo):
    platform, world = demo
    [link] = world.links
    key = platform.keys.person_key(world.patient(link.patient_key).id_number)
    assert [e for e in _events(platform, "PersonHistoryMerged") if e.key == key]
    dups = [e for e in _events(platform, "DuplicateFound") if e.key == key]
    assert [d.payload["standard_item"] for d in dups] == ["CT-HEAD-P"]
    assert dups[0].payload["candidate_hospital"] == link.hospital


def test_statistics_count_the_world(demo):
    platform, _ = demo
    found_orders = {(e.payload["hospital"], e.payload["order_id"], e.payload["standard_item"])
                    for e in _events(platform, "DuplicateFound")}
    with platform.views_engine.connect() as conn:
        stats, _ = recognition_statistics(conn)
    assert sum(s["duplicates_found"] for s in stats) == len(found_orders) > 0
    assert all(s["decided"] == 0 and s["recognition_rate"] is None for s in stats)


def test_rebuilding_the_views_decides_the_same_events_again(demo):
    """A replay reads the partitions in another order than the live run did; the decisions are the same."""
    platform, _ = demo
    before = {e.event_id for e in _events(platform)}
    views = (order_items, reminder_exams, doctor_reminders, recognition_outcomes)
    with platform.views_engine.connect() as conn:
        rows = {t.name: sorted(tuple(r) for r in conn.execute(sa.select(t))) for t in views}
    assert all(rows.values())
    platform.rebuild_views()
    assert {e.event_id for e in _events(platform)} == before  # same ids: the log kept one copy of each
    with platform.views_engine.connect() as conn:
        assert {t.name: sorted(tuple(r) for r in conn.execute(sa.select(t))) for t in views} == rows
