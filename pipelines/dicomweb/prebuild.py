"""Bundles built ahead of the first view: every ``StudyCompleted`` on the log has its series bundles built now, so
the first doctor to open the study gets the fast path warm (no build on the request).

A consumer in its own group, like the QC worker (``qc/worker.py``): it commits after building, so a crash repeats a
build (bundles are written atomically and keyed by the originals' hashes, so a repeat is a no-op) and never skips
one. A completion whose images cannot be read is set aside as a dead letter with the reason and never stops the
worker; a completion for a study this centre holds no images of (announced from elsewhere) is counted and skipped.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from pipelines.dicomweb.service import DicomWebService, NotFound
from schemas.registry import REGISTRY, SchemaError
from streams.log.port import EventLog, LogRecord, Position

log = logging.getLogger(__name__)
GROUP = "bundle-prebuild"
CHANNEL = "bundle-prebuild"  # dead letters: completions whose bundles could not be built


@dataclass
class PrebuildStats:
    studies: int = 0
    bundles: int = 0
    absent: int = 0  # completions of studies with no images here
    failed: int = 0


class BundlePrebuilder:
    def __init__(self, event_log: EventLog, service: DicomWebService, dead_letters=None, *,
                 encodings: tuple[str, ...] = ("raw",), batch: int = 20, group: str = GROUP) -> None:
        self.service, self.dead_letters, self.encodings, self.batch = service, dead_letters, encodings, batch
        self.consumer = event_log.consumer(group, [REGISTRY.topic_of("StudyCompleted")])
        self.stats = PrebuildStats()

    def handle(self, record: LogRecord) -> None:
        if b"StudyCompleted" not in record.value:  # cheap filter; the type is checked after parsing
            return
        try:
            env = REGISTRY.validate(record.envelope())
            if env.type != "StudyCompleted":
                return
            built = self.service.prebuild(env.payload["study_uid"], self.encodings)
        except NotFound:
            self.stats.absent += 1
            return
        except (ValueError, SchemaError, LookupError, OSError) as exc:
            self.stats.failed += 1
            reason = f"could not build the series bundles of this completed study: {type(exc).__name__}: {exc}"
            log.warning(reason[:1000])
            if self.dead_letters is not None:
                self.dead_letters.put(channel=CHANNEL, source=GROUP, reason=reason[:1000], body=record.value)
            return
        self.stats.studies += 1
        self.stats.bundles += len(built)

    def step(self, timeout: float = 0.5) -> int:
        records = self.consumer.poll(self.batch, timeout)
        if not records:
            return 0
        try:
            for record in records:
                self.handle(record)
        except Exception:  # go back to the first uncommitted record, so the batch is tried again
            for tp in dict.fromkeys((r.topic, r.partition) for r in records):
                self.consumer.seek(Position(*tp, min(r.offset for r in records if (r.topic, r.partition) == tp)))
            raise
        self.consumer.commit(records)
        return len(records)

    def run_until_idle(self, max_seconds: float = 600) -> PrebuildStats:
        deadline = time.monotonic() + max_seconds
        while self.step(timeout=0) and time.monotonic() < deadline:
            pass
        return self.stats

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # the log or store hiccupped: retry after a pause, never die
                log.exception("bundle prebuild step failed; retrying")
                stop.wait(1.0)
        self.consumer.close()


def prebuilder_for(platform, **kwargs) -> BundlePrebuilder:
    return BundlePrebuilder(platform.log, platform.dicomweb, platform.dead_letters, **kwargs)
