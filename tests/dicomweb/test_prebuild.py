"""Bundles are built when a study completes (the StudyCompleted event), before any viewer asks for them."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pydicom

from pipelines.dicom.completion import CompletionDriver
from pipelines.dicom.synthetic import ct_series
from pipelines.dicomweb.bundle import source_sha256
from pipelines.dicomweb.prebuild import CHANNEL, prebuilder_for
from schemas.events import SeriesSummary, StudyCompleted
from schemas.registry import REGISTRY
from streams.topics import publish
from tests.dicomweb.conftest import ingest_files, make_platform


def _complete(platform) -> list:
    driver = CompletionDriver(platform.dicom_index, lambda events: publish(platform.log, events))
    return driver.tick(datetime.now(timezone.utc) + timedelta(hours=1))  # quiet long enough: complete


def _bundle_paths(platform, study: str) -> dict[str, object]:
    svc = platform.dicomweb
    rows = svc.rows(study)
    by_series: dict[str, list] = {}
    for r in rows:
        by_series.setdefault(r.series_uid, []).append(r)
    return {uid: svc.bundles.path_of(uid, source_sha256(rs), "raw") for uid, rs in by_series.items()}


def test_study_completed_builds_every_series_bundle_without_a_viewer_request(tmp_path):
    platform, _, _ = make_platform(tmp_path)
    try:
        study = pydicom.uid.generate_uid()
        paths = ct_series(tmp_path / "a", slices=4, size=32, patient_id="MRN-PB1", study_uid=study)
        paths += ct_series(tmp_path / "b", slices=3, size=32, patient_id="MRN-PB1", study_uid=study, seed=9)
        ingest_files(platform, paths)
        expected = _bundle_paths(platform, study)
        assert len(expected) == 2 and not any(p.exists() for p in expected.values())

        stop = threading.Event()
        worker = threading.Thread(target=prebuilder_for(platform).run, args=(stop,), daemon=True)
        worker.start()  # as `wanying run` starts it
        try:
            [completed] = _complete(platform)
            assert completed.payload["study_uid"] == study
            deadline = time.monotonic() + 30
            while not all(p.exists() for p in expected.values()) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            worker.join(10)
        assert all(p.exists() for p in expected.values())
        # the viewer's first request is served from the prebuilt file itself (a rebuild would replace the inode)
        inodes = {uid: p.stat().st_ino for uid, p in expected.items()}
        for uid, path in expected.items():
            built = platform.dicomweb.bundle(study, uid)
            assert built.path == path and path.stat().st_ino == inodes[uid]
    finally:
        platform.close()


def test_completion_of_a_study_without_images_here_is_skipped_and_broken_ones_kept_as_dead_letters(tmp_path):
    platform, _, _ = make_platform(tmp_path)
    try:
        elsewhere = REGISTRY.new(StudyCompleted(
            hospital="AH-HF-001", study_uid="1.2.3.4.5", person_key="a" * 64, study_date=datetime(2026, 11, 1).date(),
            modalities=["CT"], series=[SeriesSummary(series_uid="1.2.3.4.6", modality="CT", instance_count=1)],
            instance_count=1, total_bytes=1, manifest_sha256="0" * 64), key="a" * 64, source="AH-HF-001",
            occurred_at=datetime.now(timezone.utc))
        publish(platform.log, [elsewhere])
        prebuilder = prebuilder_for(platform)
        stats = prebuilder.run_until_idle(30)
        assert (stats.absent, stats.studies, stats.failed) == (1, 0, 0)

        study = pydicom.uid.generate_uid()
        ingest_files(platform, ct_series(tmp_path / "c", slices=2, size=16, patient_id="MRN-PB2", study_uid=study))
        row = platform.dicomweb.rows(study)[0]  # catalogued while intact, then damaged on disk
        platform.dicom_store.path_of(row.object_sha256).write_bytes(b"not the original any more")
        _complete(platform)
        stats = prebuilder.run_until_idle(30)
        assert (stats.failed, stats.studies) == (1, 0)  # the worker goes on; the reason is kept with the event
        [letter] = platform.dead_letters.list(channel=CHANNEL)
        assert "corrupt" in letter.reason and study.encode() in letter.body
        assert prebuilder.step(timeout=0) == 0  # committed: nothing is read twice
    finally:
        platform.close()
