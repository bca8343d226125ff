"""The live QC edge: score every completed study's series and append one ``QCScored`` per series.

It reads pixels, so it is an edge, not a pure processor. A ``StudyCompleted`` on the log names the study; its
instances come from the platform's lossless store (the instance index says which object holds which instance).
The event id of each score is derived from the study's completion event, the
series and the protocol version, so scoring again (a restart, a batch re-run) never adds a duplicate, and a new
protocol version adds a new score next to the old one.
"""
from __future__ import annotations

import io
import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Protocol

import pydicom

from qc.engine import score_exam
from qc.exam import RADIOGRAPH_MODALITIES, Exam, load_radiograph, load_series
from qc.scoring import QCResult
from schemas.envelope import Envelope, stable_event_id
from schemas.events import QCFailedCheck, QCFailedDataCheck, QCScored
from schemas.registry import REGISTRY
from streams.log.port import EventLog
from streams.study_worker import CompletedStudyWorker
from streams.study_worker import lag as completion_lag

log = logging.getLogger(__name__)
GROUP = "qc-worker"
CHANNEL = "qc"  # dead letters: completions whose images could not be read
Readable = Path | io.BytesIO


@dataclass(frozen=True)
class StudyRef:
    """What QC needs to know about a completed study (from its ``StudyCompleted``, or the ``qc_studies`` view)."""

    study_uid: str
    hospital: str
    person_key: str
    study_date: date | None
    series: tuple[tuple[str, str], ...]  # (series_uid, modality)
    cause_id: uuid.UUID  # the StudyCompleted event

    @classmethod
    def from_envelope(cls, env: Envelope) -> "StudyRef":
        p = env.payload
        return cls(p["study_uid"], p["hospital"], p["person_key"],
                   date.fromisoformat(p["study_date"]) if p.get("study_date") else None,
                   tuple((s["series_uid"], s["modality"]) for s in p["series"]), env.event_id)


# ------------------------------------------------------------------ where the instances are


class InstanceSource(Protocol):
    def series_files(self, study: StudyRef) -> dict[str, list[Readable]]:
        """Per series UID, the study's instances (empty when this source does not hold the study)."""

    def instance(self, study_uid: str, hospital: str, sop_uid: str) -> Readable | None: ...


class StoreSource:
    """The platform's lossless store: current version of every indexed instance."""

    def __init__(self, index, store) -> None:
        self.index, self.store = index, store

    def series_files(self, study: StudyRef) -> dict[str, list[Readable]]:
        out: dict[str, list[Readable]] = {}
        for row in self.index.instances_of(study.study_uid):
            out.setdefault(row.series_uid, []).append(io.BytesIO(self.store.get(row.object_sha256)))
        return out

    def instance(self, study_uid: str, hospital: str, sop_uid: str) -> Readable | None:
        rows = [r for r in self.index.instances_of(study_uid) if r.sop_uid == sop_uid]
        return io.BytesIO(self.store.get(rows[0].object_sha256)) if rows else None


def platform_source(platform) -> StoreSource:
    """The platform's lossless store (the demo world imports its files there too)."""
    return StoreSource(platform.dicom_index, platform.dicom_store)


# ------------------------------------------------------------------ scoring


@dataclass
class Outcome:
    events: list[Envelope] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (series_uid, reason)


def _plain(value: Any) -> Any:
    """JSON-able copy of a measurement location (numpy scalars become numbers)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _sop_at(exam: Exam, where: dict | None) -> str | None:
    if not exam.datasets:
        return None
    if not exam.is_volume:
        return str(exam.datasets[0].get("SOPInstanceUID", "")) or None
    index = None
    if where:
        if isinstance(where.get("slice"), (int, float)):
            index = int(where["slice"])
        elif isinstance(where.get("slices"), list) and where["slices"]:
            index = int(where["slices"][len(where["slices"]) // 2])
    if index is None or not 0 <= index < len(exam.datasets):
        return None
    return str(exam.datasets[index].get("SOPInstanceUID", "")) or None


def _load(files: list[Readable], modality: str) -> list[Exam]:
    """A radiograph series gives one exam per image; a CT/MR series one volume."""
    if modality in RADIOGRAPH_MODALITIES:
        return [load_radiograph(pydicom.dcmread(f), f if isinstance(f, Path) else None) for f in files]
    return [load_series(files)]


def score_series(files: list[Readable], modality: str) -> tuple[QCResult, Exam]:
    """The series' result: for several films, the worst one (a series is as good as its worst image)."""
    scored = [(score_exam(exam), exam) for exam in _load(files, modality)]
    return min(scored, key=lambda pair: pair[0].total)


def scored_event(study: StudyRef, series_uid: str, modality: str, result: QCResult, exam: Exam, *,
                 correlation_id: uuid.UUID | None = None, at: datetime | None = None) -> Envelope:
    failed = []
    for c in result.failed:
        where = _plain(c.where) if c.where else None
        failed.append(QCFailedCheck(id=c.id, dimension=c.dimension, label=c.label, value=c.value,
                                    threshold=c.threshold, fail_at=c.fail_at, direction=c.direction,
                                    score=c.score, where=where or None, sop_uid=_sop_at(exam, where)))
    data_failed = [QCFailedDataCheck(id=d["id"], label=d["label"], detail=d["detail"][:2000])
                   for d in result.data_checks if not d["passed"]]
    middle = len(exam.datasets) // 2
    drawable = [f.sop_uid for f in failed if f.sop_uid and f.where and ("bbox" in f.where or "edge" in f.where)]
    representative = next(iter(drawable), None) or next((f.sop_uid for f in failed if f.sop_uid), None) or _sop_at(
        exam, {"slice": middle} if exam.is_volume else None)
    payload = QCScored(
        study_uid=study.study_uid, series_uid=series_uid, person_key=study.person_key, hospital=study.hospital,
        protocol=result.protocol, protocol_version=result.protocol_version, scores=result.dimensions,
        total=result.total, grade=result.grade, modality=modality, study_date=study.study_date,
        body_part_source=result.body_part_source, sop_uid=representative, failed_checks=failed,
        failed_data_checks=data_failed)
    cause_ms = study.cause_id.int >> 80  # the completion's UUIDv7 time: the same fact gets the same id
    return REGISTRY.new(
        payload, key=study.person_key, source=study.hospital, occurred_at=at or datetime.now(timezone.utc),
        event_id=stable_event_id(cause_ms, "QCScored", study.cause_id, series_uid, result.protocol,
                                 result.protocol_version),
        causation_id=study.cause_id, correlation_id=correlation_id or study.cause_id)


def score_study(study: StudyRef, source: InstanceSource, *, only: Iterable[str] | None = None,
                correlation_id: uuid.UUID | None = None) -> Outcome:
    """Score the study's series (or only the named ones). Series no protocol fits are skipped with the reason.

    Raises ``LookupError`` when no source holds the study's images."""
    files = source.series_files(study)
    if not files:
        raise LookupError(f"no images found for study {study.study_uid} of {study.hospital}")
    wanted = set(only) if only is not None else None
    out = Outcome()
    for series_uid, modality in study.series:
        if wanted is not None and series_uid not in wanted:
            continue
        if series_uid not in files:
            out.skipped.append((series_uid, "no images stored for this series"))
            continue
        try:
            result, exam = score_series(files[series_uid], modality)
        except Exception as exc:  # an unreadable or unrecognised series is skipped with its reason
            out.skipped.append((series_uid, f"{type(exc).__name__}: {exc}"[:500]))
            continue
        out.events.append(scored_event(study, series_uid, modality, result, exam, correlation_id=correlation_id))
    return out


# ------------------------------------------------------------------ the worker


@dataclass
class WorkerStats:
    studies: int = 0
    scored: int = 0
    skipped: int = 0
    failed: int = 0


class QCWorker(CompletedStudyWorker):
    """Scores every completed study and appends one ``QCScored`` per series (ids derived from the completion, the
    series and the protocol version)."""

    group, channel, doing = GROUP, CHANNEL, "QC could not score"

    def __init__(self, event_log: EventLog, source: InstanceSource, dead_letters=None, *, batch: int = 50,
                 group: str = GROUP) -> None:
        super().__init__(event_log, dead_letters, batch=batch, group=group)
        self.source = source
        self.stats = WorkerStats()

    def on_completed(self, completed: Envelope) -> list[Envelope]:
        outcome = score_study(StudyRef.from_envelope(completed), self.source)
        self.stats.studies += 1
        self.stats.scored += len(outcome.events)
        self.stats.skipped += len(outcome.skipped)
        for series_uid, reason in outcome.skipped:
            log.info("QC skipped series %s: %s", series_uid, reason)
        return outcome.events


def worker_for(platform, **kwargs) -> QCWorker:
    return QCWorker(platform.log, platform_source(platform), platform.dead_letters, **kwargs)


def lag(event_log: EventLog, group: str = GROUP) -> int:
    """Records on the log the QC worker has not yet handled (0: every completed study so far is scored)."""
    return completion_lag(event_log, group)
