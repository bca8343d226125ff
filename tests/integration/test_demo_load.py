"""Loading the demo world into an embedded platform: views show it, reloading adds nothing, nothing leaks."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pydicom
import pytest
import sqlalchemy as sa

from streams.processors.history import exam_history, person_links
from wanying.demo import build_world, load_demo
from wanying.settings import Settings
from wanying.wiring import Platform

SEED = 20261128
SCALE = 0.2


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo")
    platform = Platform(Settings(data_dir=data, log_fsync="normal"))
    first = load_demo(platform, seed=SEED, scale=SCALE, out=None, progress=False)
    on_log = sum(platform.log.count(t) for t in platform.topics())
    applied = platform.runner().run_until_caught_up()
    yield platform, first, (on_log, applied), data
    platform.close()


def test_summary_counts_what_was_loaded(loaded):
    platform, first, (on_log, applied), data = loaded
    json.dumps(first)  # JSON-able
    world = build_world(SEED, SCALE)
    assert first["patients"] == len(world.patients) and first["hospitals"] == len(world.hospitals)
    assert first["studies"] == len(world.studies()) > 5
    assert first["events_appended"] == first["events"] == on_log > 0
    # the runner applies the demo's events and what processors decided from them (reminders, duplicates)
    assert applied > first["events"]
    assert first["events_already_present"] == 0
    assert first["dicom_files"] == first["dicom_files_written"] > 50
    files = sorted((data / "demo").rglob("*.dcm"))
    assert len(files) == first["dicom_files"] and sum(f.stat().st_size for f in files) == first["bytes"]
    for path in files[:: max(1, len(files) // 15)]:
        ds = pydicom.dcmread(path)
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)


def test_exam_history_shows_the_multi_hospital_patient(loaded):
    platform, *_ = loaded
    world = build_world(SEED, SCALE)
    patient = world.patient(world.repeat_patient)
    key = platform.keys.person_key(patient.id_number)
    with platform.views_engine.connect() as conn:
        rows = conn.execute(sa.select(exam_history).where(exam_history.c.person_key == key)).mappings().all()
        links = conn.execute(sa.select(person_links)).mappings().all()
    chest = [r for r in rows if r["modality"] == "CT"]
    assert len({r["hospital"] for r in chest}) >= 3
    assert {r["status"] for r in chest} == {"reported"}
    assert all(r["instance_count"] > 0 and r["study_uid"] for r in chest)
    assert "amended" in {r["report_status"] for r in chest}
    assert "cancelled" in {r["status"] for r in rows}
    assert len({r["local_item_name"] for r in chest}) >= 2  # each hospital names the exam its own way
    (link,) = world.links
    linked = world.patient(link.patient_key)
    assert [(l["person_key"], l["linked_key"]) for l in links] == [
        (platform.keys.person_key(linked.id_number), platform.keys.hospital_person_key(link.hospital, link.mrn))]


def test_loading_again_appends_nothing_and_rewrites_no_file(loaded):
    platform, first, _, data = loaded
    before = {p: p.stat().st_mtime_ns for p in (data / "demo").rglob("*.dcm")}
    again = load_demo(platform, seed=SEED, scale=SCALE, out=None, progress=False)
    assert again["events_appended"] == 0 and again["events_already_present"] == first["events"]
    assert again["dicom_files_written"] == 0 and again["bytes"] == first["bytes"]
    assert before == {p: p.stat().st_mtime_ns for p in (data / "demo").rglob("*.dcm")}


def test_damaged_file_is_rewritten_with_the_same_bytes(loaded):
    platform, first, _, data = loaded
    victim = sorted((data / "demo").rglob("*.dcm"))[0]
    original = victim.read_bytes()
    victim.write_bytes(original[:-10] + b"\0" * 10)
    again = load_demo(platform, seed=SEED, scale=SCALE, out=None, progress=False)
    assert again["dicom_files_written"] == 1 and again["events_appended"] == 0
    assert victim.read_bytes() == original


def _stored_bytes(data: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data.glob("*.sqlite*")))


def test_no_plain_personal_data_in_the_log_or_the_views(loaded):
    platform, _, _, data = loaded
    stored = _stored_bytes(data)  # the databases and their write-ahead logs
    assert len(stored) > 10_000
    world = build_world(SEED, SCALE)
    secrets = []
    for p in world.patients:
        secrets += [p.name, p.phone] + ([p.id_number, p.id_number[:17]] if p.id_number else [])
    findings = [o.report.text.findings for _, o in world.orders() if o.report is not None]
    for text in secrets + findings:
        for form in (text.encode(), json.dumps(text).strip('"').encode()):
            assert form not in stored, "personal data or report text in clear in the log or views"
    first = world.patients[0]  # the hospitals' own DICOM files do carry the name (and only they do)
    dicom = b"".join(p.read_bytes() for p in (data / "demo").rglob("*.dcm"))
    assert f"{first.surname}^{first.given}".encode() in dicom


def test_the_same_seed_at_other_image_sizes_is_refused(loaded):
    from wanying.demo.load import WorldConflict

    platform, first, _, data = loaded
    with pytest.raises(WorldConflict, match="fresh data directory"):
        load_demo(platform, seed=SEED, scale=1.0, out=None, progress=False)


def test_files_pass_the_platform_parser_and_match_the_logged_manifest(loaded):
    from pipelines.dicom.parse import inspect_part10
    from pipelines.storage.index import InstanceRow
    from pipelines.storage.manifest import build_manifest

    platform, _, _, data = loaded
    completed = [r.envelope() for p in range(platform.log.partitions("person"))
                 for r in platform.log.read("person", p, 0, 10_000) if b'"StudyCompleted"' in r.value]
    completed = [e for e in completed if e.type == "StudyCompleted"]
    assert completed
    for event in completed[:4]:
        p = event.payload
        files = sorted((data / "demo" / p["hospital"] / p["study_uid"]).rglob("*.dcm"))
        rows = []
        for path in files:
            raw = path.read_bytes()
            info = inspect_part10(raw)  # raises DicomRejected on anything ingest would refuse
            assert info.study_uid == p["study_uid"]
            rows.append(InstanceRow(study_uid=info.study_uid, series_uid=info.series_uid, sop_uid=info.sop_uid,
                                    version=1, sop_class_uid=info.sop_class_uid, transfer_syntax=info.transfer_syntax,
                                    object_sha256=hashlib.sha256(raw).hexdigest(),
                                    dataset_sha256=info.dataset_sha256, size=len(raw), received_at="",
                                    hospital=p["hospital"], source_ae="", modality=p["modalities"][0]))
        assert len(rows) == p["instance_count"] == sum(s["instance_count"] for s in p["series"])
        assert build_manifest(p["study_uid"], rows).sha256 == p["manifest_sha256"]
        assert sum(r.size for r in rows) == p["total_bytes"]


def test_demo_images_are_in_the_lossless_store_under_the_same_person_keys(loaded):
    platform, first, _, data = loaded
    assert first["objects_imported"] == first["dicom_files"]
    index = platform.dicom_index
    with platform.views_engine.connect() as conn:
        history = {r.study_uid: r.person_key for r in conn.execute(
            sa.select(exam_history.c.study_uid, exam_history.c.person_key).where(exam_history.c.study_uid.is_not(None)))}
    assert history
    for study_uid, person_key in history.items():
        study = index.study(study_uid)
        assert study is not None and study.person_key == person_key
        for row in index.instances_of(study_uid):
            assert platform.dicom_store.verify(row.object_sha256)
