"""Load the demo world into a platform: write the hospitals' DICOM files, then append the world's events.

Idempotent: files already present with the right hash are kept, and events already on the log (same
deterministic ``event_id``) are not appended again; the summary says how many were new.
"""
from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Sequence

from schemas.envelope import Envelope
from schemas.registry import REGISTRY
from streams.log.port import EventLog
from streams.topics import publish
from wanying.demo.dicom_writer import StudyFiles, write_study
from wanying.demo.timeline import world_events
from wanying.demo.world import World, build_world

BATCH = 500


def _progress(enabled: bool):
    if not enabled:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    transient=False)


def write_files(world: World, out: Path, progress=None) -> list[StudyFiles]:
    studies = world.studies()
    task = progress.add_task("写入影像 DICOM", total=len(studies)) if progress else None
    stored = []
    for visit, order, _study in studies:
        stored.append(write_study(out, world.seed, world.hospital(visit.hospital), world.patient(visit.patient_key),
                                  visit, order))
        if progress:
            progress.advance(task)
    return stored


def import_files(platform, world: World, out: Path, stored: Sequence[StudyFiles], progress=None) -> int:
    """Put the files into the lossless store and instance index, as a hospital's archive import would, so the
    DICOMweb API, the viewer and QC serve them. The demo's own timeline already states the facts (StudyReceived,
    StudyCompleted at their historical dates), so this import announces nothing itself. Returns new objects."""
    from pipelines.dicom.ingest import DicomIngest

    ingest = DicomIngest(store=platform.dicom_store, index=platform.dicom_index, dead_letters=platform.dead_letters,
                         keys=platform.keys, publish=lambda _events: None)
    hospital_of = {study.uid: visit.hospital for visit, _order, study in world.studies()}
    task = progress.add_task("导入影像存储", total=sum(len(s.files) for s in stored)) if progress else None
    new = 0
    for study in stored:
        for f in study.files:
            accepted = ingest.receive_file((out / f.path).read_bytes(), hospital=hospital_of[study.study_uid],
                                           source_ae="DEMO_IMPORT")
            new += accepted.outcome.outcome != "duplicate"
            if progress:
                progress.advance(task)
    return new


def append_events(log: EventLog, envelopes: Sequence[Envelope], progress=None) -> tuple[int, int]:
    """Append in batches; returns (new, already present). A record is new if it landed at or past the head
    the partition had just before its batch."""
    task = progress.add_task("写入事件日志", total=len(envelopes)) if progress else None
    new = 0
    for i in range(0, len(envelopes), BATCH):
        batch = envelopes[i : i + BATCH]
        heads = {t: log.end_offsets(t) for t in {REGISTRY.topic_of(e.type) for e in batch}}
        positions = publish(log, batch)
        new += sum(1 for p in positions if p.offset >= heads[p.topic].get(p.partition, 0))
        if progress:
            progress.advance(task, len(batch))
    return new, len(envelopes) - new


class WorldConflict(ValueError):
    """The folder already holds this seed's world rendered at other image sizes (same UIDs, other pixels)."""


def claim_folder(out: Path, world: World) -> None:
    """Record which seed was rendered at which image sizes; refuse to mix two sizes of one seed."""
    marker = out / "worlds.json"
    worlds = json.loads(marker.read_text()) if marker.exists() else {}
    tag = world.plan.tag
    previous = worlds.get(str(world.seed))
    if previous is not None and previous != tag:
        raise WorldConflict(
            f"{out} already holds the demo world of seed {world.seed} with images {previous}; this scale renders "
            f"{tag}. Use the earlier scale, another seed, or a fresh data directory (WANYING_DATA_DIR)."
        )
    if previous is None:
        worlds[str(world.seed)] = tag
        marker.write_text(json.dumps(worlds, indent=1))


def load_demo(platform, *, seed: int = 20261128, scale: float = 1.0, out: Path | None = None,
              progress: bool = False) -> dict[str, Any]:
    """Generate the world for ``seed``/``scale``, write its DICOM files under ``out`` (default DATA_DIR/demo)
    and append its events to ``platform.log``. Returns a JSON-able summary."""
    started = time.perf_counter()
    world = build_world(seed, scale)
    out = Path(out) if out is not None else Path(platform.settings.data_dir) / "demo"
    out.mkdir(parents=True, exist_ok=True)
    claim_folder(out, world)
    with _progress(progress) as bar:
        stored = write_files(world, out, bar)
        imported = import_files(platform, world, out, stored, bar)
        envelopes = world_events(world, platform.keys, {s.study_uid: s for s in stored})
        appended, present = append_events(platform.log, envelopes, bar)
    orders = world.orders()
    return {
        "seed": seed,
        "scale": scale,
        "anchor_date": world.anchor.isoformat(),
        "hospitals": len(world.hospitals),
        "patients": len(world.patients),
        "visits": len(world.visits),
        "orders": len(orders),
        "cancelled_orders": sum(1 for _, o in orders if o.cancelled_at is not None),
        "studies": len(stored),
        "series": sum(len(s.series) for _, _, s in world.studies()),
        "dicom_files": sum(len(s.files) for s in stored),
        "dicom_files_written": sum(s.written for s in stored),
        "bytes": sum(s.total_bytes for s in stored),
        "reports": sum(1 for _, o in orders if o.report is not None),
        "events": len(envelopes),
        "events_appended": appended,
        "events_already_present": present,
        "dicom_dir": str(out),
        "objects_imported": imported,
        "seconds": round(time.perf_counter() - started, 2),
    }
