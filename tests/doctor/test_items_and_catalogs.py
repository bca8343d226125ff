"""ExamItemsResolved built from orders and studies; the hospital directory and the rules catalog."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.exam_items import ResolvedItems, from_resolver, from_store, items_resolved
from pipelines.mapping.catalog import default_catalog
from pipelines.mapping.resolve import ItemResolver
from pipelines.mapping.store import MappingStore
from schemas.hospitals import default_hospitals, load_hospitals
from schemas.recognition_rules import RULES_FILE, default_rules, load_rules
from schemas.registry import REGISTRY
from tests.doctor.stream import HF1, DoctorStream
from wanying.demo.world import build_world


@pytest.fixture(scope="module")
def resolver() -> ItemResolver:
    return ItemResolver(default_catalog())


def test_an_order_gets_its_standard_items_with_a_deterministic_id(resolver):
    b = DoctorStream()
    pk = b.person("34010419850612123")
    order = b.order(pk, HF1, "O1", code="CT01", name="胸部+上腹部CT平扫", accession="A1")
    event = items_resolved(order, from_resolver(resolver))
    assert event is not None and REGISTRY.validate(event)
    p = event.payload
    assert (p["order_id"], p["accession_number"], p["method"]) == ("O1", "A1", "auto")
    assert p["standard_items"] == ["CT-CHEST-P", "CT-UPPER_ABD-P"]
    assert p["catalog_version"] == default_catalog().version
    assert (event.key, event.causation_id, event.occurred_at) == (pk, order.event_id, order.occurred_at)
    assert items_resolved(order, from_resolver(resolver)).event_id == event.event_id
    changed = items_resolved(order, lambda *_: ResolvedItems(("CT-CHEST-P",), "manual", "x"))
    assert changed.event_id != event.event_id  # a mapping change is a new fact


def test_unknown_items_and_other_events_give_nothing(resolver):
    b = DoctorStream()
    pk = b.person("34010419850612123")
    assert items_resolved(b.order(pk, HF1, "O1", name="会诊"), from_resolver(resolver)) is None
    assert items_resolved(b.opened(pk, HF1), from_resolver(resolver)) is None
    # a study that came with an order: its items are the order's
    assert items_resolved(b.completed(pk, HF1, "1.2.3", order_id="O1"), from_resolver(resolver)) is None


def test_a_study_without_an_order_is_read_from_its_description(resolver):
    b = DoctorStream()
    pk = b.person("34010419850612123")
    event = items_resolved(b.completed(pk, HF1, "1.2.3", accession="A9"), from_resolver(resolver))
    assert event.payload["study_uid"] == "1.2.3" and event.payload["standard_items"] == ["CT-CHEST-P"]
    assert "order_id" not in event.payload


def test_the_mapping_table_is_used_when_there_is_one(tmp_path):
    store = MappingStore(sa.create_engine(f"sqlite:///{tmp_path / 'm.sqlite'}"), default_catalog())
    store.observe(HF1, "CT01", "胸部CT平扫")
    store.accept(HF1, "CT01", items=["CT-CHEST-E"], actor="op")
    store.observe(HF1, "XX9", "会诊")  # queued for review: no items yet
    b = DoctorStream()
    pk = b.person("34010419850612123")
    event = items_resolved(b.order(pk, HF1, "O1", code="CT01", name="胸部CT平扫"), from_store(store))
    assert (event.payload["standard_items"], event.payload["method"]) == (["CT-CHEST-E"], "manual")
    assert items_resolved(b.order(pk, HF1, "O2", code="XX9", name="会诊"), from_store(store)) is None


def test_hospital_directory_holds_the_demo_world():
    directory = default_hospitals()
    world = build_world(20261128, 0.2)
    assert {h.code for h in world.hospitals} <= set(directory.hospitals)
    for h in world.hospitals:
        entry = directory.get(h.code)
        assert (entry.name, entry.city, entry.level) == (h.name, h.city, h.level)
        assert entry.alliances == (frozenset({h.alliance}) if h.alliance else frozenset())


def test_directory_refuses_bad_entries(tmp_path):
    bad = tmp_path / "h.yaml"
    bad.write_text("version: 1\nhospitals:\n  - {code: AH-1, name: x, city: y, level: 四级}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="level '四级' is not one of"):
        load_hospitals(bad)


def test_every_rule_version_carries_its_source_and_a_date():
    rules = default_rules()
    assert [v.effective_from for v in rules.versions] == sorted(v.effective_from for v in rules.versions)
    for v in rules.versions:
        assert v.source and v.effective_from and v.statuses_accepted == ("final", "amended")
        assert v.grades_accepted == ("甲", "乙")
    assert "第二十条" in rules.reasons_source and "DEFAULT" in rules.reasons_source


def test_rules_refuse_an_exception_without_source(tmp_path):
    text = RULES_FILE.read_text(encoding="utf-8").replace(
        "source: 'DEFAULT: shorter window for children; Anhui text not at hand'", "source: ''", 1)
    path = Path(tmp_path / "r.yaml")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="paediatric has no source"):
        load_rules(path)


def test_a_new_rule_version_in_the_file_takes_effect_on_its_date(tmp_path):
    from datetime import date

    text = RULES_FILE.read_text(encoding="utf-8") + """
  - version: '2027.1'
    effective_from: 2027-01-01
    source: 'test: chest CT window narrowed'
    windows: {default_days: 30, by_modality: {CT: 30}, by_item: {CT-CHEST-P: 14}}
    exceptions: []
"""
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    rules = load_rules(path)
    assert rules.at(date(2026, 12, 31)).version == "2024.1"
    assert rules.at(date(2027, 1, 1)).version == "2027.1"
    assert rules.at(date(2027, 1, 1)).window_days("CT-CHEST-P") == 14
    assert rules.at(date(2023, 12, 31)) is None
