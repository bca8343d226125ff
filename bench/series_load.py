"""Series load: one 300-slice 512x512 CT stored in our platform and in Orthanc (Debian, DICOMweb plugin), then
loaded both ways, in the same run on loopback, into a client volume (a numpy array of every frame).

    .venv/bin/python bench/series_load.py [--slices 300] [--size 512] [--rounds 5]

Ours: one GET of the series bundle (``/dicomweb/studies/{s}/series/{se}/bundle``, raw frames), the first image
decoded as soon as the header and its bytes have arrived. Orthanc: WADO-RS retrieve of the series (one
multipart/related response of every instance, each part parsed) and frame by frame with 8 concurrent requests,
whichever is faster. Prints (medians of --rounds):

    series_load first_image_ms=<n> volume_s=<n> orthanc_volume_s=<n> ratio=<ours/orthanc>
    series_load bundle=cold first_image_ms=<n> volume_s=<n> first_build_volume_s=<n>
        (bundle file deleted before each round and built from the originals on request; the first round also
        computes every instance's DICOM JSON, later rounds find it in the server's memory)
    series_load cache=cold first_image_ms=<n> volume_s=<n>       (through a hospital cache node, empty each round)
    series_load cache=warm first_image_ms=<n> volume_s=<n>       (through the cache node, already filled)

The servers run in their own processes (uvicorn, 1 worker), the client in this one.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from infra import services  # noqa: E402
from pipelines.dicom.synthetic import ct_series  # noqa: E402
from pipelines.dicomweb.bundle import frame_array, parse_prefix  # noqa: E402
from pipelines.dicomweb.multipart import split_parts  # noqa: E402

HOSPITAL = "AH-HF-001"


# ------------------------------------------------------------------ servers (child processes)


def _run_centre(data_dir: str, port: int) -> None:
    import uvicorn

    from api.app import create_app
    from api.auth import TokenStore
    from wanying.settings import Settings
    from wanying.wiring import Platform

    platform = Platform(Settings(data_dir=Path(data_dir), log_fsync="off"))
    app = create_app(platform, TokenStore.load(Path(data_dir) / "api-tokens.json"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _run_cache(centre_url: str, token: str, tokens_file: str, cache_dir: str, port: int) -> None:
    import uvicorn

    from api.auth import TokenStore
    from pipelines.cache_node.node import CacheNode, NodeConfig, create_cache_app

    node = CacheNode(NodeConfig(centre_url, token, Path(cache_dir), 10 * 1024**3))
    uvicorn.run(create_cache_app(node, TokenStore.load(Path(tokens_file))), host="127.0.0.1", port=port,
                log_level="warning")


def _start(target, *args) -> mp.Process:
    proc = mp.get_context("spawn").Process(target=target, args=args, daemon=True)
    proc.start()
    return proc


def _stop(proc: mp.Process) -> None:
    proc.terminate()
    proc.join(10)


# ------------------------------------------------------------------ clients


def _get(url: str, headers: dict) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"GET {url}: {resp.status} {resp.read()[:300]!r}")
    return resp


def load_bundle(url: str, headers: dict) -> tuple[float, float, np.ndarray]:
    """(first image ms, volume s, volume) for one bundle GET."""
    t0 = time.perf_counter()
    resp = _get(url, headers)
    buf = bytearray(4 << 20)
    view, got = memoryview(buf), 0
    header = None
    while header is None:
        if got == len(buf):  # a header larger than 4 MiB: grow the buffer
            view.release()
            buf.extend(bytes(len(buf)))
            view = memoryview(buf)
        n = resp.readinto(view[got:got + (256 << 10)])
        if not n:
            raise RuntimeError("bundle ended before its header")
        got += n
        header = parse_prefix(view[:got])
    total = header["data_offset"] + header["data_length"]
    big = np.empty(total, dtype=np.uint8)  # not bytearray(total): zero-filling 158 MB costs ~0.1 s
    view = memoryview(big)
    view[:got] = memoryview(buf)[:got]
    off, length = header["instances"][0]["frames"][0]
    first_end = header["data_offset"] + off + length
    first_ms = None
    while got < total:
        step = (256 << 10) if first_ms is None else (8 << 20)  # small reads until the first image is drawn
        n = resp.readinto(view[got:min(total, got + step)])
        if not n:
            raise RuntimeError("bundle truncated")
        got += n
        if first_ms is None and got >= first_end:
            frame_array(header, 0, view[header["data_offset"] + off:first_end])
            first_ms = (time.perf_counter() - t0) * 1000
    if first_ms is None:
        frame_array(header, 0, view[header["data_offset"] + off:first_end])
        first_ms = (time.perf_counter() - t0) * 1000
    e = header["instances"][0]
    data = view[header["data_offset"]:total]
    volume = np.frombuffer(data, dtype="<u2" if e["pixel_representation"] == 0 else "<i2").reshape(
        len(header["instances"]), e["rows"], e["columns"])
    return first_ms, time.perf_counter() - t0, volume


def load_orthanc(url: str) -> tuple[float, np.ndarray]:
    import pydicom

    t0 = time.perf_counter()
    resp = _get(url, {"Accept": 'multipart/related; type="application/dicom"'})
    body = resp.read()
    frames = []
    for part in split_parts(body, resp.getheader("content-type")):
        ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(bytes(part.body)))
        frames.append((int(ds.InstanceNumber), np.frombuffer(ds.PixelData, dtype="<u2").reshape(ds.Rows, ds.Columns)))
    frames.sort(key=lambda f: f[0])
    volume = np.stack([f for _, f in frames])
    return time.perf_counter() - t0, volume


def load_orthanc_frames(base: str, study: str, series: str, workers: int = 8) -> tuple[float, np.ndarray]:
    """The way a viewer loads from a plain DICOMweb server: instance list, then every frame, 8 requests at once."""
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.perf_counter()
    resp = _get(f"{base}/dicom-web/studies/{study}/series/{series}/instances?includefield=00200013",
                {"Accept": "application/dicom+json"})
    items = json.loads(resp.read())
    order = sorted((int(i["00200013"]["Value"][0]), i["00080018"]["Value"][0]) for i in items)

    def frame(sop: str) -> np.ndarray:
        r = _get(f"{base}/dicom-web/studies/{study}/series/{series}/instances/{sop}/frames/1",
                 {"Accept": 'multipart/related; type="application/octet-stream"'})
        [part] = split_parts(r.read(), r.getheader("content-type"))
        return np.frombuffer(part.body, dtype="<u2")

    with ThreadPoolExecutor(workers) as pool:
        frames = list(pool.map(frame, [sop for _, sop in order]))
    volume = np.stack(frames)
    return time.perf_counter() - t0, volume


# ------------------------------------------------------------------ the run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="series-load-"))
    procs: list = []
    orthanc = None
    try:
        paths = ct_series(work / "ct", slices=args.slices, size=args.size)
        import pydicom

        first = pydicom.dcmread(paths[0], stop_before_pixels=True)
        study, series = first.StudyInstanceUID, first.SeriesInstanceUID

        # ours: ingest through the one path, then serve
        from api.auth import TokenStore
        from wanying.settings import Settings
        from wanying.wiring import Platform

        data = work / "centre"
        platform = Platform(Settings(data_dir=data, log_fsync="off"))
        tokens = TokenStore.create_dev(data / "api-tokens.json")
        for p in paths:
            platform.dicom_ingest.receive_file(p.read_bytes(), hospital=HOSPITAL, source_ae="BENCH")
        platform.close()
        port = services.free_port()
        procs.append(_start(_run_centre, str(data), port))
        services.wait_for_port(port, 60)
        centre = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {tokens['doctor']}"}
        bundle_url = f"{centre}/dicomweb/studies/{study}/series/{series}/bundle"

        # Orthanc: the same files over its REST API
        orthanc = services.start_orthanc(work / "orthanc")
        for p in paths:
            c = http.client.HTTPConnection("127.0.0.1", orthanc.http_port)
            c.request("POST", "/instances", body=p.read_bytes(), headers={"Content-Type": "application/dicom"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"Orthanc refused an instance: {r.status}")
        orthanc_url = f"{orthanc.url}/dicom-web/studies/{study}/series/{series}"

        # bundle built from the originals on request (cold): a fresh bundle directory each round
        cold = []
        for _ in range(args.rounds):
            shutil.rmtree(data / "derived" / "bundles", ignore_errors=True)
            cold.append(load_bundle(bundle_url, auth)[:2])
        ours, theirs, reference = [], [], None
        for _ in range(args.rounds):
            first_ms, volume_s, volume = load_bundle(bundle_url, auth)
            ours.append((first_ms, volume_s))
            o_s, o_volume = load_orthanc(orthanc_url)
            f_s, _ = load_orthanc_frames(orthanc.url, study, series)
            theirs.append(min(o_s, f_s))  # Orthanc's better way counts
            print(f"# orthanc series_retrieve_s={o_s:.3f} frames_8_threads_s={f_s:.3f}", file=sys.stderr)
            reference = (volume, o_volume)
        # same pixels both ways (bundle in slice order, Orthanc by InstanceNumber: here both run head to feet)
        vol, o_vol = reference
        if not np.array_equal(np.sort(vol.reshape(len(vol), -1).sum(1)), np.sort(o_vol.reshape(len(o_vol), -1).sum(1))):
            raise RuntimeError("our volume and Orthanc's differ")

        # the hospital cache node in front of the centre
        cache_port = services.free_port()
        cache_dir = work / "cache"
        procs.append(_start(_run_cache, centre, tokens["system"], str(data / "api-tokens.json"), str(cache_dir),
                            cache_port))
        services.wait_for_port(cache_port, 60)
        cache_url = f"http://127.0.0.1:{cache_port}/dicomweb/studies/{study}/series/{series}/bundle"
        cache_cold, cache_warm = [], []
        for _ in range(args.rounds):
            _evict_all(cache_port, tokens["operator"])
            cache_cold.append(load_bundle(cache_url, auth)[:2])
            cache_warm.append(load_bundle(cache_url, auth)[:2])

        med = statistics.median
        first_ms, volume_s = med(o[0] for o in ours), med(o[1] for o in ours)
        orthanc_s = med(theirs)
        print(f"series_load first_image_ms={first_ms:.0f} volume_s={volume_s:.3f} orthanc_volume_s={orthanc_s:.3f} "
              f"ratio={volume_s / orthanc_s:.2f}")
        print(f"series_load bundle=cold first_image_ms={med(c[0] for c in cold):.0f} "
              f"volume_s={med(c[1] for c in cold):.3f} first_build_volume_s={cold[0][1]:.3f}")
        print(f"series_load cache=cold first_image_ms={med(c[0] for c in cache_cold):.0f} "
              f"volume_s={med(c[1] for c in cache_cold):.3f}")
        print(f"series_load cache=warm first_image_ms={med(c[0] for c in cache_warm):.0f} "
              f"volume_s={med(c[1] for c in cache_warm):.3f}")
    finally:
        for p in procs:
            _stop(p)
        if orthanc is not None:
            orthanc.stop()
        shutil.rmtree(work, ignore_errors=True)


def _evict_all(port: int, token: str) -> None:
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("POST", "/cache/evict", body=json.dumps({"all": True}),
              headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        raise RuntimeError(f"cache evict: {r.status}")


if __name__ == "__main__":
    main()
