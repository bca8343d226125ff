"""``wanying dicom …``: run the C-STORE SCP, pull from a PACS, complete studies, check manifests, replay dead letters.

Stores default to the data dir: objects under ``DATA_DIR/objects`` (``--store-url s3://bucket/prefix`` for S3) and
the instance index in ``DATA_DIR/dicom-index.sqlite`` (``WANYING_DICOM_INDEX_URL`` or ``--index-url`` for
PostgreSQL).
"""
from __future__ import annotations

import json
import logging
import ssl
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import typer

app = typer.Typer(help="DICOM ingest: C-STORE SCP, pull from PACS, study completion", no_args_is_help=True)

STORE_URL = typer.Option(None, "--store-url", help="object store (default: DATA_DIR/objects); s3://bucket/prefix")
INDEX_URL = typer.Option(None, "--index-url", help="instance index database (default: SQLite in DATA_DIR)")


@dataclass
class _Wired:
    platform: object
    ingest: object
    completion: object


def _wire(store_url: str | None, index_url: str | None, fsync: str = "each") -> _Wired:
    from pipelines.dicom.completion import CompletionDriver
    from streams.topics import publish
    from wanying.settings import Settings
    from wanying.wiring import Platform

    settings = Settings()
    overrides = {"dicom_fsync": fsync, "dicom_store_url": store_url, "dicom_index_url": index_url}
    platform = Platform(settings.model_copy(update={k: v for k, v in overrides.items() if v}))
    return _Wired(platform, platform.dicom_ingest,
                  CompletionDriver(platform.dicom_index, lambda events: publish(platform.log, events)))


def _peers(path: Path | None):
    from pipelines.dicom.peers import DEFAULT_PEERS_FILE, PeerRegistry

    return PeerRegistry.load(path or DEFAULT_PEERS_FILE)


@app.command()
def scp(
    ae_title: str = typer.Option("WANYING", help="our AE title (the called AE the hospitals use)"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(11112),
    peers: Path = typer.Option(None, help="hospital directory with the calling AEs (default: schemas/catalogs/hospitals.yaml)"),
    fsync: str = typer.Option("batch", help="batch: fsync every 50 ms and before confirming a release; "
                                            "each: fsync every instance before its success status"),
    tls_cert: Path = typer.Option(None, help="PEM certificate: serve DICOM over TLS"),
    tls_key: Path = typer.Option(None, help="PEM private key of the certificate"),
    store_url: str = STORE_URL,
    index_url: str = INDEX_URL,
) -> None:
    """Run the C-STORE SCP until Ctrl-C."""
    from pipelines.dicom.scp import ScpConfig, StoreScp

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    wired = _wire(store_url, index_url, fsync=fsync)
    tls = None
    if tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(tls_cert, tls_key)
    server = StoreScp(wired.ingest, ScpConfig(ae_title=ae_title, host=host, port=port, peers=_peers(peers), tls=tls))
    typer.echo(f"C-STORE SCP {ae_title} on {host}:{port} ({'TLS' if tls else 'plain'}), fsync={fsync}; Ctrl-C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        typer.echo(json.dumps(wired.ingest.counts))


@app.command("pull-orthanc")
def pull_orthanc(
    url: str = typer.Argument(..., help="Orthanc REST base URL"),
    hospital: str = typer.Option(..., help="hospital code the PACS belongs to"),
    follow: bool = typer.Option(False, help="keep polling (every --interval seconds) instead of stopping when done"),
    interval: float = typer.Option(5.0),
    user: str = typer.Option(None), password: str = typer.Option(None),
    store_url: str = STORE_URL,
    index_url: str = INDEX_URL,
) -> None:
    """Follow an Orthanc PACS's /changes: store each new instance byte for byte, take counts of stable studies."""
    from pipelines.dicom.pull import OrthancPoller

    wired = _wire(store_url, index_url)
    poller = OrthancPoller(url, hospital=hospital, ingest=wired.ingest, completion=wired.completion,
                           auth=(user, password) if user else None)
    try:
        while True:
            typer.echo(json.dumps(poller.poll_until_done()))
            if not follow:
                break
            wired.completion.tick()
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        poller.close()


@app.command("pull-dimse")
def pull_dimse(
    host: str = typer.Option(...), port: int = typer.Option(...),
    called_ae: str = typer.Option(..., help="the PACS's AE title"),
    calling_ae: str = typer.Option("WANYING_QR", help="our AE title for the query"),
    destination_ae: str = typer.Option("WANYING", help="our SCP's AE title, known to the PACS as a move target"),
    start: str = typer.Option(None, "--from", help="first study date, YYYY-MM-DD (default: yesterday)"),
    end: str = typer.Option(None, "--to", help="last study date, YYYY-MM-DD (default: today)"),
    store_url: str = STORE_URL,
    index_url: str = INDEX_URL,
) -> None:
    """C-FIND the studies of a date range and C-MOVE each to our SCP (which must be running)."""
    from pipelines.dicom.pull import PacsPeer

    wired = _wire(store_url, index_url)
    first = date.fromisoformat(start) if start else date.today() - timedelta(days=1)
    last = date.fromisoformat(end) if end else date.today()
    studies = PacsPeer(host, port, called_ae, calling_ae).pull_by_date(first, last, destination_ae,
                                                                       completion=wired.completion)
    for s in studies:
        typer.echo(json.dumps(s.__dict__))


@app.command()
def complete(
    follow: bool = typer.Option(False, help="keep checking every --interval seconds"),
    interval: float = typer.Option(10.0),
    stable_age: float = typer.Option(60.0, help="seconds of quiet that complete a study with no announced count"),
    store_url: str = STORE_URL,
    index_url: str = INDEX_URL,
) -> None:
    """Announce complete studies (StudyCompleted with the manifest hash)."""
    from pipelines.dicom.completion import CompletionPolicy

    wired = _wire(store_url, index_url)
    wired.completion.policy = CompletionPolicy(stable_age=timedelta(seconds=stable_age))
    while True:
        for event in wired.completion.tick():
            typer.echo(json.dumps({"study_uid": event.payload["study_uid"],
                                   "instances": event.payload["instance_count"],
                                   "manifest_sha256": event.payload["manifest_sha256"]}))
        if not follow:
            break
        time.sleep(interval)


@app.command()
def manifest(
    study_uid: str,
    verify: bool = typer.Option(False, help="rebuild it from the stored objects and compare"),
    store_url: str = STORE_URL,
    index_url: str = INDEX_URL,
) -> None:
    """Print a study's manifest (canonical JSON) and its SHA-256."""
    from pipelines.dicom.verify import check_study
    from pipelines.storage.manifest import build_manifest

    wired = _wire(store_url, index_url)
    if verify:
        check = check_study(wired.ingest.index, wired.ingest.store, study_uid)
        typer.echo(json.dumps({"ok": check.ok, "index_sha256": check.from_index.sha256,
                               "storage_sha256": check.from_storage.sha256 if check.from_storage else None,
                               "problems": list(check.problems)}))
        raise typer.Exit(0 if check.ok else 1)
    built = build_manifest(study_uid, wired.ingest.index.instances_of(study_uid))
    typer.echo(built.canonical.decode())
    typer.echo(f"sha256 {built.sha256}", err=True)


@app.command()
def replay(
    letter_id: str = typer.Argument(None, help="one dead letter; omit with --all"),
    all_open: bool = typer.Option(False, "--all", help="every open DICOM dead letter"),
    peers: Path = typer.Option(None, help="calling-AE registry, to place letters from AEs registered since"),
    store_url: str = STORE_URL,
    index_url: str = INDEX_URL,
) -> None:
    """Feed DICOM dead letters to the ingest again (after a fix: hospital registered, data corrected)."""
    from pipelines.dicom.parse import DicomRejected

    wired = _wire(store_url, index_url)
    registry = _peers(peers)
    letters = wired.platform.dead_letters
    ids = [letter_id] if letter_id else [d.id for d in letters.list(channel="dicom", limit=100_000)] if all_open else []
    done = failed = 0
    for lid in ids:
        def handler(body: bytes, source: str):
            hospital, _, ae = source.partition("/")
            hospital = registry.hospital_of(ae) if hospital == "?" else hospital
            if not hospital:
                raise DicomRejected(f"calling AE {ae!r} is still not registered")
            return wired.ingest.receive_file(body, hospital=hospital, source_ae=ae)

        try:
            letters.replay(lid, handler)
            done += 1
        except (DicomRejected, KeyError) as exc:
            failed += 1
            typer.echo(f"{lid}: still rejected: {exc}", err=True)
    typer.echo(json.dumps({"replayed": done, "still_rejected": failed}))
