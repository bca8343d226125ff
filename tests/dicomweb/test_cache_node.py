"""The hospital cache node between two real uvicorn servers on loopback."""
from __future__ import annotations

import httpx
import pydicom

from api.app import create_app
from api.auth import TokenStore
from pipelines.cache_node.node import CacheNode, NodeConfig, create_cache_app
from pipelines.cache_node.store import CacheStore
from pipelines.dicom.synthetic import ct_series
from tests.dicomweb.conftest import ingest_files, make_platform, serve


def _events(platform, type_):
    out = []
    for p in range(platform.log.partitions("person")):
        out += [r.envelope() for r in platform.log.read("person", p, 0, 1_000_000)]
    return [e for e in out if e.type == type_]


def test_fill_hit_prefetch_restart_audit_and_offline(tmp_path):
    platform, tokens, tokens_file = make_platform(tmp_path / "centre")
    uids = []
    for n in range(2):
        paths = ct_series(tmp_path / f"ct{n}", slices=4, size=32, patient_id=f"MRN-C{n}")
        ingest_files(platform, paths)
        ds = pydicom.dcmread(paths[0], stop_before_pixels=True)
        uids.append((ds.StudyInstanceUID, ds.SeriesInstanceUID))
    centre = serve(create_app(platform, TokenStore.load(tokens_file)))
    config = NodeConfig(centre.url, tokens["system"], tmp_path / "cache", max_bytes=10**9, audit_interval=3600)
    node = CacheNode(config)
    cache = serve(create_cache_app(node, TokenStore.load(tokens_file)))
    doctor = {"Authorization": f"Bearer {tokens['doctor']}"}
    (s0, se0), (s1, se1) = uids
    bundle0 = f"/dicomweb/studies/{s0}/series/{se0}/bundle"
    try:
        with httpx.Client(base_url=cache.url, headers=doctor, timeout=30) as c, \
                httpx.Client(base_url=centre.url, headers=doctor, timeout=30) as direct:
            truth = direct.get(bundle0).content
            miss = c.get(bundle0)
            assert miss.headers["x-cache"] == "MISS" and miss.content == truth
            hit = c.get(bundle0)
            assert hit.headers["x-cache"] == "HIT" and hit.content == truth and hit.headers["etag"]
            part = c.get(bundle0, headers={"Range": "bytes=10-99"})
            assert part.status_code == 206 and part.content == truth[10:100]
            assert c.get("/dicomweb/studies", params={"PatientID": "MRN-C0"}).json()[0]["0020000D"]["Value"] == [s0]
            assert c.get(bundle0, headers={"Authorization": "Bearer wrong"}).status_code == 401
            index = b"".join(f.read_bytes() for f in (tmp_path / "cache").glob("cache.sqlite*"))
            assert b"MRN-C0" not in index  # the search's query string is kept only as a hash
            # prefetch on request (what reminder / duplicate events will call)
            system = {"Authorization": f"Bearer {tokens['system']}"}
            done = c.post("/cache/prefetch", json={"study_uids": [s1]}, headers=system).json()
            assert done["prefetched"][0]["series"] == 1 and done["prefetched"][0]["bytes"] > 0
            assert c.get(f"/dicomweb/studies/{s1}/series/{se1}/bundle").headers["x-cache"] == "HIT"
            assert c.get(f"/dicomweb/studies/{s1}/series/{se1}/metadata").headers["x-cache"] == "HIT"
        # the doctors' views served from the cache reach the centre as StudyViewed
        seen = {e.event_id for e in _events(platform, "StudyViewed")}
        assert node.flush_views() >= 4
        views = [e for e in _events(platform, "StudyViewed") if e.event_id not in seen]
        assert {v.payload["actor"] for v in views} == {"demo-doctor"} and {v.payload["study_uid"] for v in views} == {
            s0, s1}
        # restart: a new node on the same directory still has everything
        cache.stop()
        node = CacheNode(config)
        cache = serve(create_cache_app(node, TokenStore.load(tokens_file)))
        with httpx.Client(base_url=cache.url, headers=doctor, timeout=30) as c:
            assert c.get(bundle0).headers["x-cache"] == "HIT"
            # the centre goes away: what is cached is still served, read-only
            centre.stop()
            again = c.get(bundle0)
            assert again.status_code == 200 and again.content == truth
            stale = c.get("/dicomweb/studies", params={"PatientID": "MRN-C0"})
            assert stale.status_code == 200 and "Stale" in stale.headers["warning"]
            gone = c.get(f"/dicomweb/studies/{s0}/series/{se0}/instances/{uids[0][0]}/metadata")
            assert gone.status_code == 503 and "not in the hospital cache" in gone.json()["detail"]
            stow = c.post("/dicomweb/studies", content=b"--x--",
                          headers={"Content-Type": "multipart/related; boundary=x"})
            assert stow.status_code == 503 and "read-only" in stow.json()["detail"]
    finally:
        cache.stop()
        centre.stop()
        platform.close()


def test_eviction_by_bytes_least_recently_used_first(tmp_path):
    store = CacheStore(tmp_path, max_bytes=250)
    for key in ("a", "b"):
        store.put_bytes(key, b"x" * 100, status=200, headers={}, study_uid=None)
    store.get("a")  # a is now more recent than b
    store.put_bytes("c", b"x" * 100, status=200, headers={}, study_uid=None)
    assert store.get("b") is None and store.get("a") is not None and store.get("c") is not None
    assert store.total_bytes() == 200 and store.evictions == 1
    # a crash between writing a file and indexing it leaves an orphan, removed at the next start
    (store.blobs / "orphan").write_bytes(b"zz")
    reopened = CacheStore(tmp_path, max_bytes=250)
    assert not (store.blobs / "orphan").exists() and reopened.count() == 2


def test_revalidation_by_etag_and_a_changed_series_refetched(tmp_path):
    platform, tokens, tokens_file = make_platform(tmp_path / "centre")
    paths = ct_series(tmp_path / "ct", slices=2, size=16, patient_id="MRN-R")
    ingest_files(platform, paths)
    ds = pydicom.dcmread(paths[0])
    centre = serve(create_app(platform, TokenStore.load(tokens_file)))
    node = CacheNode(NodeConfig(centre.url, tokens["system"], tmp_path / "cache", fresh_seconds=0,
                                audit_interval=3600))
    cache = serve(create_cache_app(node, TokenStore.load(tokens_file)))
    url = f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/bundle"
    try:
        with httpx.Client(base_url=cache.url, headers={"Authorization": f"Bearer {tokens['doctor']}"}) as c:
            first = c.get(url)
            assert first.headers["x-cache"] == "MISS"
            second = c.get(url)  # not fresh any more: the centre answers 304 to If-None-Match
            assert second.headers["x-cache"] == "HIT" and second.content == first.content
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
            ds.save_as(tmp_path / "new.dcm", enforce_file_format=True)
            ingest_files(platform, [tmp_path / "new.dcm"])
            third = c.get(url)
            assert third.headers["x-cache"] == "MISS" and third.headers["etag"] != first.headers["etag"]
            assert c.get(url).content == third.content
    finally:
        cache.stop()
        centre.stop()
        platform.close()
