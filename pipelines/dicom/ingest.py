"""Accept one DICOM instance from any channel (C-STORE, pull, file import): check it, store it, index it, tell the
log. Whatever cannot be accepted goes to the dead-letter store with its original bytes and a reason.

The order makes a crash safe: object first (content-addressed, so a retry rewrites nothing), then the index row,
then the events. The index row is the outbox of the events (:mod:`pipelines.dicom.outbox`): by default they are
on the log when ``receive_*`` returns; the SCP lets a background thread append them in batches right after the
status, and a restart appends whatever a crash left pending, under the same event ids.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable, Sequence

from pipelines.crypto import Keyring
from pipelines.deadletter import DeadLetterStore
from pipelines.dicom.outbox import Outbox, events_for
from pipelines.dicom.parse import (
    STATUS_DATASET_MISMATCH,
    DicomRejected,
    InstanceInfo,
    file_meta_bytes,
    inspect_dataset,
    inspect_part10,
    part10_from_dataset,
)
from pipelines.identity import InvalidIdNumber, normalise_id_number
from pipelines.storage.index import InstanceIndex, InstanceRow, RecordOutcome, StudyFacts
from pipelines.storage.objects import ObjectStore
from schemas.envelope import Envelope

log = logging.getLogger(__name__)
CHANNEL = "dicom"
Publish = Callable[[Sequence[Envelope]], object]


@dataclass(frozen=True)
class Accepted:
    info: InstanceInfo
    object_sha256: str
    outcome: RecordOutcome
    person_key: str
    events: tuple[Envelope, ...]


def person_key_for(patient_ids: Sequence[str], hospital: str, keys: Keyring) -> str:
    """National key when any of the patient's IDs is a valid resident ID number, else a hospital-scoped key."""
    for pid in patient_ids:
        try:
            return keys.person_key(normalise_id_number(pid))
        except InvalidIdNumber:
            continue
    if not patient_ids:
        raise DicomRejected("PatientID (0010,0020) is empty: the instance cannot be attributed to a patient",
                            STATUS_DATASET_MISMATCH)
    return keys.hospital_person_key(hospital, patient_ids[0])


class DicomIngest:
    def __init__(self, *, store: ObjectStore, index: InstanceIndex, publish: Publish, dead_letters: DeadLetterStore,
                 keys: Keyring) -> None:
        self.store, self.index, self.publish = store, index, publish
        self.dead_letters, self.keys = dead_letters, keys
        self.outbox = Outbox(index, publish)
        # False: events are on the log when receive_* returns. True: the outbox thread appends them soon after
        # (the SCP's choice, see pipelines.dicom.outbox); call start_background_events()/stop_background_events().
        self.background_events = False
        self.counts = {"stored": 0, "duplicate": 0, "new_version": 0, "rejected": 0}
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------------ channels

    def receive_dataset(self, dataset: bytes | memoryview, transfer_syntax: str, *, hospital: str, source_ae: str,
                        sop_class_uid: str, sop_uid: str) -> Accepted:
        """A dataset as received by C-STORE, in the negotiated transfer syntax."""
        try:
            info = inspect_dataset(dataset, transfer_syntax, sop_class_uid=sop_class_uid, sop_uid=sop_uid)
            meta = file_meta_bytes(info.sop_class_uid, info.sop_uid, transfer_syntax)
            info = replace(info, dataset_offset=len(meta))
            return self._accept(info, [meta, dataset], hospital, source_ae)
        except DicomRejected as exc:
            self.reject(exc, wrap_for_replay(dataset, sop_class_uid, sop_uid, transfer_syntax), hospital, source_ae)
            raise

    def receive_file(self, data: bytes | memoryview, *, hospital: str, source_ae: str) -> Accepted:
        """A Part 10 file (pull from a PACS, STOW-RS, import, replay): stored exactly as it is."""
        try:
            info = inspect_part10(data)
            return self._accept(info, [data], hospital, source_ae)
        except DicomRejected as exc:
            self.reject(exc, bytes(data), hospital, source_ae)
            raise

    def reject(self, exc: DicomRejected, body: bytes, hospital: str | None, source_ae: str) -> str:
        letter = self.dead_letters.put(channel=CHANNEL, source=f"{hospital or '?'}/{source_ae}",
                                       reason=f"[0x{exc.status:04X}] {exc.reason}", body=body)
        with self._count_lock:
            self.counts["rejected"] += 1
        log.warning("dicom instance from %s/%s rejected (dead letter %s): %s", hospital, source_ae, letter,
                    exc.reason)
        return letter

    def start_background_events(self, interval: float = 0.2) -> None:
        self.background_events = True
        self.outbox.start(interval)

    def stop_background_events(self) -> None:
        self.outbox.stop()
        self.background_events = False

    # ------------------------------------------------------------------ the one path

    def _accept(self, info: InstanceInfo, parts: list, hospital: str, source_ae: str) -> Accepted:
        person_key = person_key_for(info.patient_ids, hospital, self.keys)
        known = self.index.find_version(info.sop_uid, info.dataset_sha256)
        if known is not None:  # the same dataset again (perhaps in another file wrapper): nothing to store
            self._count("duplicate")
            return Accepted(info, known[1], RecordOutcome("duplicate", known[0], False, ""), person_key, ())
        put = self.store.put_parts(parts)
        now = datetime.now(timezone.utc)
        row = InstanceRow(
            study_uid=info.study_uid, series_uid=info.series_uid, sop_uid=info.sop_uid, version=0,
            sop_class_uid=info.sop_class_uid, transfer_syntax=info.transfer_syntax, object_sha256=put.sha256,
            dataset_sha256=info.dataset_sha256, size=put.size, received_at=now.isoformat(), hospital=hospital,
            source_ae=source_ae[:16], modality=info.modality, instance_number=info.instance_number,
        )
        facts = StudyFacts(info.study_uid, hospital, person_key, info.accession_number, info.study_date,
                           info.study_description)
        outcome = self.index.record(row, facts)
        self._count(outcome.outcome)
        if outcome.outcome == "duplicate":
            return Accepted(info, outcome.object_sha256 or put.sha256, outcome, person_key, ())
        if self.background_events:
            return Accepted(info, put.sha256, outcome, person_key, ())
        self.outbox.flush()
        events = events_for({
            **row.__dict__, "version": outcome.version, "opened_study": outcome.first_in_study,
            "reopened_manifest_sha256": outcome.reopened_manifest_sha256,
            "previous_object_sha256": outcome.previous_sha256, "person_key": person_key,
            "accession_number": info.accession_number,
            "study_date": info.study_date.isoformat() if info.study_date else None,
        })
        return Accepted(info, put.sha256, outcome, person_key, tuple(events))

    def _count(self, what: str) -> None:
        with self._count_lock:
            self.counts[what] += 1


def wrap_for_replay(dataset: bytes | memoryview, sop_class_uid: str, sop_uid: str, transfer_syntax: str) -> bytes:
    """Received bytes unchanged behind a File Meta naming their transfer syntax, so a replay can read them."""
    try:
        return part10_from_dataset(dataset, sop_class_uid=sop_class_uid or "1.2", sop_uid=sop_uid or "1.2",
                                   transfer_syntax=transfer_syntax)[0]
    except Exception:  # a request too broken to describe: keep the bare bytes
        return bytes(dataset)
