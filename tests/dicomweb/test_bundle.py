"""Series bundles: content equals the originals, range requests, ETags, rebuilt when missing or stale."""
from __future__ import annotations

import numpy as np
import pydicom

from pipelines.dicomweb.bundle import frame_array, parse_prefix
from tests.dicomweb.conftest import ingest_files


def _bundle(centre, encoding="raw", headers=None):
    with centre.client() as http:
        return http.get(f"/studies/{centre.study}/series/{centre.series}/bundle", params={"encoding": encoding},
                        headers=headers or {})


def _pixels(centre) -> dict[str, np.ndarray]:
    return {ds.SOPInstanceUID: ds.pixel_array for ds in (pydicom.dcmread(p) for p in centre.paths)}


def test_raw_and_htj2k_bundles_hold_every_frame_pixel_identical_with_metadata_first(centre):
    originals = _pixels(centre)
    for encoding in ("raw", "htj2k"):
        resp = _bundle(centre, encoding)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/vnd.wanying")
        body = resp.content
        header = parse_prefix(body)
        assert header["encoding"] == encoding and len(header["instances"]) == len(originals)
        assert [m["00080018"]["Value"][0] for m in header["metadata"]] == [i["sop_uid"] for i in header["instances"]]
        z = [float(m["00200032"]["Value"][2]) for m in header["metadata"]]
        assert z == sorted(z)  # slice order along the normal
        for n, entry in enumerate(header["instances"]):
            off, length = entry["frames"][0]
            start = header["data_offset"] + off
            np.testing.assert_array_equal(frame_array(header, n, body[start:start + length]),
                                          originals[entry["sop_uid"]])
    assert len(_bundle(centre, "htj2k").content) < len(_bundle(centre, "raw").content)


def test_range_requests_and_etag_revalidation(centre):
    full = _bundle(centre)
    etag = full.headers["etag"]
    assert full.headers["accept-ranges"] == "bytes" and "no-cache" in full.headers["cache-control"]
    part = _bundle(centre, headers={"Range": "bytes=100-4195"})
    assert part.status_code == 206
    assert part.content == full.content[100:4196]
    assert part.headers["content-range"] == f"bytes 100-4195/{len(full.content)}"
    tail = _bundle(centre, headers={"Range": "bytes=-10"})
    assert tail.content == full.content[-10:]
    assert _bundle(centre, headers={"If-None-Match": etag}).status_code == 304
    with centre.client() as http:
        head = http.head(f"/studies/{centre.study}/series/{centre.series}/bundle")
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(full.content) and not head.content
    assert _bundle(centre, headers={"Range": f"bytes={len(full.content) + 5}-"}).status_code == 416


def test_a_missing_bundle_is_rebuilt_and_a_changed_series_gets_a_new_one(centre, tmp_path):
    from pipelines.dicom.synthetic import ct_series

    paths = ct_series(tmp_path / "s", slices=3, size=32, patient_id="MRN-B1")
    ingest_files(centre.platform, paths)
    ds = pydicom.dcmread(paths[0])
    study, series = ds.StudyInstanceUID, ds.SeriesInstanceUID

    def get():
        with centre.client() as http:
            return http.get(f"/studies/{study}/series/{series}/bundle")

    from pipelines.dicomweb.service import DicomWebService

    [built] = DicomWebService.for_platform(centre.platform).prebuild(study)  # what study completion can call
    first = get()
    assert first.headers["etag"] == built.etag and first.content == built.path.read_bytes()
    bundles = centre.platform.settings.data_dir.resolve() / "derived" / "bundles" / series
    for f in bundles.glob("*.raw.bundle"):
        f.unlink()
    again = get()
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    # a new instance in the series: the bundle is stale, rebuilt with it, the old file removed
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.InstanceNumber = 99
    ds.ImagePositionPatient = [-175.0, -175.0, -500.0]
    ds.save_as(tmp_path / "extra.dcm", enforce_file_format=True)
    ingest_files(centre.platform, [tmp_path / "extra.dcm"])
    newer = get()
    assert newer.headers["etag"] != first.headers["etag"]
    header = parse_prefix(newer.content)
    assert len(header["instances"]) == 4
    assert header["instances"][0]["sop_uid"] == ds.SOPInstanceUID  # lowest z comes first
    assert len(list(bundles.glob("*.raw.bundle"))) == 1


def test_prune_drops_least_recently_used_bundles_which_come_back_on_demand(centre, tmp_path):
    from pipelines.dicom.synthetic import ct_series
    from pipelines.dicomweb.service import DicomWebService

    svc = DicomWebService.for_platform(centre.platform)
    studies = []
    for n in range(2):
        paths = ct_series(tmp_path / f"p{n}", slices=2, size=16, patient_id=f"MRN-P{n}")
        ingest_files(centre.platform, paths)
        studies.append(pydicom.dcmread(paths[0]).StudyInstanceUID)
    [old] = svc.prebuild(studies[0])
    [recent] = svc.prebuild(studies[1])
    import os
    os.utime(old.path, (1, 1))  # used long ago
    everything = sum(p.stat().st_size for p in svc.bundles.root.glob("*/*.bundle"))
    assert svc.bundles.prune(everything - 1) == 1
    assert not old.path.exists() and recent.path.exists()
    assert svc.prebuild(studies[0])[0].path.read_bytes()[:8] == b"WYBUNDL1"
