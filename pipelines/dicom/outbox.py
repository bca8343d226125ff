"""The instance index is the outbox of the DICOM events: a stored version's events are derived from its index row
and appended to the log after the sender has its answer, in batches.

The sender's success status waits for the object and its index row, not for the log, so one slow log append
does not slow down every modality. Event ids are derived from the row (type, SOP Instance UID, dataset hash), so
publishing a row twice after a crash appends nothing new: the log ignores an ``event_id`` it already holds.
"""
from __future__ import annotations

import logging
import threading
from datetime import date, datetime
from typing import Callable, Sequence

from pipelines.storage.index import InstanceIndex
from schemas.envelope import Envelope, stable_event_id
from schemas.events import InstanceRevised, InstanceStored, StudyReceived, StudyReopened
from schemas.registry import REGISTRY

log = logging.getLogger(__name__)


def events_for(row: dict) -> list[Envelope]:
    """The events of one stored version (an index row joined with its study), with reproducible ids."""
    hospital, person_key = row["hospital"], row["person_key"]
    at = datetime.fromisoformat(row["received_at"])

    def wrap(payload) -> Envelope:
        event_id = stable_event_id(int(at.timestamp() * 1000), type(payload).__name__, row["sop_uid"],
                                   row["dataset_sha256"])
        return REGISTRY.new(payload, key=person_key, source=hospital, occurred_at=at, event_id=event_id)

    out = []
    if row["opened_study"]:
        out.append(wrap(StudyReceived(
            hospital=hospital, study_uid=row["study_uid"], person_key=person_key,
            accession_number=row["accession_number"], modality=row["modality"],
            study_date=date.fromisoformat(row["study_date"]) if row["study_date"] else None)))
    if row["reopened_manifest_sha256"] is not None:
        out.append(wrap(StudyReopened(hospital=hospital, person_key=person_key, study_uid=row["study_uid"],
                                      sop_uid=row["sop_uid"],
                                      previous_manifest_sha256=row["reopened_manifest_sha256"] or None)))
    out.append(wrap(InstanceStored(
        hospital=hospital, person_key=person_key, study_uid=row["study_uid"], series_uid=row["series_uid"],
        sop_uid=row["sop_uid"], sop_class_uid=row["sop_class_uid"], transfer_syntax=row["transfer_syntax"],
        object_sha256=row["object_sha256"], dataset_sha256=row["dataset_sha256"], size=row["size"],
        version=row["version"], source_ae=row["source_ae"], modality=row["modality"])))
    if row["version"] > 1 and row["previous_object_sha256"]:
        out.append(wrap(InstanceRevised(hospital=hospital, person_key=person_key, study_uid=row["study_uid"],
                                        sop_uid=row["sop_uid"], version=row["version"],
                                        object_sha256=row["object_sha256"],
                                        previous_object_sha256=row["previous_object_sha256"])))
    return out


class Outbox:
    def __init__(self, index: InstanceIndex, publish: Callable[[Sequence[Envelope]], object]) -> None:
        self.index, self.publish = index, publish
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def flush(self, limit: int = 1000) -> int:
        """Publish everything pending; returns the number of events appended."""
        total = 0
        with self._lock:
            while True:
                rows = self.index.unpublished(limit)
                if not rows:
                    return total
                events = [e for row in rows for e in events_for(row)]
                self.publish(events)
                self.index.mark_published([row["id"] for row in rows])
                total += len(events)

    def start(self, interval: float = 0.2) -> None:
        """Publish in the background every ``interval`` seconds: one log append (one fsync) per batch."""
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.flush()
                except Exception:  # the log is down: rows stay pending and are retried
                    log.exception("publishing DICOM events failed; will retry")
                    self._stop.wait(1.0)

        self._thread = threading.Thread(target=loop, name="dicom-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.flush()
