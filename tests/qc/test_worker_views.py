"""The QC views as pure processors (no log, no database): every score kept, latest by protocol version, aggregates
over the latest score only, a series recognised as another body part under a new version moves, not doubles."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from schemas.events import QCFailedCheck, QCScored
from schemas.registry import REGISTRY
from streams.processors.qc_views import QCScores, QCStats, version_key

PERSON = "b" * 64
T0 = datetime(2026, 10, 1, 8, tzinfo=timezone.utc)


def scored(series: str, protocol: str, version: str, total: float, grade: str, minutes: int, failed=()):
    payload = QCScored(study_uid="1.2.3", series_uid=series, person_key=PERSON, hospital="AH-HF-001",
                       protocol=protocol, protocol_version=version,
                       scores={"coverage": total, "positioning": total, "artefact": total, "clarity": total},
                       total=total, grade=grade, modality="MR", study_date="2026-09-30",
                       failed_checks=[QCFailedCheck(id=c, dimension="artefact", label=f"检查 {c}", value=1.0,
                                                    threshold=0.5, fail_at=2.0, direction="max", score=40.0)
                                      for c in failed])
    return REGISTRY.new(payload, key=PERSON, source="AH-HF-001", occurred_at=T0 + timedelta(minutes=minutes))


def fold(proc, events):
    states = {}
    for e in events:
        key = proc.state_key(e)
        states[key] = proc.evolve(states.get(key, proc.initial()), e)
    return {k: proc.rows(k, s) for k, s in states.items()}


def test_every_version_is_kept_and_the_newest_version_is_latest():
    events = [scored("1.1", "mr_head", "1.10.0", 70, "乙", 5), scored("1.1", "mr_head", "1.9.0", 90, "甲", 9),
              scored("1.1", "mr_head", "1.10.0", 72, "乙", 12)]  # the same version scored again replaces its row
    [rows] = fold(QCScores(), events).values()
    assert sorted((r["protocol_version"], r["total"]) for r in rows["qc_scores"]) == [("1.10.0", 72), ("1.9.0", 90)]
    [latest] = rows["qc_latest"]
    assert (latest["protocol_version"], latest["total"], latest["versions_scored"]) == ("1.10.0", 72, 2)
    assert version_key("1.10.0") > version_key("1.9.0")


def test_aggregates_count_the_latest_score_of_each_series_once():
    events = [scored("1.1", "mr_head", "1.0.0", 60, "废片", 1, failed=["ghosting"]),
              scored("1.2", "mr_head", "1.0.0", 90, "甲", 2),
              scored("1.1", "mr_lumbar", "1.1.0", 80, "乙", 3, failed=["roll", "wrap"])]  # another body part now
    [(key, rows)] = fold(QCStats(), events).items()
    assert key == "AH-HF-001|2026-09|MR"
    grades = {(r["body_part"], r["grade"]): r["series"] for r in rows["qc_grade_stats"]}
    assert grades == {("mr_head", "甲"): 1, ("mr_lumbar", "乙"): 1}
    checks = {(r["body_part"], r["check_id"]): (r["failed"], r["series"]) for r in rows["qc_check_stats"]}
    assert checks == {("mr_lumbar", "roll"): (1, 1), ("mr_lumbar", "wrap"): (1, 1)}
