"""The live QC worker on a real embedded platform: the demo world's completed studies get one QCScored per series,
views keep every score, re-running adds nothing, a new protocol version adds a score without losing the old one,
an unreadable study goes to the dead letters, and a study that came through ingest is read from the store."""
from __future__ import annotations

import dataclasses
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from qc import protocol as P
from qc.worker import CHANNEL, GROUP, QCWorker, worker_for
from schemas.envelope import Envelope
from schemas.events import SeriesSummary, StudyCompleted
from schemas.registry import REGISTRY
from streams.processors.qc_views import qc_check_stats, qc_grade_stats, qc_latest, qc_scores
from streams.topics import publish
from wanying.demo import load_demo
from wanying.settings import Settings
from wanying.wiring import Platform


def _events(platform: Platform, etype: str) -> list[Envelope]:
    out = []
    for partition in range(platform.log.partitions("person")):
        offset = 0
        while batch := platform.log.read("person", partition, offset, 1000):
            out += [r.envelope() for r in batch if f'"type":"{etype}"'.encode() in r.value]
            offset = batch[-1].offset + 1
    return out


def _rows(platform: Platform, table: sa.Table) -> list[dict]:
    with platform.views_engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    platform = Platform(Settings(data_dir=tmp_path_factory.mktemp("qc-demo"), log_fsync="off"))
    load_demo(platform, scale=0.2)
    stats = worker_for(platform).run_until_idle()
    platform.runner().run_until_caught_up()
    yield platform, stats
    platform.close()


def test_every_completed_series_is_scored_once_with_explained_failures(demo):
    platform, stats = demo
    completed = _events(platform, "StudyCompleted")
    series = {s["series_uid"]: c for c in completed for s in c.payload["series"]}
    scored = _events(platform, "QCScored")
    assert stats.studies == len(completed) and stats.failed == 0
    assert stats.scored + stats.skipped == len(series) and stats.scored == len(scored) > 0
    for event in scored:
        cause = series[event.payload["series_uid"]]
        assert event.causation_id == cause.event_id and event.key == cause.payload["person_key"]
        assert event.payload["study_date"] == cause.payload["study_date"]
        assert event.payload["protocol_version"] == P.get(event.payload["protocol"]).version
        for check in event.payload["failed_checks"]:
            assert check["id"] in {c.id for c in P.get(event.payload["protocol"]).checks}
            assert (check["value"] > check["threshold"]) if check["direction"] == "max" else (
                check["value"] < check["threshold"])
    latest = _rows(platform, qc_latest)
    assert sorted(r["series_uid"] for r in latest) == sorted(e.payload["series_uid"] for e in scored)
    grades = _rows(platform, qc_grade_stats)
    assert sum(r["series"] for r in grades) == len(latest)
    assert round(sum(r["total_sum"] for r in grades), 2) == round(sum(r["total"] for r in latest), 2)
    failed = sum(len(json.loads(r["failed_checks"])) for r in latest)
    assert sum(r["failed"] for r in _rows(platform, qc_check_stats)) == failed


def test_running_again_appends_nothing(demo):
    platform, _ = demo
    before = platform.log.count("person")
    again = QCWorker(platform.log, worker_for(platform).source, group=GROUP + "-again").run_until_idle()
    assert again.scored == len(_events(platform, "QCScored"))  # scored again, under the same event ids
    assert platform.log.count("person") == before


def test_batch_finds_no_backlog_and_rescoring_all_repeats_the_same_facts(demo):
    from qc import batch

    platform, _ = demo
    scored_before = len(_events(platform, "QCScored"))
    assert batch.plan(platform.views_engine, "backlog") == []
    nothing = batch.run(platform, "backlog", run_id="test-backlog")
    assert (nothing["studies"], nothing["series_scored"]) == (0, 0)
    everything = batch.run(platform, "all", run_id="test-all", chunk=4)
    assert everything["series_scored"] == scored_before and everything["failures"] == 0
    assert len(_events(platform, "QCScored")) == scored_before  # the same facts under the same ids
    again = batch.run(platform, "all", run_id="test-all", chunk=4)
    reports = [e for p in range(platform.log.partitions("directory"))
               for e in (r.envelope() for r in platform.log.read("directory", p, 0, 10_000))
               if e.type == "QCBatchCompleted"]
    assert sorted(e.payload["run_id"] for e in reports) == ["test-all", "test-backlog"]  # one report per run id
    assert again["series_scored"] == everything["series_scored"]


def test_new_protocol_version_adds_a_score_and_keeps_the_old(demo, monkeypatch):
    platform, _ = demo
    old = _rows(platform, qc_latest)
    bumped = {pid: dataclasses.replace(p, version=p.version + ".1") for pid, p in P.load_all().items()}
    monkeypatch.setattr(P, "load_all", lambda *a, **k: bumped)
    QCWorker(platform.log, worker_for(platform).source, group=GROUP + "-v2").run_until_idle()
    platform.runner().run_until_caught_up()
    scores = _rows(platform, qc_scores)
    assert len(scores) == 2 * len(old)
    assert {(r["series_uid"], r["protocol_version"]) for r in scores} >= {
        (r["series_uid"], r["protocol_version"]) for r in old}
    latest = _rows(platform, qc_latest)
    assert all(r["protocol_version"].endswith(".1") and r["versions_scored"] == 2 for r in latest)
    assert sum(r["series"] for r in _rows(platform, qc_grade_stats)) == len(latest)  # not counted twice


def test_a_study_without_images_goes_to_the_dead_letters_and_the_worker_goes_on(tmp_path):
    platform = Platform(Settings(data_dir=tmp_path, log_fsync="off"))
    person = "a" * 64
    missing = StudyCompleted(
        hospital="AH-HF-001", study_uid="1.2.3.4", person_key=person, study_date="2026-10-01", modalities=["CT"],
        series=[SeriesSummary(series_uid="1.2.3.4.1", modality="CT", instance_count=3)], instance_count=3,
        total_bytes=10, manifest_sha256="0" * 64)
    publish(platform.log, [REGISTRY.new(missing, key=person, source="AH-HF-001",
                                        occurred_at=datetime.now(timezone.utc))])
    stats = worker_for(platform).run_until_idle()
    assert (stats.failed, stats.scored) == (1, 0)
    [letter] = platform.dead_letters.list(channel=CHANNEL)
    assert "no images found" in letter.reason and b"1.2.3.4" in platform.dead_letters.get(letter.id).body
    platform.close()


def test_a_study_received_through_ingest_is_scored_from_the_store(tmp_path):
    from pipelines.dicom.completion import CompletionDriver
    from qc.synth.dicomio import real_chest

    platform = Platform(Settings(data_dir=tmp_path, log_fsync="off"))
    ds = real_chest()
    ds.PatientID, ds.StudyDate, ds.BodyPartExamined, ds.ViewPosition = "MRN42", "20261101", "CHEST", "PA"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    platform.dicom_ingest.receive_file(buf.getvalue(), hospital="AH-HF-001", source_ae="TESTPACS")
    completed = CompletionDriver(platform.dicom_index, lambda evs: publish(platform.log, evs)).tick(
        datetime.now(timezone.utc) + timedelta(days=1))
    assert len(completed) == 1
    stats = worker_for(platform).run_until_idle()
    [scored] = _events(platform, "QCScored")
    assert stats.scored == 1 and scored.payload["protocol"] == "chest_pa"
    assert scored.payload["sop_uid"] == str(ds.SOPInstanceUID)
    platform.close()
