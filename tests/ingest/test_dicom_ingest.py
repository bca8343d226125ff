"""Accepting instances: real files in every common transfer syntax, byte-for-byte storage, versions, events,
person keys, and the reasons given for what is refused."""
from __future__ import annotations

import hashlib
import io

import pydicom
import pytest
from pydicom.data import get_testdata_file

from pipelines.dicom.ingest import person_key_for
from pipelines.dicom.parse import (
    STATUS_DATASET_MISMATCH,
    DicomRejected,
    file_meta_bytes,
    inspect_part10,
    part10_from_dataset,
    split_part10,
)
from pipelines.identity import check_digit

REAL_FILES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_gdcm.dcm",
              "JPEG-LL.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "JPEG2000_UNC.dcm",
              "SC_rgb_rle.dcm", "rtplan.dcm", "waveform_ecg.dcm"]


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_files_are_stored_byte_for_byte(dicom_stack, name):
    data = open(get_testdata_file(name), "rb").read()
    accepted = dicom_stack.ingest.receive_file(data, hospital="AHSL", source_ae="AHSL_PACS")
    assert accepted.object_sha256 == hashlib.sha256(data).hexdigest()
    assert dicom_stack.store.get(accepted.object_sha256) == data
    ts, offset = split_part10(data)
    assert accepted.info.transfer_syntax == ts == str(pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID)
    assert accepted.info.dataset_sha256 == hashlib.sha256(data[offset:]).hexdigest()
    assert [e.type for e in accepted.events] == ["StudyReceived", "InstanceStored"]


def test_network_object_is_our_meta_plus_the_received_bytes(ct_files):
    source = ct_files[0].read_bytes()
    ts, offset = split_part10(source)
    info = inspect_part10(source)
    body, start = part10_from_dataset(source[offset:], sop_class_uid=info.sop_class_uid, sop_uid=info.sop_uid,
                                      transfer_syntax=ts)
    assert body[start:] == source[offset:]
    assert body[:start] == file_meta_bytes(info.sop_class_uid, info.sop_uid, ts)  # deterministic
    reread = pydicom.dcmread(io.BytesIO(body))
    assert reread.file_meta.TransferSyntaxUID == ts and reread.SOPInstanceUID == info.sop_uid
    assert reread.PixelData == pydicom.dcmread(ct_files[0]).PixelData


def test_resend_is_noop_and_changed_content_is_a_new_version(dicom_stack, ct_files):
    ingest = dicom_stack.ingest
    data = ct_files[1].read_bytes()
    first = ingest.receive_file(data, hospital="AHSL", source_ae="AHSL_PACS")
    again = ingest.receive_file(data, hospital="AHSL", source_ae="AHSL_PACS")
    assert again.outcome.outcome == "duplicate" and again.events == ()
    ds = pydicom.dcmread(ct_files[1])
    ds.WindowCenter = 50  # the hospital corrected something and sent it again
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    revised = ingest.receive_file(out.getvalue(), hospital="AHSL", source_ae="AHSL_PACS")
    assert (revised.outcome.outcome, revised.outcome.version) == ("new_version", 2)
    assert [e.type for e in revised.events] == ["InstanceStored", "InstanceRevised"]
    assert revised.events[1].payload["previous_object_sha256"] == first.object_sha256
    assert dicom_stack.store.exists(first.object_sha256) and dicom_stack.store.exists(revised.object_sha256)
    assert ingest.counts == {"stored": 1, "duplicate": 1, "new_version": 1, "rejected": 0}
    assert len(dicom_stack.events("InstanceStored")) == 2 and len(dicom_stack.events("StudyReceived")) == 1


def _id_number() -> str:
    first17 = "34010219800101123"
    return first17 + check_digit(first17)


def test_person_key_from_id_number_or_hospital_scope(dicom_stack):
    keys = dicom_stack.keys
    national = person_key_for(["MRN1", _id_number()], "AHSL", keys)
    assert national == keys.person_key(_id_number())
    assert person_key_for(["MRN1"], "AHSL", keys) == keys.hospital_person_key("AHSL", "MRN1")
    with pytest.raises(DicomRejected):
        person_key_for([], "AHSL", keys)


def test_no_patient_identifier_in_clear_in_events_or_index(dicom_stack, tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientID = _id_number()
    ds.OtherPatientIDs = "MRN-SECRET-77"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    accepted = dicom_stack.ingest.receive_file(out.getvalue(), hospital="AHSL", source_ae="AHSL_PACS")
    assert accepted.person_key == dicom_stack.keys.person_key(_id_number())
    blobs = b"".join(e.to_bytes() for e in dicom_stack.events())
    index_db = (tmp_path / "wanying" / "index.sqlite").read_bytes()
    for secret in (_id_number().encode(), b"MRN-SECRET-77", str(ds.PatientName).encode()):
        assert secret not in blobs and secret not in index_db


def _with(ds_change) -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds_change(ds)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _no_patient_id() -> bytes:
    def strip(ds):
        ds.PatientID = ""
        for keyword in ("OtherPatientIDs", "OtherPatientIDsSequence"):
            if keyword in ds:
                delattr(ds, keyword)

    return _with(strip)


def _bad_vr() -> bytes:
    data = open(get_testdata_file("CT_small.dcm"), "rb").read()
    _, offset = split_part10(data)
    return data[:offset] + data[offset:].replace(b"DA", b"Q!", 1)


@pytest.mark.parametrize("make, status, words", [
    (lambda: _with(lambda ds: delattr(ds, "StudyInstanceUID")), STATUS_DATASET_MISMATCH, "StudyInstanceUID"),
    (lambda: _with(lambda ds: setattr(ds, "SeriesInstanceUID", "")), STATUS_DATASET_MISMATCH, "SeriesInstanceUID"),
    (lambda: _no_patient_id(), STATUS_DATASET_MISMATCH, "PatientID"),
    (lambda: open(get_testdata_file("CT_small.dcm"), "rb").read()[:-100], 0xC000, "truncated"),
    (lambda: _bad_vr(), 0xC000, "invalid VR"),
    (lambda: b"hello", 0xC000, "DICM"),
])
def test_bad_instances_are_refused_with_a_reason_and_kept(dicom_stack, make, status, words):
    data = make()
    with pytest.raises(DicomRejected) as caught:
        dicom_stack.ingest.receive_file(data, hospital="AHSL", source_ae="AHSL_PACS")
    assert caught.value.status == status and words in caught.value.reason
    letters = dicom_stack.dead_letters.list(channel="dicom")
    assert len(letters) == 1 and letters[0].body == data and words in letters[0].reason
    assert list(dicom_stack.store.iter_hashes()) == [] and dicom_stack.events() == []


def test_dead_letter_replays_after_the_fix(dicom_stack):
    data = _no_patient_id()
    with pytest.raises(DicomRejected):
        dicom_stack.ingest.receive_file(data, hospital="AHSL", source_ae="AHSL_PACS")
    letter = dicom_stack.dead_letters.list(channel="dicom")[0]
    with pytest.raises(DicomRejected):  # still unfixable as it is: a new letter is filed, the old stays open
        dicom_stack.dead_letters.replay(letter.id, lambda body, src: dicom_stack.ingest.receive_file(
            body, hospital="AHSL", source_ae=src))
    assert dicom_stack.dead_letters.get(letter.id).status == "open"


def test_manifest_rebuilt_from_storage_matches_and_catches_damage(dicom_stack, ct_files):
    from pipelines.dicom.verify import check_study

    for f in ct_files[:4]:
        dicom_stack.ingest.receive_file(f.read_bytes(), hospital="AHSL", source_ae="AHSL_PACS")
    study_uid = dicom_stack.index.studies_in()[0].study_uid
    good = check_study(dicom_stack.index, dicom_stack.store, study_uid)
    assert good.ok and good.from_storage.sha256 == good.from_index.sha256 and good.from_index.instance_count == 4
    victim = dicom_stack.index.instances_of(study_uid)[0]
    path = dicom_stack.store.path_of(victim.object_sha256)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    bad = check_study(dicom_stack.index, dicom_stack.store, study_uid)
    assert not bad.ok and victim.sop_uid in bad.problems[0]


def test_same_dataset_in_another_file_wrapper_is_a_duplicate(dicom_stack, ct_files):
    data = ct_files[2].read_bytes()
    ts, offset = split_part10(data)
    info = inspect_part10(data)
    first = dicom_stack.ingest.receive_file(data, hospital="AHSL", source_ae="AHSL_PACS")
    # the same instance as a PACS re-wraps it: other File Meta, identical dataset
    rewrapped, _ = part10_from_dataset(data[offset:], sop_class_uid=info.sop_class_uid, sop_uid=info.sop_uid,
                                       transfer_syntax=ts)
    assert rewrapped != data
    again = dicom_stack.ingest.receive_file(rewrapped, hospital="AHSL", source_ae="ORTHANC")
    assert again.outcome.outcome == "duplicate" and again.object_sha256 == first.object_sha256
    assert list(dicom_stack.store.iter_hashes()) == [first.object_sha256]  # no orphan object
