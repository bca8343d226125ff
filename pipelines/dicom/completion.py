"""When is a study complete? Reconcile what the source says it has with what arrived; fall back to a timer.

:func:`decide` is pure: given what we know of a study and the time, it says whether to announce it complete now.
:class:`CompletionDriver` applies it to the index: it asks expected-count sources (C-FIND
NumberOfStudyRelatedInstances, Orthanc statistics, the count in an order or report), builds the manifest, emits
``StudyCompleted`` once per manifest and records the completion. A late instance sets the study back to
``reopened`` (see :mod:`pipelines.dicom.ingest`, which emits ``StudyReopened``) and the next completion carries the
new manifest hash.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Literal, Sequence

from pipelines.storage.index import InstanceIndex
from pipelines.storage.manifest import build_manifest
from schemas.envelope import Envelope
from schemas.events import SeriesSummary, StudyCompleted
from schemas.registry import REGISTRY

log = logging.getLogger(__name__)

# Expected-count sources, most authoritative first: a PACS's own count beats an order's.
SOURCE_RANK = {"orthanc": 0, "c-find": 1, "report": 2, "order": 3}


@dataclass(frozen=True)
class CompletionPolicy:
    stable_age: timedelta = timedelta(seconds=60)  # no count known: quiet this long means complete
    max_wait: timedelta = timedelta(hours=6)  # a count known but short: give up waiting after this long


@dataclass(frozen=True)
class StudyState:
    status: Literal["open", "completed", "reopened"]
    received: int
    expected: int | None
    last_received_at: datetime
    manifest_sha256: str
    completed_manifest_sha256: str | None = None


@dataclass(frozen=True)
class Decision:
    complete: bool
    reason: str


def decide(state: StudyState, now: datetime, policy: CompletionPolicy = CompletionPolicy()) -> Decision:
    if state.status == "completed":
        return Decision(False, "already completed")
    if state.completed_manifest_sha256 == state.manifest_sha256:
        return Decision(False, "nothing changed since the last completion")
    quiet = now - state.last_received_at
    if state.expected is not None:
        if state.received >= state.expected:
            surplus = state.received - state.expected
            extra = f" ({surplus} more than announced)" if surplus else ""
            return Decision(True, f"all {state.expected} announced instances arrived{extra}")
        if quiet >= policy.max_wait:
            return Decision(True, f"only {state.received} of {state.expected} instances after waiting {quiet}; "
                                  "completing with what arrived")
        return Decision(False, f"{state.received} of {state.expected} instances")
    if quiet >= policy.stable_age:
        return Decision(True, f"no count announced; no new instance for {quiet}")
    return Decision(False, f"no count announced; waiting for {policy.stable_age} of quiet")


ExpectedSource = Callable[[str], "tuple[int, str] | None"]  # study UID -> (count, source name)


class CompletionDriver:
    def __init__(self, index: InstanceIndex, publish: Callable[[Sequence[Envelope]], object], *,
                 policy: CompletionPolicy = CompletionPolicy(), sources: Sequence[ExpectedSource] = ()) -> None:
        self.index, self.publish, self.policy, self.sources = index, publish, policy, list(sources)

    def expect(self, study_uid: str, count: int, source: str) -> None:
        """Record an announced instance count unless a more authoritative source already gave one."""
        row = self.index.study(study_uid)
        if row is None:
            return
        if row.expected_source and SOURCE_RANK.get(row.expected_source, 9) < SOURCE_RANK.get(source, 9):
            return
        self.index.set_expected(study_uid, count, source)

    def tick(self, now: datetime | None = None) -> list[Envelope]:
        """Check every open or re-opened study once; returns the StudyCompleted events emitted."""
        now = now or datetime.now(timezone.utc)
        emitted = []
        for study in self.index.studies_in("open", "reopened"):
            for source in self.sources:
                try:
                    found = source(study.study_uid)
                except Exception as exc:  # a PACS that does not answer must not stop completion of others
                    log.warning("expected-count source failed for a study: %s", exc)
                    continue
                if found:
                    self.expect(study.study_uid, *found)
            study = self.index.study(study.study_uid)
            rows = self.index.instances_of(study.study_uid)
            manifest = build_manifest(study.study_uid, rows)
            last = max((r.received_at for r in rows), default=study.last_received_at)
            state = StudyState(study.status, len(rows), study.expected_instances,
                               datetime.fromisoformat(last), manifest.sha256,
                               study.completed_manifest_sha256)
            decision = decide(state, now, self.policy)
            if not decision.complete:
                continue
            event = self._event(study, rows, manifest, now)
            self.publish([event])
            self.index.mark_completed(study.study_uid, manifest.sha256, now.isoformat())
            log.info("study completed: %s", decision.reason)
            emitted.append(event)
        return emitted

    @staticmethod
    def _event(study, rows, manifest, now: datetime) -> Envelope:
        series: dict[str, list] = {}
        for r in rows:
            series.setdefault(r.series_uid, []).append(r)
        summaries = [SeriesSummary(series_uid=uid, modality=items[0].modality or "OT", instance_count=len(items))
                     for uid, items in sorted(series.items())]
        study_date = date.fromisoformat(study.study_date) if study.study_date else \
            datetime.fromisoformat(study.first_received_at).date()  # no StudyDate: the day it reached us
        payload = StudyCompleted(
            hospital=study.hospital, study_uid=study.study_uid, person_key=study.person_key,
            accession_number=study.accession_number, study_date=study_date,
            modalities=sorted({s.modality for s in summaries}), description=study.description,
            series=summaries, instance_count=len(rows), total_bytes=manifest.total_bytes,
            manifest_sha256=manifest.sha256,
        )
        return REGISTRY.new(payload, key=study.person_key, source=study.hospital, occurred_at=now)
