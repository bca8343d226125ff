"""The same service over an s3:// object store (moto): headers read by ranges, bundles built from S3 originals."""
from __future__ import annotations

import numpy as np
import pydicom

from infra import services
from pipelines.dicom.synthetic import ct_series
from pipelines.dicomweb.bundle import frame_array, parse_prefix
from pipelines.dicomweb.service import DicomWebService
from tests.dicomweb.conftest import ingest_files
from wanying.settings import Settings
from wanying.wiring import Platform


def test_bundle_and_search_over_s3(tmp_path, monkeypatch):
    moto = services.start_moto(tmp_path / "moto")
    try:
        moto.create_bucket("originals")
        for k, v in moto.env().items():
            monkeypatch.setenv(k, v)
        platform = Platform(Settings(data_dir=tmp_path / "data", log_fsync="off",
                                     dicom_store_url="s3://originals/objects"))
        paths = ct_series(tmp_path / "ct", slices=3, size=32, patient_id="MRN-S3")
        ingest_files(platform, paths)
        assert type(platform.dicom_store).__name__ == "FsspecObjectStore"
        svc = DicomWebService.for_platform(platform)
        [study] = svc.search("study", [("PatientID", "MRN-S3")], "http://x")
        ds = pydicom.dcmread(paths[1])
        built = svc.bundle(ds.StudyInstanceUID, ds.SeriesInstanceUID)
        data = built.path.read_bytes()
        header = parse_prefix(data)
        n = [i["sop_uid"] for i in header["instances"]].index(ds.SOPInstanceUID)
        off, length = header["instances"][n]["frames"][0]
        start = header["data_offset"] + off
        np.testing.assert_array_equal(frame_array(header, n, data[start:start + length]), ds.pixel_array)
        assert study["00201208"]["Value"] == [3]
        platform.close()
    finally:
        moto.stop()
