"""Bundles built ahead of the first view: every ``StudyCompleted`` on the log has its series bundles built now, so
the first doctor to open the study gets the fast path warm (no build on the request).

A consumer in its own group (:class:`streams.study_worker.CompletedStudyWorker`, like the QC worker): it commits
after building, so a crash repeats a build (bundles are written atomically and keyed by the originals' hashes, so
a repeat is a no-op) and never skips one. A completion whose images cannot be read is set aside as a dead letter with the reason and never stops the
worker; a completion for a study this centre holds no images of (announced from elsewhere) is counted and skipped.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipelines.dicomweb.service import DicomWebService, NotFound
from schemas.envelope import Envelope
from streams.log.port import EventLog
from streams.study_worker import CompletedStudyWorker

GROUP = "bundle-prebuild"
CHANNEL = "bundle-prebuild"  # dead letters: completions whose bundles could not be built


@dataclass
class PrebuildStats:
    studies: int = 0
    bundles: int = 0
    absent: int = 0  # completions of studies with no images here
    failed: int = 0


class BundlePrebuilder(CompletedStudyWorker):
    group, channel, doing = GROUP, CHANNEL, "could not build the series bundles of"

    def __init__(self, event_log: EventLog, service: DicomWebService, dead_letters=None, *,
                 encodings: tuple[str, ...] = ("raw",), batch: int = 20, group: str = GROUP) -> None:
        super().__init__(event_log, dead_letters, batch=batch, group=group)
        self.service, self.encodings = service, encodings
        self.stats = PrebuildStats()

    def on_completed(self, completed: Envelope) -> list[Envelope]:
        try:
            built = self.service.prebuild(completed.payload["study_uid"], self.encodings)
        except NotFound:
            self.stats.absent += 1
            return []
        self.stats.studies += 1
        self.stats.bundles += len(built)
        return []


def prebuilder_for(platform, **kwargs) -> BundlePrebuilder:
    return BundlePrebuilder(platform.log, platform.dicomweb, platform.dead_letters, **kwargs)
