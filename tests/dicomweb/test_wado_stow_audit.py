"""Rendered images, STOW-RS with refusals kept as dead letters, roles, and one audit event per read request."""
from __future__ import annotations

import io

import pydicom
from PIL import Image

from pipelines.dicom.synthetic import ct_series
from pipelines.dicomweb.multipart import Part, frame_parts


def _sop(centre) -> str:
    return pydicom.dcmread(centre.paths[5], stop_before_pixels=True).SOPInstanceUID


def test_rendered_jpeg_png_window_presets_and_thumbnails(centre):
    base = f"/studies/{centre.study}/series/{centre.series}/instances/{_sop(centre)}"
    with centre.client() as http:
        jpeg = http.get(f"{base}/rendered", params={"window": "40,400"})
        assert jpeg.headers["content-type"] == "image/jpeg"
        img = Image.open(io.BytesIO(jpeg.content))
        assert img.size == (64, 64) and img.mode == "L"
        lung = Image.open(io.BytesIO(http.get(f"{base}/rendered", params={"preset": "lung"},
                                              headers={"Accept": "image/png"}).content))
        assert lung.format == "PNG"
        # air (-1000 HU) is black under the soft-tissue window, dark grey (not black) under the lung window
        assert img.getpixel((0, 0)) < 10 and 10 < lung.getpixel((0, 0)) < 120
        thumb = Image.open(io.BytesIO(http.get(f"/studies/{centre.study}/series/{centre.series}/thumbnail",
                                               params={"viewport": "32,32"}).content))
        assert thumb.size == (32, 32)
        assert http.get(f"{base}/rendered", params={"preset": "nope"}).status_code == 400
        assert http.get(f"{base}/frames/2/rendered").status_code == 404


def test_stow_round_trip_with_a_refused_part_kept_as_dead_letter(centre, tmp_path):
    paths = ct_series(tmp_path / "stow", slices=2, size=16, patient_id="MRN-STOW")
    body = b"".join(frame_parts([Part("application/dicom", p.read_bytes()) for p in paths] +
                                [Part("application/dicom", b"not dicom at all")], "b0und"))
    ctype = 'multipart/related; type="application/dicom"; boundary=b0und'
    with centre.client("system") as http:
        resp = http.post("/studies", content=body, headers={"Content-Type": ctype})
        assert resp.status_code == 202, resp.text
        doc = resp.json()
        assert len(doc["00081199"]["Value"]) == 2
        [failed] = doc["00081198"]["Value"]
        assert failed["00081197"]["Value"] == [0xC000] and "DICM" in failed["00000902"]["Value"][0]
        letter = failed["00000902"]["Value"][0].rsplit("dead letter ", 1)[1].rstrip(")")
        assert centre.platform.dead_letters.get(letter).body == b"not dicom at all"
        url = doc["00081199"]["Value"][0]["00081190"]["Value"][0]
        got = http.get(url, headers={"Accept": 'multipart/related; type="application/dicom"'})
        assert got.status_code == 200 and paths[0].read_bytes() in got.content or paths[1].read_bytes() in got.content
        # all refused -> 409; wrong study in the URL -> refused with a reason
        other = http.post("/studies/1.2.3.4", content=body, headers={"Content-Type": ctype})
        assert other.status_code == 409
        assert "not to 1.2.3.4" in other.json()["00081198"]["Value"][0]["00000902"]["Value"][0]
        assert http.post("/studies", content=b"x", headers={"Content-Type": "application/json"}).status_code == 415


def test_roles(centre):
    path = f"/studies/{centre.study}/series/{centre.series}/metadata"
    with centre.client("doctor") as http:
        assert http.get(path, headers={"Authorization": ""}).status_code == 401
    for role, status in (("doctor", 200), ("regulator", 200), ("operator", 200), ("system", 200),
                         ("patient", 404)):  # a patient token sees only its own person's studies (test_scopes.py)
        with centre.client(role) as http:
            assert http.get(path).status_code == status, role
    with centre.client("regulator") as http:  # read-only
        resp = http.post("/studies", content=b"--x--", headers={"Content-Type": "multipart/related; boundary=x"})
        assert resp.status_code == 403
    with centre.client("doctor") as http:
        assert http.post("/studies", content=b"--x--",
                         headers={"Content-Type": "multipart/related; boundary=x"}).status_code == 403


def test_one_study_viewed_per_request_however_many_frames(centre):
    sop = _sop(centre)
    seen = {e.event_id for e in centre.events("StudyViewed")}
    with centre.client("doctor") as http:
        r = http.get(f"/studies/{centre.study}/series/{centre.series}/instances/{sop}/frames/1",
                     headers={"Accept": 'multipart/related; type="application/octet-stream"'})
        assert r.status_code == 200
        http.get(f"/studies/{centre.study}/series/{centre.series}/bundle")
    views = [e for e in centre.events("StudyViewed") if e.event_id not in seen]
    assert len(views) == 2
    assert {v.payload["study_uid"] for v in views} == {centre.study}
    assert {v.payload["role"] for v in views} == {"doctor"}
    assert views[0].payload["person_key"] == centre.platform.dicom_index.study(centre.study).person_key
    # a cache node's fill is recorded, but not as somebody viewing the study
    fills = {e.event_id for e in centre.events("RecordAccessed")}
    with centre.client("system") as http:
        http.get(f"/studies/{centre.study}/series/{centre.series}/metadata")
    assert len(centre.events("StudyViewed")) == len(seen) + 2
    [fill] = [e for e in centre.events("RecordAccessed") if e.event_id not in fills]
    assert fill.payload["resource"].startswith("dicomweb:cache-fill") and fill.payload["role"] == "system"
