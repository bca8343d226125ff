from __future__ import annotations

import json

from typer.testing import CliRunner

from pipelines.mapping.cli import app


def test_review_accept_import_export(tmp_path, monkeypatch):
    monkeypatch.setenv("WANYING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WANYING_LOG_FSYNC", "off")
    db = f"sqlite:///{tmp_path / 'm.sqlite'}"
    run = CliRunner().invoke
    src = tmp_path / "in.csv"
    src.write_text("hospital,local_code,local_name,standard_items\nAYFY,K1,膝关节正侧位,\nAYFY,C1,头颅CT平扫,CT-HEAD-P\n",
                   encoding="utf-8")
    r = run(app, ["import", str(src), "--db", db])
    assert r.exit_code == 0 and "imported: 2 events, 0 rejected" in r.output
    r = run(app, ["review", "--db", db])
    [line] = [json.loads(x) for x in r.output.splitlines()]
    assert line["local_code"] == "K1" and line["suggestions"][0]["code"] in ("DR-KNEE-L-AP_LAT", "DR-KNEE-R-AP_LAT")
    r = run(app, ["accept", "AYFY", "K1", "--items", "DR-KNEE-L-AP_LAT;DR-KNEE-R-AP_LAT", "--db", db])
    assert r.exit_code == 0 and "DR-KNEE-L-AP_LAT;DR-KNEE-R-AP_LAT" in r.output
    assert run(app, ["accept", "AYFY", "NOPE", "--db", db]).exit_code == 2
    out = tmp_path / "out.xlsx"
    assert run(app, ["export", str(out), "--db", db]).exit_code == 0 and out.stat().st_size > 0
    from streams.log.sqlite import SqliteLog

    log = SqliteLog(tmp_path / "data" / "log.sqlite")
    try:
        assert log.count("directory") == 3  # imported, queued, accepted
    finally:
        log.close()
    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    assert "from 3 events" in run(app, ["rebuild", "--db", fresh]).output
    rows = [json.loads(x) for x in run(app, ["review", "--status", "confirmed", "--db", fresh]).output.splitlines()]
    assert {r["local_code"] for r in rows} == {"K1", "C1"}
