"""The event catalog page and the JSON Schemas in the repo are what `wanying schemas export` generates now."""
from __future__ import annotations

import json
from pathlib import Path

from schemas.export import export_json_schemas, render_catalog
from schemas.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def test_events_md_is_current():
    assert (ROOT / "docs" / "events.md").read_text() == render_catalog(), "run `wanying schemas export`"


def test_json_schemas_are_current(tmp_path):
    written = export_json_schemas(tmp_path)
    for path in written:
        committed = ROOT / "schemas" / "json" / path.name
        assert committed.exists(), f"{committed.name} missing: run `wanying schemas export`"
        assert json.loads(committed.read_text()) == json.loads(path.read_text()), committed.name
    names = {p.name for p in (ROOT / "schemas" / "json").glob("*.json")}
    assert names == {p.name for p in written}, "stale schema files in schemas/json"


def test_every_event_type_is_documented():
    page = render_catalog()
    for etype in REGISTRY:
        assert f"## {etype.name} (v{etype.version}" in page
        assert etype.model.__doc__, f"{etype.name} needs a docstring: it is its description in the catalog"
