"""Ingest throughput: the same 300-slice 512x512 CT series sent with dcmtk ``storescu`` to our C-STORE SCP and to
Orthanc (Debian), in the same run, on loopback.

    .venv/bin/python bench/ingest.py [--slices 300] [--rounds 3]

Prints ``ingest ours_mb_s=<n> orthanc_mb_s=<n> ratio=<ours/orthanc>`` (median of ``--rounds`` per side, fresh stores
each round), ours in its default durability mode (fsync batched every 50 ms and before the association's release
is confirmed, see pipelines/dicom/scp.py); a comment line on stderr gives ours with an fsync before every status
(``fsync=each``), which is what Orthanc's default SyncStorageArea does. The second line,
``ingest stow_mb_s=<n>``, is our STOW-RS endpoint (uvicorn, 50 instances per request, everything fsynced before
each answer).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra import services  # noqa: E402
from pipelines.crypto import Keyring  # noqa: E402
from pipelines.deadletter import DeadLetterStore  # noqa: E402
from pipelines.dicom.ingest import DicomIngest  # noqa: E402
from pipelines.dicom.peers import PeerRegistry  # noqa: E402
from pipelines.dicom.scp import ScpConfig, StoreScp  # noqa: E402
from pipelines.dicom.synthetic import ct_series  # noqa: E402
from pipelines.storage.index import InstanceIndex  # noqa: E402
from pipelines.storage.objects import open_store  # noqa: E402
from streams.log.sqlite import SqliteLog  # noqa: E402
from streams.topics import create_topics, publish  # noqa: E402
from wanying.wiring import make_engine  # noqa: E402

CALLING_AE = "STORESCU"


def send(files: list[Path], port: int, called_ae: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        ["storescu", "-aet", CALLING_AE, "-aec", called_ae, "127.0.0.1", str(port), *map(str, files)],
        env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True, text=True, timeout=600,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or "Failed" in result.stderr or "Error" in result.stderr:
        raise RuntimeError(f"storescu failed ({result.returncode}): {result.stderr[-800:]}")
    return elapsed


def ours_once(files: list[Path], work: Path, fsync: str = "batch") -> tuple[float, int]:
    work.mkdir(parents=True)
    log = SqliteLog(work / "log.sqlite")
    create_topics(log)
    ingest = DicomIngest(
        store=open_store(str(work / "objects"), fsync=fsync),
        index=InstanceIndex(make_engine(f"sqlite:///{work}/index.sqlite")),
        publish=lambda events: publish(log, events),
        dead_letters=DeadLetterStore(make_engine(f"sqlite:///{work}/deadletters.sqlite")),
        keys=Keyring.generate(),
    )
    scp = StoreScp(ingest, ScpConfig(port=0, peers=PeerRegistry.from_mapping({"BENCH": {"calling_aes": [CALLING_AE]}})))
    port = scp.start()
    try:
        elapsed = send(files, port, "WANYING")
    finally:
        scp.stop()
        log.close()
    return elapsed, ingest.counts["stored"]


def stow_once(files: list[Path], work: Path, batch: int = 50) -> tuple[float, int]:
    """POST the series to our STOW-RS endpoint (uvicorn on loopback), ``batch`` instances per request."""
    import threading
    import uuid

    import httpx
    import uvicorn
    from fastapi import FastAPI

    from pipelines.dicom.stow import make_router

    work.mkdir(parents=True)
    log = SqliteLog(work / "log.sqlite")
    create_topics(log)
    ingest = DicomIngest(
        store=open_store(str(work / "objects"), fsync="batch"),
        index=InstanceIndex(make_engine(f"sqlite:///{work}/index.sqlite")),
        publish=lambda events: publish(log, events),
        dead_letters=DeadLetterStore(make_engine(f"sqlite:///{work}/deadletters.sqlite")),
        keys=Keyring.generate(),
    )
    ingest.start_background_events()
    app = FastAPI()
    app.include_router(make_router(ingest, lambda request: "BENCH"))
    port = services.free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    bodies = []
    for i in range(0, len(files), batch):
        boundary = uuid.uuid4().hex.encode()
        parts = [b"--" + boundary + b"\r\nContent-Type: application/dicom\r\n\r\n" + f.read_bytes() + b"\r\n"
                 for f in files[i:i + batch]]
        bodies.append((b"".join(parts) + b"--" + boundary + b"--\r\n", boundary.decode()))
    try:
        with httpx.Client(timeout=600) as client:
            start = time.perf_counter()
            for body, boundary in bodies:
                response = client.post(f"http://127.0.0.1:{port}/dicom-web/studies", content=body, headers={
                    "content-type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
                if response.status_code != 200:
                    raise RuntimeError(f"STOW-RS answered {response.status_code}: {response.text[:300]}")
            elapsed = time.perf_counter() - start
    finally:
        server.should_exit = True
        thread.join(10)
        ingest.stop_background_events()
        log.close()
    return elapsed, ingest.counts["stored"]


def orthanc_once(files: list[Path], work: Path) -> tuple[float, int]:
    import httpx

    pacs = services.start_orthanc(work)
    try:
        elapsed = send(files, pacs.dicom_port, pacs.aet)
        stored = httpx.get(f"{pacs.url}/statistics").json()["CountInstances"]
    finally:
        pacs.stop()
    return elapsed, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wanying-bench-ingest-"))
    try:
        files = ct_series(root / "series", slices=args.slices)
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        times: dict[str, list[float]] = {"ours": [], "orthanc": [], "ours_strict": [], "stow": []}
        runs = (("ours", ours_once), ("orthanc", orthanc_once),
                ("ours_strict", lambda f, w: ours_once(f, w, fsync="each")), ("stow", stow_once))
        for r in range(args.rounds):
            for name, run in runs:
                elapsed, stored = run(files, root / f"{name}-{r}")
                if stored != len(files):
                    raise RuntimeError(f"{name} stored {stored} of {len(files)} instances")
                times[name].append(elapsed)
                shutil.rmtree(root / f"{name}-{r}", ignore_errors=True)
        best = {name: statistics.median(t) for name, t in times.items()}
        ours, orthanc = megabytes / best["ours"], megabytes / best["orthanc"]
        strict = megabytes / best["ours_strict"]
        print(f"# {len(files)} instances, {megabytes:.1f} MB, median of {args.rounds}; ours with an fsync before "
              f"every status (fsync=each): {strict:.1f} MB/s, ratio {strict / orthanc:.2f}", file=sys.stderr)
        print(f"ingest ours_mb_s={ours:.1f} orthanc_mb_s={orthanc:.1f} ratio={ours / orthanc:.2f}")
        print(f"ingest stow_mb_s={megabytes / best['stow']:.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
