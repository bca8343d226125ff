"""Study completion: the pure decision, then the driver over a real index and log."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pipelines.dicom.completion import CompletionPolicy, StudyState, decide

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)
POLICY = CompletionPolicy(stable_age=timedelta(seconds=60), max_wait=timedelta(hours=6))


def state(**kw) -> StudyState:
    base = dict(status="open", received=10, expected=None, last_received_at=T0, manifest_sha256="a" * 64)
    return StudyState(**{**base, **kw})


@pytest.mark.parametrize("st, now, complete, words", [
    (state(expected=10), T0, True, "all 10"),
    (state(expected=12), T0 + timedelta(minutes=5), False, "10 of 12"),
    (state(expected=8), T0, True, "2 more than announced"),
    (state(expected=12), T0 + timedelta(hours=7), True, "only 10 of 12"),
    (state(), T0 + timedelta(seconds=30), False, "waiting"),
    (state(), T0 + timedelta(seconds=61), True, "no new instance"),
    (state(status="completed", expected=10), T0 + timedelta(days=1), False, "already"),
    (state(status="reopened", expected=10, completed_manifest_sha256="b" * 64), T0, True, "all 10"),
    (state(status="reopened", expected=10, completed_manifest_sha256="a" * 64), T0, False, "nothing changed"),
])
def test_decide(st, now, complete, words):
    decision = decide(st, now, POLICY)
    assert decision.complete is complete and words in decision.reason


def test_driver_completes_once_and_a_late_instance_reopens(dicom_stack, ct_files):
    ingest, driver = dicom_stack.ingest, dicom_stack.completion
    for f in ct_files[:-1]:
        ingest.receive_file(f.read_bytes(), hospital="AHSL", source_ae="AHSL_PACS")
    study_uid = ingest.index.studies_in()[0].study_uid
    driver.expect(study_uid, len(ct_files), "c-find")
    now = datetime.now(timezone.utc)
    assert driver.tick(now) == []  # one missing
    ingest.receive_file(ct_files[-1].read_bytes(), hospital="AHSL", source_ae="AHSL_PACS")
    [done] = driver.tick(now)
    assert done.type == "StudyCompleted" and done.payload["instance_count"] == len(ct_files)
    assert done.payload["total_bytes"] == sum(len(f.read_bytes()) for f in ct_files)
    assert driver.tick(now + timedelta(hours=1)) == []  # once
    first_manifest = done.payload["manifest_sha256"]
    assert ingest.index.study(study_uid).completed_manifest_sha256 == first_manifest

    # a late, corrected instance re-opens the study and completes it again with a new manifest
    import io

    import pydicom

    ds = pydicom.dcmread(ct_files[0])
    ds.ImageComments = "re-sent after correction"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    late = ingest.receive_file(buf.getvalue(), hospital="AHSL", source_ae="AHSL_PACS")
    assert "StudyReopened" in [e.type for e in late.events]
    assert ingest.index.study(study_uid).status == "reopened"
    [again] = driver.tick(now)
    assert again.payload["manifest_sha256"] != first_manifest and again.payload["instance_count"] == len(ct_files)
    assert len(dicom_stack.events("StudyCompleted")) == 2 and len(dicom_stack.events("StudyReopened")) == 1


def test_driver_falls_back_to_the_stable_age_timer(dicom_stack, ct_files):
    dicom_stack.ingest.receive_file(ct_files[0].read_bytes(), hospital="AHSL", source_ae="AHSL_PACS")
    now = datetime.now(timezone.utc)
    assert dicom_stack.completion.tick(now) == []
    [done] = dicom_stack.completion.tick(now + timedelta(seconds=61))
    assert done.payload["instance_count"] == 1 and done.payload["study_date"] == "2026-11-02"


def test_a_less_authoritative_count_does_not_override(dicom_stack, ct_files):
    dicom_stack.ingest.receive_file(ct_files[0].read_bytes(), hospital="AHSL", source_ae="AHSL_PACS")
    uid = dicom_stack.index.studies_in()[0].study_uid
    dicom_stack.completion.expect(uid, 12, "orthanc")
    dicom_stack.completion.expect(uid, 3, "order")
    study = dicom_stack.index.study(uid)
    assert (study.expected_instances, study.expected_source) == (12, "orthanc")
