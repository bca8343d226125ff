"""The ``wanying`` command."""
from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

import typer

from wanying.settings import Settings
from wanying.wiring import Platform

app = typer.Typer(help="Wanying 皖影: regional medical-imaging exchange", no_args_is_help=True)
schemas_app = typer.Typer(help="Event schemas", no_args_is_help=True)
views_app = typer.Typer(help="Materialized views", no_args_is_help=True)
dead_app = typer.Typer(help="Dead-letter store", no_args_is_help=True)
recognition_app = typer.Typer(help="Mutual recognition (互认) rules", no_args_is_help=True)
tokens_app = typer.Typer(help="API bearer tokens (only their SHA-256 is stored)", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
app.add_typer(views_app, name="views")
app.add_typer(dead_app, name="deadletters")
app.add_typer(recognition_app, name="recognition")
app.add_typer(tokens_app, name="tokens")


def _register_domain_commands() -> None:
    from interpret.cli import app as interpret_app
    from pipelines.cache_node.cli import app as cache_app
    from pipelines.dicom.cli import app as dicom_app
    from pipelines.hl7.cli import app as hl7_app
    from pipelines.mapping.cli import app as mapping_app
    from qc.cli import app as qc_app

    app.add_typer(interpret_app, name="interpret", help="Report interpretation (marking, OCR)")
    app.add_typer(qc_app, name="qc", help="Image quality control")
    app.add_typer(hl7_app, name="hl7", help="HL7 v2 over MLLP from hospital HIS")
    app.add_typer(cache_app, name="cache", help="Hospital cache node: the same DICOMweb API near the doctors")
    app.add_typer(dicom_app, name="dicom", help="DICOM in: C-STORE SCP, pull from PACS, completion, manifests")
    app.add_typer(mapping_app, name="mapping", help="Exam-code mapping: review, accept, import, export")


_register_domain_commands()


def _platform() -> Platform:
    return Platform(Settings())


@schemas_app.command("export")
def schemas_export(
    out: Path = typer.Option(Path("schemas/json"), help="folder for the JSON Schemas"),
    docs: Path = typer.Option(Path("docs/events.md"), help="event catalog page generated from the schemas"),
) -> None:
    """Write one JSON Schema per event type and regenerate docs/events.md."""
    from schemas.export import export_json_schemas, render_catalog

    written = export_json_schemas(out)
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(render_catalog())
    typer.echo(f"wrote {len(written)} schemas to {out} and the catalog to {docs}")


@views_app.command("rebuild")
def views_rebuild() -> None:
    """Drop every view and rebuild it by replaying the log from the start."""
    platform = _platform()
    n = platform.rebuild_views()
    typer.echo(f"rebuilt views from {n} events: {json.dumps(platform.projector.count_rows())}")


@views_app.command("status")
def views_status() -> None:
    """Row counts, how far the views lag behind the log, and why they must be rebuilt (``stale``, if so)."""
    from api.app import _lag

    platform = _platform()
    typer.echo(json.dumps({"rows": platform.projector.count_rows(), "lag": _lag(platform),
                           "stale": platform.projector.stale()}, ensure_ascii=False))


@views_app.command("rejects")
def views_rejects(limit: int = 100) -> None:
    """Log records the projector set aside because they are not valid events (one JSON line each)."""
    for row in _platform().projector.rejects(limit):
        typer.echo(json.dumps(row, ensure_ascii=False))


@recognition_app.command("reevaluate")
def recognition_reevaluate(
    rules: Path = typer.Option(None, help="rule file to apply (default: the one in force, see "
                                          "WANYING_RECOGNITION_RULES_FILE)"),
    out: Path = typer.Option(None, help="write every ordered item as CSV (UTF-8 with BOM, opens in Excel)"),
) -> None:
    """Replay the log's orders and decisions under a rule file and compare with the live views: which items would
    get other candidates, and which 已互认 are no longer justified. Writes nothing to the log or the views."""
    import contextlib
    import csv

    from schemas.recognition_rules import load_rules
    from streams.reevaluate import COLUMNS, reevaluate

    platform = _platform()
    ruleset = load_rules(rules) if rules else platform.rules
    counts = dict.fromkeys(("items", "changed", "accepted", "accepted_no_longer_valid"), 0)
    with contextlib.ExitStack() as files:
        writer = None
        if out:
            writer = csv.DictWriter(files.enter_context(out.open("w", newline="", encoding="utf-8-sig")),
                                    fieldnames=COLUMNS)
            writer.writeheader()
        for review in reevaluate(platform.log, ruleset, platform.projector.engine):
            counts["items"] += 1
            counts["changed"] += review.changed
            counts["accepted"] += review.decision == "accepted"
            counts["accepted_no_longer_valid"] += review.accepted_still_valid is False
            if writer:
                writer.writerow(review.as_row())
    versions = ",".join(v.version for v in ruleset.versions)
    typer.echo("reevaluated " + " ".join(f"{k}={v}" for k, v in counts.items()) + f" rule_versions={versions}")


@tokens_app.command("issue")
def tokens_issue(
    role: str = typer.Option(..., help="operator | doctor | patient | regulator | system | share"),
    name: str = typer.Option(..., help="who holds it: a doctor's HIS id, a node's name; shown in audit events"),
    hospital: str = typer.Option(None, help="the hospital a doctor or system token belongs to"),
    person_key: str = typer.Option(None, help="patient tokens: whose studies (POST /api/v1/persons/key)"),
    study: list[str] = typer.Option(None, help="share tokens: a study it opens (repeat the option)"),
    days: float = typer.Option(None, help="valid for this many days (share tokens: required)"),
) -> None:
    """Add a token to the token file and print it once (the file keeps only its hash; restart the API to load it)."""
    from api.auth import ROLES, Principal, issue_token

    problem = (f"unknown role {role!r} (one of {', '.join(ROLES)})" if role not in ROLES
               else "a patient token needs --person-key" if role == "patient" and not person_key
               else "a share token needs --study and --days" if role == "share" and not (study and days)
               else "a doctor or system token needs --hospital" if role in ("doctor", "system") and not hospital
               else None)
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    principal = Principal(name, role, hospital, person_key, frozenset(study) if study else None,
                          time.time() + days * 86400 if days else None)
    typer.echo(issue_token(Settings().resolved_tokens_file(), principal))


@dead_app.command("list")
def dead_list(channel: str = typer.Option(None), limit: int = 50) -> None:
    """Open dead letters, one JSON line each."""
    for d in _platform().dead_letters.list(channel=channel, limit=limit):
        typer.echo(json.dumps({"id": d.id, "received_at": d.received_at, "channel": d.channel,
                               "source": d.source, "reason": d.reason, "size": d.size}, ensure_ascii=False))


@dead_app.command("replay")
def dead_replay(letter_id: str) -> None:
    """Submit a dead letter's original bytes again (after the cause was fixed)."""
    from pipelines.intake import Rejected

    from pipelines.his_json.replay import CHANNELS as HIS_CHANNELS
    from pipelines.his_json.replay import his_replayer

    platform = _platform()
    letter = platform.dead_letters.get(letter_id)
    if letter is None or letter.status != "open":
        typer.echo(f"no open dead letter {letter_id} (see `wanying deadletters list`)", err=True)
        raise typer.Exit(2)
    if letter.channel in HIS_CHANNELS:
        handler = his_replayer(letter.channel, platform.log, platform.keys, mappings=platform.exam_mappings)
    elif letter.channel == platform.intake.channel:
        handler = lambda body, source: platform.intake.submit(body, source, file_rejects=False)  # noqa: E731
    else:
        typer.echo(f"channel {letter.channel!r} is replayed by its own listener, not here", err=True)
        raise typer.Exit(2)
    try:
        positions = platform.dead_letters.replay(letter_id, handler)
    except Rejected as exc:
        typer.echo(f"still rejected, the letter stays open: {exc.reason}", err=True)
        raise typer.Exit(1) from None
    except (ValueError, KeyError) as exc:
        typer.echo(f"still rejected, the letter stays open: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"replayed {letter_id}: {len(positions)} event(s) appended")


@app.command()
def demo(
    seed: int = typer.Option(20261128, help="same seed, same world"),
    scale: float = typer.Option(1.0, help="multiplies patients, visits and image sizes"),
    out: Path = typer.Option(None, help="folder for DICOM files (default: DATA_DIR/demo)"),
) -> None:
    """Generate the demo world and load its events (idempotent: loading twice adds nothing)."""
    from wanying.demo import load_demo

    platform = _platform()
    summary = load_demo(platform, seed=seed, scale=scale, out=out, progress=True)
    typer.echo(json.dumps(summary, ensure_ascii=False))


@app.command()
def run(
    demo_data: bool = typer.Option(True, "--demo/--no-demo", help="load the demo world on start"),
    seed: int = 20261128,
    scale: float = 1.0,
) -> None:
    """Start the embedded platform: log, processors, projector and API. Ctrl-C stops it cleanly."""
    import uvicorn

    from api.app import create_app
    from api.auth import TokenStore

    settings = Settings()
    platform = Platform(settings)
    _refuse_stale_views(platform)
    tokens_file = settings.resolved_tokens_file()
    if not tokens_file.exists():
        TokenStore.create_dev(tokens_file)
    dev_tokens_file = tokens_file.with_name("dev-tokens.json")
    dev_tokens = json.loads(dev_tokens_file.read_text()) if dev_tokens_file.exists() else {}

    stop = threading.Event()
    runner = platform.runner()
    worker = threading.Thread(target=runner.run, args=(stop,), name="projector", daemon=True)
    worker.start()
    from qc.worker import worker_for

    qc_worker = threading.Thread(target=worker_for(platform).run, args=(stop,), name="qc-worker", daemon=True)
    qc_worker.start()
    from pipelines.dicomweb.prebuild import prebuilder_for

    prebuild = threading.Thread(target=prebuilder_for(platform).run, args=(stop,), name="bundle-prebuild", daemon=True)
    prebuild.start()
    if demo_data:
        from wanying.demo import load_demo

        summary = load_demo(platform, seed=seed, scale=scale, out=None, progress=True)
        typer.echo(f"demo world: {json.dumps(summary, ensure_ascii=False)}")

    base = f"http://{settings.api_host}:{settings.api_port}"
    operator = dev_tokens.get("operator", "<an operator token>")
    pages = _demo_pages(base, dev_tokens, seed, scale) if demo_data and dev_tokens else []
    banner = [
        "\n皖影 Wanying is running (embedded runtime)",
        f"  health     {base}/health",
        f"  readiness  {base}/ready",
        f"  API docs   {base}/docs",
        f"  stats      {base}/api/v1/stats   (Authorization: Bearer {operator})",
        *pages,
        f"  data       {settings.data_dir.resolve()}",
        *([f"  demo tokens per role are in {dev_tokens_file}"] if dev_tokens else []),
        "Press Ctrl-C to stop.\n",
    ]
    server = uvicorn.Server(uvicorn.Config(create_app(platform, TokenStore.load(tokens_file)),
                                           host=settings.api_host, port=settings.api_port, log_level="warning"))
    threading.Thread(target=_announce_when_serving, args=(server, banner), name="banner", daemon=True).start()
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled; stopping on request is a clean exit
        pass
    finally:
        stop.set()
        worker.join(timeout=10)
        qc_worker.join(timeout=30)
        prebuild.join(timeout=30)
        platform.close()
        if server.started:
            typer.echo("stopped cleanly")
        else:
            typer.echo(f"could not serve on {settings.api_host}:{settings.api_port} (in use? set WANYING_API_PORT)",
                       err=True)
    if not server.started:
        raise typer.Exit(1)


def _demo_pages(base: str, tokens: dict[str, str], seed: int, scale: float) -> list[str]:
    """Links to the pages with the demo tokens (in the fragment: never sent to the server, never logged)."""
    from wanying.demo import build_world

    world = build_world(seed, scale)
    repeat = [(v, s) for v, _o, s in world.studies() if v.patient_key == world.repeat_patient
              and any(p.modality == "CT" for p in s.series)]
    viewer = f"{base}/app/viewer.html?study={repeat[-1][1].uid}"
    if len(repeat) > 1:
        viewer += f"&prior={repeat[-2][1].uid}"
    studies = f"{base}/app/studies.html?patient={repeat[-1][0].mrn}"
    return [
        f"  viewer     {viewer}#token={tokens['doctor']}",
        f"  studies    {studies}#token={tokens['doctor']}",
        f"  plugin     {base}/app/plugin.html#token={tokens['doctor']}",
        f"  QC board   {base}/app/qc.html#token={tokens['regulator']}",
        f"  互认统计   {base}/app/recognition.html#token={tokens['regulator']}",
        f"  report AI  {base}/app/interpret.html#token={tokens['patient']}",
    ]


def _announce_when_serving(server, lines: list[str], timeout: float = 600) -> None:
    """Print the URLs once the port is bound, not before: a banner for a server that failed would mislead."""
    deadline = time.monotonic() + timeout
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if server.started:
        typer.echo("\n".join(lines))


def _refuse_stale_views(platform: Platform) -> None:
    """Stop with the reason and the fix, not a traceback, when the views were built by other processor versions."""
    from streams.views.projector import StaleViews

    try:
        platform.projector.check_current()
    except StaleViews as exc:
        typer.echo(f"wanying: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def worker(loglevel: str = typer.Option("info", help="Faust worker log level")) -> None:
    """Run the stream processors without the API until SIGTERM: Faust agents on Kafka, the embedded runner on
    SQLite (per WANYING_LOG_BACKEND)."""
    settings = Settings()
    platform = Platform(settings)
    _refuse_stale_views(platform)
    if settings.log_backend == "kafka":
        from streams.runtime.faust_app import FaustSettings, create_runtime

        faust_settings = FaustSettings(
            bootstrap=settings.kafka_bootstrap, prefix=settings.kafka_topic_prefix, app_id=settings.faust_app_id,
            data_dir=settings.data_dir / "faust", session_timeout=settings.broker_session_timeout,
            batch=settings.worker_batch, topics=platform.topics(),
        )
        create_runtime(faust_settings, platform.projector, platform.log).run_worker(loglevel)
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runner = platform.runner()
    runner.batch = settings.worker_batch
    typer.echo(f"embedded worker: projecting {', '.join(platform.topics())} into {settings.resolved_views_url()}")
    runner.run(stop)
    platform.close()


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app()


if __name__ == "__main__":
    main()
