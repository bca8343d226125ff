from __future__ import annotations

import sqlalchemy as sa

from pipelines.mapping.catalog import default_catalog
from pipelines.mapping.files import read_rows, write_rows
from pipelines.mapping.store import MappingError, MappingStore
from schemas.registry import REGISTRY


def _store(tmp_path):
    return MappingStore(sa.create_engine(f"sqlite:///{tmp_path / 'm.sqlite'}"), default_catalog())


def test_observe_auto_maps_or_queues_and_records_events(tmp_path):
    store = _store(tmp_path)
    items, events = store.observe("AHSL", "C01", "胸部+上腹部CT平扫")
    assert set(items) == {"CT-CHEST-P", "CT-UPPER_ABD-P"}
    assert [e.type for e in events] == ["ExamCodeMapped"] and events[0].payload["method"] == "auto"
    assert store.observe("AHSL", "C01", "胸部+上腹部CT平扫") == (items, [])  # seen again: no new event
    items, events = store.observe("AHSL", "X9", "膝关节正侧位")
    assert items == () and [e.type for e in events] == ["ExamCodeQueued"]
    assert events[0].payload["suggestions"][:2] and "laterality" in events[0].payload["reason"]
    for e in events:
        REGISTRY.validate(e)
    queue = store.review_queue("AHSL")
    assert [m.local_code for m in queue] == ["X9"]
    assert store.get("AHSL", "C01").seen_count == 2


def test_accept_suggestion_and_explicit_items(tmp_path):
    store = _store(tmp_path)
    store.observe("AHSL", "X9", "膝关节正侧位")
    events = store.accept("AHSL", "X9", items=["DR-KNEE-L-AP_LAT", "DR-KNEE-R-AP_LAT"], actor="reviewer1")
    assert events[0].type == "ExamCodeMapped" and events[0].payload["method"] == "manual"
    assert store.review_queue() == []
    store.observe("AHSL", "Y1", "超声造影-肝脏")
    events = store.accept("AHSL", "Y1", suggestion=1, actor="reviewer1")
    assert events[0].payload["standard_items"] == [store.get("AHSL", "Y1").items[0]]
    try:
        store.accept("AHSL", "Y1", items=["NOT-A-CODE"], actor="r")
    except MappingError as exc:
        assert "unknown standard item" in str(exc)
    else:
        raise AssertionError("unknown item accepted")


def test_remove_requeues(tmp_path):
    store = _store(tmp_path)
    store.observe("AHSL", "C1", "胸部CT平扫")
    events = store.remove("AHSL", "C1", actor="r", reason="wrong protocol")
    assert [e.type for e in events] == ["ExamCodeMappingRemoved", "ExamCodeQueued"]
    assert store.get("AHSL", "C1").status == "pending"


def test_import_export_csv_and_excel_round_trip(tmp_path):
    store = _store(tmp_path)
    src = tmp_path / "in.csv"
    src.write_bytes(("hospital,local_code,local_name,standard_items\n"
                     "AYFY,1,头颅CT平扫,CT-HEAD-P\n"
                     "AYFY,2,双膝关节正侧位,\n"
                     "AYFY,3,胸部CT,BAD-CODE\n"
                     ",4,缺医院,CT-HEAD-P\n").encode("gb18030"))
    events, errors = store.import_rows(read_rows(src), actor="op")
    assert [e.type for e in events] == ["ExamCodeMapped", "ExamCodeMapped"]
    assert len(errors) == 2 and errors[0].startswith("line 4") and "BAD-CODE" in errors[0]
    for suffix in (".csv", ".xlsx"):
        out = tmp_path / f"out{suffix}"
        write_rows(out, store.list())
        rows = read_rows(out)
        assert {(r["local_code"], r["standard_items"]) for r in rows} == {
            ("1", "CT-HEAD-P"), ("2", "DR-KNEE-L-AP_LAT;DR-KNEE-R-AP_LAT")}
        other = MappingStore(sa.create_engine("sqlite://"), default_catalog())
        events, errors = other.import_rows(rows, actor="op")
        assert not errors and len(other.list()) == 2


def test_table_rebuilds_from_its_events(tmp_path):
    store = _store(tmp_path)
    events = []
    events += store.observe("AHSL", "C1", "胸部CT平扫")[1]
    events += store.observe("AHSL", "K1", "膝关节正侧位")[1]
    events += store.observe("AHSL", "K2", "膝关节MR")[1]
    events += store.accept("AHSL", "K1", suggestion=2, actor="r")
    events += store.remove("AHSL", "C1", actor="r", reason="check protocol")
    rebuilt = MappingStore(sa.create_engine("sqlite://"), default_catalog())
    for e in events:
        rebuilt.apply(e)

    def view(s):
        return [(m.hospital, m.local_code, m.local_name, m.items, m.status, [x[0] for x in m.suggestions])
                for m in s.list()]

    assert view(rebuilt) == view(store)


def test_orders_waiting_for_a_code_are_resolved_when_it_is_mapped_even_after_a_rebuild(tmp_path):
    from datetime import datetime, timezone

    from schemas.events import ExamOrdered

    store = _store(tmp_path)
    key = "h.AHSL." + "a" * 32
    order = REGISTRY.new(ExamOrdered(hospital="AHSL", order_id="SQ9", person_key=key, local_item_code="K7",
                                     local_item_name="膝关节正侧位", accession_number="ACC9"),
                         key=key, source="AHSL", occurred_at=datetime(2026, 11, 28, 9, tzinfo=timezone.utc))
    events = store.resolve_order(order)
    assert [e.type for e in events] == ["ExamCodeQueued"]  # not resolvable yet: queued, order remembered
    rebuilt = MappingStore(sa.create_engine("sqlite://"), default_catalog())
    for e in [order, *events]:
        rebuilt.apply(e)
    for s in (store, rebuilt):
        later = s.accept("AHSL", "K7", items=["DR-KNEE-R-AP_LAT"], actor="r")
        assert [e.type for e in later] == ["ExamCodeMapped", "ExamItemsResolved"]
        p = later[1].payload
        assert (p["order_id"], p["accession_number"], p["standard_items"], later[1].key) == (
            "SQ9", "ACC9", ["DR-KNEE-R-AP_LAT"], key)
    assert store.accept("AHSL", "K7", items=["DR-KNEE-R-AP_LAT"], actor="r")[1].event_id == later[1].event_id
