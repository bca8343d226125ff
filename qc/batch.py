"""Batch QC: re-score a backlog, or every completed study, under the protocol versions in force.

Plans from the ``qc_studies`` and ``qc_scores`` views, scores with the same code as the live worker (so the same
fact gets the same event id and a re-run appends nothing new), and ends with one ``QCBatchCompleted``. The
Airflow DAG ``dags/qc_rescore.py`` is a thin wrapper over these functions.
"""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import Any, Literal

import sqlalchemy as sa

from qc.protocol import load_all
from qc.worker import StudyRef, platform_source, score_study
from schemas.envelope import stable_event_id
from schemas.events import QCBatchCompleted
from schemas.registry import REGISTRY
from streams.processors.qc_views import qc_scores, qc_studies
from streams.topics import publish

Scope = Literal["backlog", "all"]


@dataclass
class Counts:
    studies: int = 0
    series_scored: int = 0
    series_skipped: int = 0
    failures: int = 0

    def add(self, other: dict[str, int]) -> None:
        for k, v in other.items():
            setattr(self, k, getattr(self, k) + v)


def current_versions() -> dict[str, str]:
    return {pid: p.version for pid, p in load_all().items()}


def run_correlation(run_id: str) -> uuid.UUID:
    """One id per batch run: its scores carry it as correlation id, and its ``QCBatchCompleted`` has it as id."""
    return stable_event_id(0, "QCBatchRun", run_id)


def plan(engine, scope: Scope = "backlog", versions: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The studies to score, each with the series that need it (JSON-able, for a task hand-over).

    ``backlog``: series never scored, or whose latest score is under an older version than the one in force.
    ``all``: every series of every completed study."""
    versions = versions or current_versions()
    with engine.connect() as conn:
        series = conn.execute(sa.select(qc_studies).order_by(qc_studies.c.study_uid, qc_studies.c.series_uid)).all()
        scored: dict[str, set[tuple[str, str]]] = {}
        for uid, protocol, version in conn.execute(
                sa.select(qc_scores.c.series_uid, qc_scores.c.protocol, qc_scores.c.protocol_version)):
            scored.setdefault(uid, set()).add((protocol, version))
    studies: dict[str, dict[str, Any]] = {}
    for s in series:
        study = studies.setdefault(s.study_uid, {
            "study_uid": s.study_uid, "hospital": s.hospital, "person_key": s.person_key,
            "study_date": s.study_date, "cause_id": s.completed_event_id, "series": [], "todo": []})
        study["series"].append([s.series_uid, s.modality])
        done = scored.get(s.series_uid, set())
        if scope == "all" or not any(versions.get(protocol) == version for protocol, version in done):
            study["todo"].append(s.series_uid)
    return [study for study in studies.values() if study["todo"]]


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _ref(item: dict[str, Any]) -> StudyRef:
    return StudyRef(item["study_uid"], item["hospital"], item["person_key"],
                    date.fromisoformat(item["study_date"]) if item.get("study_date") else None,
                    tuple((uid, modality) for uid, modality in item["series"]), uuid.UUID(item["cause_id"]))


def score_items(platform, items: list[dict[str, Any]], run_id: str) -> dict[str, int]:
    """Score the planned studies and append their ``QCScored``; returns the counts (JSON-able)."""
    source, counts = platform_source(platform), Counts()
    correlation = run_correlation(run_id)
    for item in items:
        try:
            outcome = score_study(_ref(item), source, only=item["todo"], correlation_id=correlation)
        except (LookupError, ValueError, OSError):
            counts.failures += 1
            continue
        if outcome.events:
            publish(platform.log, outcome.events)
        counts.studies += 1
        counts.series_scored += len(outcome.events)
        counts.series_skipped += len(outcome.skipped)
    return asdict(counts)


def complete(platform, run_id: str, scope: Scope, results: list[dict[str, int]], seconds: float,
             versions: dict[str, str] | None = None) -> dict[str, Any]:
    """Append the run's ``QCBatchCompleted`` (one per run id) and return its payload."""
    total = Counts()
    for r in results:
        total.add(r)
    payload = QCBatchCompleted(run_id=run_id[:64], scope=scope, protocol_versions=versions or current_versions(),
                               seconds=round(max(seconds, 0.0), 3), **asdict(total))
    envelope = REGISTRY.new(payload, key=f"qc-batch:{run_id}"[:128], source="wanying-qc-batch",
                            occurred_at=datetime.now(timezone.utc), event_id=run_correlation(run_id))
    publish(platform.log, [envelope])
    return payload.model_dump(mode="json")


def catch_up_views(platform) -> int:
    """Bring the views up to the log (a batch run plans from them)."""
    return platform.runner().run_until_caught_up()


def run(platform, scope: Scope = "backlog", run_id: str | None = None, chunk: int = 20,
        catch_up: bool = False) -> dict[str, Any]:
    """The whole batch in one call (what the DAG does in tasks)."""
    started = datetime.now(timezone.utc)
    run_id = run_id or f"qc-{started:%Y%m%dT%H%M%S}"
    if catch_up:
        catch_up_views(platform)
    items = plan(platform.views_engine, scope)
    results = [score_items(platform, part, run_id) for part in chunks(items, chunk)]
    return complete(platform, run_id, scope, results, (datetime.now(timezone.utc) - started).total_seconds())
