"""Data checks on real DICOM files written to disk: missing slice, duplicate instance, lossy transfer syntax."""
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000

from qc.datachecks import check
from qc.engine import score_path
from qc.exam import load
from qc.synth import dicomio


@pytest.fixture
def series(tmp_path):
    rng = np.random.default_rng(0)
    vol = rng.normal(0, 10, (8, 64, 64)).astype(np.float32)
    vol[:, 16:48, 16:48] += 40
    folder = tmp_path / "ct"
    dicomio.write_series(folder, vol, [float(z) for z in range(0, 40, 5)], (5.0, 1.0, 1.0), "CT",
                         {"BodyPartExamined": "HEAD"}, "QC0001")
    return folder


def _by_id(results):
    return {r["id"]: r for r in results}


def _checks(folder):
    exam = load(folder)
    return _by_id(check(exam.datasets, exam.is_volume))


def test_complete_lossless_series_passes_every_data_check(series):
    assert all(r["passed"] for r in _checks(series).values())


def test_missing_slice_is_caught(series):
    (series / "IM0004.dcm").unlink()
    r = _checks(series)["series_complete"]
    assert not r["passed"] and "4" in r["detail"] and "gap after 10.0 mm" in r["detail"]


def test_duplicate_instance_is_caught(series):
    shutil.copy(series / "IM0003.dcm", series / "IM0003_copy.dcm")
    r = _checks(series)["no_duplicates"]
    assert not r["passed"] and "SOPInstanceUID" in r["detail"]


def test_lossy_transfer_syntax_is_caught_and_the_image_still_scored(series):
    path = series / "IM0005.dcm"
    ds = pydicom.dcmread(path)
    ds.compress(JPEG2000, encoding_plugin="pylibjpeg", j2k_cr=[20])  # lossy JPEG 2000, ratio 20
    ds.save_as(path, enforce_file_format=True)
    r = _checks(series)["lossless_original"]
    assert not r["passed"] and "JPEG 2000 (lossy)" in r["detail"]
    result = score_path(series, "ct_head")  # decoded through pylibjpeg
    assert any(not d["passed"] for d in result.data_checks)


def test_inconsistent_patient_is_caught(series):
    path = series / "IM0002.dcm"
    ds = pydicom.dcmread(path)
    ds.PatientID = "QC0002"
    ds.save_as(path, enforce_file_format=True)
    r = _checks(series)["consistent_tags"]
    assert not r["passed"] and "PatientID" in r["detail"]
