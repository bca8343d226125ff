"""Re-evaluating past checks and decisions by replay under another rule file (`wanying recognition reevaluate`):
a narrower window added from a past date makes an accepted 已互认 unjustified; the live views stay as they were."""
from __future__ import annotations

import csv
from datetime import date, timedelta

import pytest
from typer.testing import CliRunner

from schemas.recognition_rules import RULES_FILE, load_rules
from streams.processors.recognition import order_items
from streams.reevaluate import reevaluate
from streams.topics import publish
from tests.doctor.stream import CT_CHEST, HF1, WH1, DoctorStream, local
from wanying.settings import Settings
from wanying.wiring import Platform

DAY = date(2026, 9, 1)
NARROWER = """
  - version: '2026.2'
    effective_from: 2026-09-01
    source: 'test: chest CT window narrowed to 14 days'
    windows: {default_days: 30, by_modality: {CT: 30}, by_item: {CT-CHEST-P: 14}}
    exceptions: []
"""


@pytest.fixture
def world(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", log_fsync="off")
    platform = Platform(settings)
    b = DoctorStream(keys=platform.keys)
    pk = b.person("34010419850612123")
    early = b.exam(pk, WH1, DAY, CT_CHEST)          # 20 days before the order
    recent = b.exam(pk, WH1, DAY + timedelta(days=10), CT_CHEST)  # 10 days before
    b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=20)), CT_CHEST)
    b.decision(pk, HF1, "O1", CT_CHEST, recent, "declined", "image_quality")
    b.decision(pk, HF1, "O1", CT_CHEST, early, "accepted")
    publish(platform.log, b.events)
    platform.runner().run_until_caught_up()
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES_FILE.read_text(encoding="utf-8") + NARROWER, encoding="utf-8")
    yield platform, settings, rules_file, {"early": early, "recent": recent}
    platform.close()


def _live(platform) -> list[dict]:
    with platform.projector.engine.connect() as conn:
        return [r._asdict() for r in conn.execute(order_items.select().order_by(order_items.c.order_id))]


def test_under_the_rules_in_force_nothing_changes(world):
    platform, _, _, studies = world
    [item] = [r for r in reevaluate(platform.log, platform.rules, platform.projector.engine) if r.order_id == "O1"]
    assert (item.decision, item.accepted_study_uid, item.accepted_still_valid) == ("accepted", studies["early"], True)
    assert (item.old_candidates, item.new_candidates, item.changed) == (2, 2, False)


def test_a_narrower_window_from_a_past_date_flags_the_acceptance(world):
    platform, _, rules_file, studies = world
    before = _live(platform)
    reviews = list(reevaluate(platform.log, load_rules(rules_file), platform.projector.engine))
    [item] = [r for r in reviews if r.order_id == "O1"]
    assert (item.old_rule_version, item.new_rule_version) == ("2024.1", "2026.2")
    assert (item.old_candidates, item.new_candidates) == (2, 1)  # only the exam 10 days before is left
    assert (item.accepted_study_uid, item.accepted_still_valid, item.changed) == (studies["early"], False, True)
    assert _live(platform) == before  # a what-if: the views keep what doctors were shown


def test_the_cli_prints_counts_and_writes_the_csv(world, tmp_path, monkeypatch):
    platform, settings, rules_file, studies = world
    from wanying.cli import app

    monkeypatch.setenv("WANYING_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("WANYING_LOG_FSYNC", "off")
    out = tmp_path / "items.csv"
    result = CliRunner().invoke(app, ["recognition", "reevaluate", "--rules", str(rules_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("reevaluated items=") and " accepted=1 accepted_no_longer_valid=1 " in line
    assert line.endswith("rule_versions=2024.1,2026.2")
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    [o1] = [r for r in rows if r["order_id"] == "O1"]
    assert (o1["accepted_study_uid"], o1["accepted_still_valid"], o1["changed"]) == (studies["early"], "no", "yes")


def test_an_operators_rule_file_is_what_the_platform_checks_with(world, tmp_path):
    _, _, rules_file, studies = world
    platform = Platform(Settings(data_dir=tmp_path / "operator", log_fsync="off", recognition_rules_file=rules_file))
    try:
        b = DoctorStream(keys=platform.keys)
        pk = b.person("34010419850612123")
        early = b.exam(pk, WH1, DAY, CT_CHEST)
        recent = b.exam(pk, WH1, DAY + timedelta(days=10), CT_CHEST)
        b.checked_order(pk, HF1, "O1", local(DAY + timedelta(days=20)), CT_CHEST)
        publish(platform.log, b.events)
        platform.runner().run_until_caught_up()
        [row] = [r for r in _live(platform) if r["order_id"] == "O1"]
        assert (row["rule_version"], row["candidate_count"]) == ("2026.2", 1)
        assert recent in row["candidates"] and early not in row["candidates"]
    finally:
        platform.close()
