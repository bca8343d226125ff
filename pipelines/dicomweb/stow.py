"""STOW-RS (PS3.18 10.5): each part of a multipart/related body goes through the one DICOM ingest path."""
from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.dicom.ingest import DicomIngest
from pipelines.dicom.parse import STATUS_CANNOT_UNDERSTAND, STATUS_DATASET_MISMATCH, DicomRejected, inspect_part10
from pipelines.dicomweb.metadata import instance_path
from pipelines.dicomweb.multipart import MultipartError, split_parts

ACCEPTED_PART_TYPES = ("application/dicom", "")
STATUS_UNSUPPORTED_PART = 0xC122  # "Referenced SOP Class not supported"-style refusal for a part we cannot read


@dataclass
class StowResult:
    stored: list[dict] = field(default_factory=list)  # sop_class, sop_uid, study_uid, series_uid
    failed: list[dict] = field(default_factory=list)  # sop_class, sop_uid, status, reason, dead_letter

    @property
    def http_status(self) -> int:
        if not self.failed:
            return 200
        return 202 if self.stored else 409

    def response(self, root: str, study_uid: str | None) -> dict:
        doc: dict = {}
        studies = {s["study_uid"] for s in self.stored}
        target = study_uid or (next(iter(studies)) if len(studies) == 1 else None)
        if target:
            doc["00081190"] = {"vr": "UR", "Value": [f"{root}/studies/{target}"]}
        if self.stored:
            doc["00081199"] = {"vr": "SQ", "Value": [{
                "00081150": {"vr": "UI", "Value": [s["sop_class"]]},
                "00081155": {"vr": "UI", "Value": [s["sop_uid"]]},
                "00081190": {"vr": "UR", "Value": [
                    f"{root}/{instance_path(s['study_uid'], s['series_uid'], s['sop_uid'])}"]},
            } for s in self.stored]}
        if self.failed:
            doc["00081198"] = {"vr": "SQ", "Value": [{
                **({"00081150": {"vr": "UI", "Value": [f["sop_class"]]}} if f.get("sop_class") else {}),
                **({"00081155": {"vr": "UI", "Value": [f["sop_uid"]]}} if f.get("sop_uid") else {}),
                "00081197": {"vr": "US", "Value": [f["status"]]},
                # not a standard item attribute, but the sender needs the reason and where its bytes are kept
                "00000902": {"vr": "LO", "Value": [f"{f['reason']} (dead letter {f['dead_letter']})"[:64 * 16]]},
            } for f in self.failed]}
        return doc


def store_parts(ingest: DicomIngest, body: bytes, content_type: str, *, hospital: str, source: str,
                study_uid: str | None = None) -> StowResult:
    """Store every part; raises :class:`MultipartError` only when the body as a whole is unreadable."""
    parts = split_parts(body, content_type)
    result = StowResult()
    for part in parts:
        media = part.content_type.split(";")[0].strip().lower()
        data = bytes(part.body)
        try:
            if media not in ACCEPTED_PART_TYPES:
                raise DicomRejected(f"part of type {media!r} is not application/dicom (DICOM JSON/XML metadata with "
                                    f"bulk data is not accepted; send Part 10 files)", STATUS_UNSUPPORTED_PART)
            if study_uid is not None:
                info = inspect_part10(data)
                if info.study_uid != study_uid:
                    raise DicomRejected(f"instance belongs to study {info.study_uid}, not to {study_uid} named in "
                                        f"the request URL", STATUS_DATASET_MISMATCH)
        except DicomRejected as exc:
            letter = ingest.reject(exc, data, hospital, source)
            result.failed.append({"status": exc.status, "reason": exc.reason, "dead_letter": letter,
                                  **_uids(data)})
            continue
        try:
            accepted = ingest.receive_file(data, hospital=hospital, source_ae=source)
        except DicomRejected as exc:  # the ingest path filed the dead letter itself
            letter = _latest_letter(ingest, data)
            result.failed.append({"status": exc.status or STATUS_CANNOT_UNDERSTAND, "reason": exc.reason,
                                  "dead_letter": letter, **_uids(data)})
            continue
        info = accepted.info
        result.stored.append({"sop_class": info.sop_class_uid, "sop_uid": info.sop_uid,
                              "study_uid": info.study_uid, "series_uid": info.series_uid})
    return result


def _uids(data: bytes) -> dict:
    try:
        info = inspect_part10(data)
        return {"sop_class": info.sop_class_uid, "sop_uid": info.sop_uid}
    except DicomRejected:
        return {}


def _latest_letter(ingest: DicomIngest, data: bytes) -> str:
    """The id of the letter the ingest path just filed for these bytes."""
    import hashlib

    import sqlalchemy as sa

    from pipelines.deadletter import dead_letters

    q = (sa.select(dead_letters.c.id).where(dead_letters.c.sha256 == hashlib.sha256(data).hexdigest())
         .order_by(dead_letters.c.received_at.desc()).limit(1))
    with ingest.dead_letters.engine.connect() as conn:
        return conn.execute(q).scalar() or "?"


__all__ = ["store_parts", "StowResult", "MultipartError"]
