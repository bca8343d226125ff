"""Batch image QC: re-score the backlog (never scored, or scored under an older protocol version) or every
completed study under the protocol versions in force. Thin tasks over :mod:`qc.batch`; the run ends with a
``QCBatchCompleted`` event, and every score is a ``QCScored`` event next to the older ones.

Trigger with params ``{"scope": "backlog" | "all", "chunk": 20, "catch_up_views": false}``; the platform comes from
``WANYING_*`` settings. The plan reads the views the running platform keeps current; ``catch_up_views`` projects
the log first, for a platform whose runtime is not running (two embedded projectors must not share a SQLite
views database).
"""
from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Param, dag, get_current_context, task


def _platform():
    from wanying.settings import Settings
    from wanying.wiring import Platform

    return Platform(Settings())


@dag(
    dag_id="qc_rescore",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["qc"],
    params={"scope": Param("backlog", enum=["backlog", "all"]), "chunk": Param(20, type="integer", minimum=1),
            "catch_up_views": Param(False, type="boolean")},
    doc_md=__doc__,
)
def qc_rescore():
    @task
    def plan() -> dict:
        from qc import batch

        ctx = get_current_context()
        platform = _platform()
        try:
            if ctx["params"]["catch_up_views"]:
                batch.catch_up_views(platform)
            items = batch.plan(platform.views_engine, ctx["params"]["scope"])
        finally:
            platform.close()
        return {"run_id": ctx["run_id"], "started": datetime.now(timezone.utc).isoformat(),
                "versions": batch.current_versions(),
                "chunks": batch.chunks(items, int(ctx["params"]["chunk"]))}

    @task
    def chunks_of(planned: dict) -> list[dict]:
        return [{"run_id": planned["run_id"], "items": part} for part in planned["chunks"]]

    @task
    def score(work: dict) -> dict:
        from qc import batch

        platform = _platform()
        try:
            return batch.score_items(platform, work["items"], work["run_id"])
        finally:
            platform.close()

    @task
    def complete(planned: dict, results: list[dict]) -> dict:
        from qc import batch

        ctx = get_current_context()
        platform = _platform()
        started = datetime.fromisoformat(planned["started"])
        try:
            return batch.complete(platform, planned["run_id"], ctx["params"]["scope"], list(results),
                                  (datetime.now(timezone.utc) - started).total_seconds(), planned["versions"])
        finally:
            platform.close()

    planned = plan()
    complete(planned, score.expand(work=chunks_of(planned)))


qc_rescore()
