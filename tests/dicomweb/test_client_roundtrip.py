"""The reference client (dicomweb-client) against our server: search, retrieve, frames, lossless transcodes."""
from __future__ import annotations

import hashlib

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from pipelines.dicomweb.multipart import split_parts
from pipelines.dicomweb.transfer import HTJ2K_LOSSLESS, JPEGLS_LOSSLESS


@pytest.fixture
def dw(centre):
    return DICOMwebClient(url=f"{centre.url}/dicomweb", headers=centre.auth("doctor"))


def _originals(centre) -> dict[str, pydicom.Dataset]:
    return {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(p) for p in centre.paths)}


def test_search_calls_find_the_study_series_and_instances(dw, centre):
    studies = dw.search_for_studies(search_filters={"PatientID": "MRN-CT-77"})
    assert [s["0020000D"]["Value"][0] for s in studies] == [centre.study]
    assert studies[0]["00201208"]["Value"] == [len(centre.paths)]
    series = dw.search_for_series(study_instance_uid=centre.study)
    assert [s["0020000E"]["Value"][0] for s in series] == [centre.series]
    instances = dw.search_for_instances(study_instance_uid=centre.study, series_instance_uid=centre.series)
    assert {i["00080018"]["Value"][0] for i in instances} == set(_originals(centre))


def test_retrieved_series_is_byte_identical_to_the_originals(dw, centre):
    originals = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p.read_bytes() for p in centre.paths}
    datasets = dw.retrieve_series(centre.study, centre.series)
    assert {ds.SOPInstanceUID for ds in datasets} == set(originals)
    for ds in datasets:
        assert ds.PixelData == pydicom.dcmread(pydicom.filebase.DicomBytesIO(originals[ds.SOPInstanceUID])).PixelData
    # the raw parts, bit for bit
    with centre.client() as http:
        resp = http.get(f"/studies/{centre.study}/series/{centre.series}",
                        headers={"Accept": 'multipart/related; type="application/dicom"'})
    assert resp.status_code == 200
    parts = split_parts(resp.content, resp.headers["content-type"])
    got = sorted(hashlib.sha256(p.body).hexdigest() for p in parts)
    assert got == sorted(hashlib.sha256(b).hexdigest() for b in originals.values())


def test_metadata_has_bulk_data_uris_that_resolve(dw, centre):
    meta = dw.retrieve_series_metadata(centre.study, centre.series)
    assert len(meta) == len(centre.paths)
    uri = meta[0]["7FE00010"]["BulkDataURI"]
    assert uri.startswith(centre.url)
    [data] = dw.retrieve_bulkdata(uri)
    sop = meta[0]["00080018"]["Value"][0]
    assert data == _originals(centre)[sop].PixelData


@pytest.mark.parametrize("media,syntax", [("image/jphc", HTJ2K_LOSSLESS), ("image/jls", JPEGLS_LOSSLESS),
                                          ("application/octet-stream", "1.2.840.10008.1.2.1")])
def test_frames_are_pixel_identical_through_lossless_transcodes(dw, centre, media, syntax):
    import imagecodecs

    originals = _originals(centre)
    sop = sorted(originals)[3]
    if media == "image/jphc":  # dicomweb-client 0.61 does not know HTJ2K's media type yet: ask ourselves
        with centre.client() as http:
            resp = http.get(f"/studies/{centre.study}/series/{centre.series}/instances/{sop}/frames/1",
                            headers={"Accept": f'multipart/related; type="{media}"; transfer-syntax={syntax}'})
        assert resp.status_code == 200 and f'type="{media}"' in resp.headers["content-type"]
        [part] = split_parts(resp.content, resp.headers["content-type"])
        assert part.content_type == f"{media}; transfer-syntax={syntax}"
        frame = bytes(part.body)
    else:
        [frame] = dw.retrieve_instance_frames(centre.study, centre.series, sop, frame_numbers=[1],
                                              media_types=((media, syntax),))
    expected = originals[sop].pixel_array
    if syntax == HTJ2K_LOSSLESS:
        got = imagecodecs.htj2k_decode(frame)
    elif syntax == JPEGLS_LOSSLESS:
        got = imagecodecs.jpegls_decode(frame)
    else:
        got = np.frombuffer(frame, dtype=expected.dtype).reshape(expected.shape)
    assert frame != expected.tobytes() or syntax.endswith(".1.2.1")
    np.testing.assert_array_equal(got, expected)


def test_whole_instance_transcoded_to_htj2k_decodes_to_the_same_pixels(centre):
    originals = _originals(centre)
    sop = sorted(originals)[0]
    with centre.client() as http:
        resp = http.get(f"/studies/{centre.study}/series/{centre.series}/instances/{sop}",
                        headers={"Accept": f'multipart/related; type="application/dicom"; '
                                           f'transfer-syntax={JPEGLS_LOSSLESS}'})
    assert resp.status_code == 200, resp.text
    [part] = split_parts(resp.content, resp.headers["content-type"])
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(bytes(part.body)))
    assert ds.file_meta.TransferSyntaxUID == JPEGLS_LOSSLESS
    np.testing.assert_array_equal(ds.pixel_array, originals[sop].pixel_array)


def test_a_lossy_transfer_syntax_is_refused_with_406(centre):
    sop = sorted(_originals(centre))[0]
    with centre.client() as http:
        resp = http.get(f"/studies/{centre.study}/series/{centre.series}/instances/{sop}/frames/1",
                        headers={"Accept": 'multipart/related; type="image/jpeg"; transfer-syntax=1.2.840.10008.1.2.4.50'})
    assert resp.status_code == 406
    assert "losslessly" in resp.json()["detail"]
