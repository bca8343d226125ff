"""The Airflow 3 DAG `qc_rescore` run with `dag.test()` (no scheduler) on a temporary platform holding the demo
world: the backlog run scores every completed series and reports the run as `QCBatchCompleted`; after the protocols
get a new version, the next backlog run scores them all again and the old scores stay beside the new ones.

Airflow reads its configuration once per process, so the DAG runs in a child process with its own AIRFLOW_HOME."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from streams.processors.qc_views import qc_latest, qc_scores
from wanying.demo import load_demo
from wanying.settings import Settings
from wanying.wiring import Platform

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
RUNNER = r"""
import json, os, runpy, sys
from pathlib import Path
import yaml
from qc import protocol as P

dag = runpy.run_path(sys.argv[1] + "/qc_rescore.py")["qc_rescore"]()
out = []
for bump in (False, True):
    if bump:  # an operator publishes a new version of every protocol in an edited protocol folder
        edited = Path(sys.argv[2])
        edited.mkdir()
        for path in P.PROTOCOL_DIR.glob("*.yaml"):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            doc["version"] = str(doc["version"]) + ".1"
            (edited / path.name).write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
        os.environ["WANYING_QC_PROTOCOL_DIR"] = str(edited)
        P.load_all.cache_clear()
    run = dag.test(run_conf={"scope": "backlog", "chunk": 8, "catch_up_views": True})
    tis = {ti.task_id: ti.state for ti in run.get_task_instances()}
    out.append({"state": str(run.state), "tasks": {k: str(v) for k, v in tis.items()}})
print("RESULT " + json.dumps(out))
"""


def _events(platform: Platform, etype: str, topic: str = "person") -> list:
    out = []
    for partition in range(platform.log.partitions(topic)):
        out += [r.envelope() for r in platform.log.read(topic, partition, 0, 100_000)
                if f'"type":"{etype}"'.encode() in r.value]
    return out


def test_backlog_then_new_protocol_version(tmp_path):
    data = tmp_path / "platform"
    platform = Platform(Settings(data_dir=data, log_fsync="off"))
    load_demo(platform, scale=0.2)
    series = {s["series_uid"] for e in _events(platform, "StudyCompleted") for s in e.payload["series"]}
    platform.close()

    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "WANYING_DATA_DIR": str(data),
           "WANYING_LOG_FSYNC": "off", "PYTHONPATH": str(ROOT)}
    airflow = Path(sys.executable).with_name("airflow")
    migrate = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    ran = subprocess.run([sys.executable, "-c", RUNNER, str(ROOT / "dags"), str(tmp_path / "protocols")], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=240)
    lines = [line for line in ran.stdout.splitlines() if line.startswith("RESULT ")]
    assert ran.returncode == 0 and lines, (ran.stdout[-3000:], ran.stderr[-3000:])
    runs = json.loads(lines[-1][len("RESULT "):])
    for run in runs:
        assert run["state"].endswith("success"), run
        assert {"plan", "chunks_of", "complete"} <= set(run["tasks"]) and "score" in run["tasks"]

    platform = Platform(Settings(data_dir=data, log_fsync="off"))
    batches = sorted((e.payload for e in _events(platform, "QCBatchCompleted", "directory")),
                     key=lambda p: p["protocol_versions"]["chest_pa"])
    assert len(batches) == 2
    first, second = batches
    scored = _events(platform, "QCScored")
    assert first["series_scored"] + first["series_skipped"] == len(series) and first["failures"] == 0
    assert second["series_scored"] == first["series_scored"] > 0
    assert second["protocol_versions"]["chest_pa"] == first["protocol_versions"]["chest_pa"] + ".1"
    assert len(scored) == 2 * first["series_scored"]
    assert all(e.correlation_id is not None for e in scored)
    platform.runner().run_until_caught_up()
    with platform.views_engine.connect() as conn:
        versions = conn.execute(sa.select(qc_scores.c.series_uid, qc_scores.c.protocol_version)).all()
        latest = conn.execute(sa.select(qc_latest.c.protocol_version)).scalars().all()
    assert len(versions) == 2 * first["series_scored"]
    assert latest and all(v.endswith(".1") for v in latest)
    platform.close()
