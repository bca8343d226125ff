"""Operator commands for qc (registered as `wanying qc ...`)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

app = typer.Typer(help="qc commands", no_args_is_help=True)


@app.command("generate")
def generate_cmd(
    folder: Path = typer.Argument(..., help="output folder (DICOM files and labels.csv)"),
    seed: int = typer.Option(0, help="random seed: the same seed gives the same set"),
    per_class: int = typer.Option(3, "--per-class", help="cases per (body part, defect, severity)"),
    workers: int = typer.Option(2, help="processes"),
    real: bool = typer.Option(True, help="include the real CR chest PA from pydicom-data"),
) -> None:
    """Generate the labelled QC set: synthetic phantoms of 12 protocols plus the real chest film, with defects."""
    from qc.synth.generate import generate

    t0 = time.perf_counter()
    n = generate(folder, seed=seed, per_class=per_class, real=real, workers=workers)
    typer.echo(f"qc_generate cases={n} folder={folder} seconds={time.perf_counter() - t0:.1f}")


@app.command("evaluate")
def evaluate_cmd(
    folder: Path = typer.Argument(..., help="folder with DICOM files and labels.csv"),
    workers: int = typer.Option(2, help="processes"),
    min_severity: int = typer.Option(2, help="severities counted as defective for the AUC (2 = moderate and severe)"),
) -> None:
    """Per body part and dimension: AUC (clean vs defective), Spearman (dimension score vs severity), n; then
    body-part accuracy."""
    from qc.evaluate import format_lines, metrics, score_folder

    if not (folder / "labels.csv").exists():
        typer.echo(f"{folder}: no labels.csv (columns file,body_part,dimension,defect,severity)", err=True)
        raise typer.Exit(2)
    cases, scored = score_folder(folder, workers=workers)
    for s in scored:
        if s.error:
            typer.echo(f"qc_eval_error file={s.file} reason={s.error}", err=True)
    lines, accuracy = metrics(cases, scored, min_severity=min_severity)
    for line in format_lines(lines, accuracy):
        typer.echo(line)


@app.command("score")
def score_cmd(
    path: Path = typer.Argument(..., help="a DICOM file, a series folder, or a folder of exams"),
    protocol: str = typer.Option(None, help="force a protocol id instead of detecting the body part"),
) -> None:
    """Score every exam under PATH and print the explained result as JSON."""
    from qc.engine import score_exam
    from qc.exam import discover, load_paths

    exams = discover(path)
    if not exams:
        typer.echo(json.dumps({"path": str(path), "error": "no DICOM files found"}, ensure_ascii=False))
        raise typer.Exit(2)
    out, failed = [], 0
    for paths in exams:
        where = str(paths[0] if len(paths) == 1 else paths[0].parent)
        try:
            result = score_exam(load_paths(paths), protocol).to_dict()
            out.append({"path": where, **result})
        except Exception as e:  # one unreadable exam is reported with its reason, the others still scored
            failed += 1
            out.append({"path": where, "error": f"{type(e).__name__}: {e}"})
    typer.echo(json.dumps(out[0] if len(out) == 1 else out, ensure_ascii=False, indent=2, default=float))
    if failed:
        sys.exit(2)


@app.command("worker")
def worker_cmd(
    until_idle: bool = typer.Option(False, "--until-idle", help="stop once every completed study is scored"),
    batch: int = typer.Option(50, help="log records per poll"),
) -> None:
    """Live QC: score every completed study (StudyCompleted) and append QCScored, until SIGTERM/Ctrl-C."""
    import signal
    import threading

    from qc.worker import worker_for
    from wanying.settings import Settings
    from wanying.wiring import Platform

    platform = Platform(Settings())
    worker = worker_for(platform, batch=batch)
    if until_idle:
        stats = worker.run_until_idle()
    else:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        typer.echo("qc worker: scoring completed studies (Ctrl-C stops)")
        worker.run(stop)
        stats = worker.stats
    platform.close()
    typer.echo(f"qc_worker studies={stats.studies} series_scored={stats.scored} series_skipped={stats.skipped} "
               f"failed={stats.failed}")
