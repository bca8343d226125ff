"""Deciding whether received DICOM bytes can be accepted, and what they are.

What "byte for byte" means here
-------------------------------
- An instance that arrives as a **file** (Part 10: preamble, ``DICM``, File Meta group, dataset), e.g. pulled
  from Orthanc's REST API, STOW-RS or an import, is stored exactly as received: the object *is* that file and its
  SHA-256 is the hash of the file.
- An instance that arrives over **DIMSE** (C-STORE) has no File Meta: the network carries only the dataset,
  encoded in the negotiated transfer syntax. We keep those dataset bytes unchanged and put in front of them a
  File Meta group that we write deterministically (same inputs, same bytes: no timestamp, no peer AE), so the
  object is a valid Part 10 file. The bytes the hospital sent are the object's bytes from ``dataset_offset`` on,
  and ``dataset_sha256`` is their hash. The File Meta of a file the modality had on disk never crosses the network,
  so no receiver can hand back that file's first bytes; what we can hand back is its dataset bit-identical,
  provided the sender did not transcode (dcmtk ``storescu`` sends the file's own transfer syntax when it is
  accepted, which our SCP does for every syntax it proposes).
- ``dataset_sha256`` (the hash of the dataset as sent) identifies a version of an instance whichever way it came:
  the same dataset over DIMSE and later as a file from the PACS is the same version, not a new one.
"""
from __future__ import annotations

import hashlib
import io
import re
import struct
from dataclasses import dataclass
from datetime import date

import pydicom

from pydicom.charset import convert_encodings, decode_bytes

from pipelines.dicom.walk import DEFLATED, Malformed, check_dataset

IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.8.498.10771830981523446931"  # pydicom root + fixed suffix
IMPLEMENTATION_VERSION = "WANYING_1"
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
PREAMBLE = 128

# DIMSE C-STORE failure statuses (PS3.4 B.2.3, PS3.7 C.4.2)
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_DATASET_MISMATCH = 0xA900
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_REFUSED_NOT_AUTHORISED = 0x0124


class DicomRejected(ValueError):
    """Bytes we will not store; ``reason`` is for the sender, ``status`` is the DIMSE status to answer."""

    def __init__(self, reason: str, status: int = STATUS_CANNOT_UNDERSTAND):
        super().__init__(reason)
        self.reason, self.status = reason, status


@dataclass(frozen=True)
class InstanceInfo:
    """What we take from an instance. ``patient_ids`` is personal data: used at the edge, never stored."""

    sop_class_uid: str
    sop_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax: str
    dataset_offset: int
    dataset_sha256: str
    modality: str | None
    patient_ids: tuple[str, ...]
    accession_number: str | None
    study_date: date | None
    study_description: str | None
    instance_number: int | None
    number_of_study_related_instances: int | None = None


def file_meta_bytes(sop_class_uid: str, sop_uid: str, transfer_syntax: str) -> bytes:
    """Preamble, ``DICM`` and a File Meta group (explicit VR little endian) that depend only on these three UIDs."""
    body = b"".join((
        _meta_element(0x0001, b"OB", b"\x00\x01"),
        _meta_element(0x0002, b"UI", _uid_bytes(sop_class_uid)),
        _meta_element(0x0003, b"UI", _uid_bytes(sop_uid)),
        _meta_element(0x0010, b"UI", _uid_bytes(transfer_syntax)),
        _meta_element(0x0012, b"UI", _uid_bytes(IMPLEMENTATION_CLASS_UID)),
        _meta_element(0x0013, b"SH", _even(IMPLEMENTATION_VERSION.encode(), b" ")),
    ))
    group_length = _meta_element(0x0000, b"UL", struct.pack("<I", len(body)))
    return b"\x00" * PREAMBLE + b"DICM" + group_length + body


def _even(value: bytes, pad: bytes) -> bytes:
    return value + pad if len(value) % 2 else value


def _uid_bytes(uid: str) -> bytes:
    return _even(uid.encode("ascii", "replace"), b"\x00")


def _meta_element(elem: int, vr: bytes, value: bytes) -> bytes:
    if vr == b"OB":
        return struct.pack("<HH2sHI", 0x0002, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, elem, vr, len(value)) + value


def part10_from_dataset(dataset: bytes | memoryview, *, sop_class_uid: str, sop_uid: str,
                        transfer_syntax: str) -> tuple[bytes, int]:
    """The stored object for a network-received dataset, and where the received bytes start in it."""
    meta = file_meta_bytes(sop_class_uid, sop_uid, transfer_syntax)
    return meta + bytes(dataset), len(meta)


def split_part10(data: bytes | memoryview) -> tuple[str, int]:
    """Transfer syntax and dataset offset of a Part 10 file, or :class:`DicomRejected`."""
    buf = memoryview(data)
    if len(buf) < PREAMBLE + 4 + 12 or bytes(buf[PREAMBLE:PREAMBLE + 4]) != b"DICM":
        raise DicomRejected("not a DICOM Part 10 file: no 'DICM' marker after the 128-byte preamble")
    pos, ts = PREAMBLE + 4, None
    while pos + 8 <= len(buf) and struct.unpack_from("<H", buf, pos)[0] == 0x0002:
        elem = struct.unpack_from("<H", buf, pos + 2)[0]
        vr = bytes(buf[pos + 4:pos + 6])
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR"):
            if pos + 12 > len(buf):
                raise DicomRejected("File Meta group is truncated")
            length, head = struct.unpack_from("<I", buf, pos + 8)[0], 12
        elif vr.isalpha() and vr.isupper():
            length, head = struct.unpack_from("<H", buf, pos + 6)[0], 8
        else:
            raise DicomRejected(f"File Meta element (0002,{elem:04X}) is not explicit VR little endian")
        if pos + head + length > len(buf):
            raise DicomRejected(f"File Meta element (0002,{elem:04X}) is truncated")
        if elem == 0x0010:
            ts = bytes(buf[pos + head:pos + head + length]).rstrip(b"\x00 ").decode("ascii", "replace")
        pos += head + length
    if not ts or not _UID.match(ts):
        raise DicomRejected("File Meta has no valid Transfer Syntax UID (0002,0010)")
    return ts, pos


def inspect_part10(data: bytes | memoryview) -> InstanceInfo:
    ts, offset = split_part10(data)
    return inspect(data, offset, ts)


def inspect_dataset(dataset: bytes | memoryview, transfer_syntax: str, *, sop_class_uid: str | None = None,
                    sop_uid: str | None = None) -> InstanceInfo:
    """A dataset as received over DIMSE; the request's Affected SOP Class/Instance UIDs must match it."""
    info = inspect(dataset, 0, transfer_syntax)
    if sop_class_uid and info.sop_class_uid != sop_class_uid:
        raise DicomRejected(f"dataset SOP Class UID {info.sop_class_uid} differs from the C-STORE request's "
                            f"{sop_class_uid}", STATUS_DATASET_MISMATCH)
    if sop_uid and info.sop_uid != sop_uid:
        raise DicomRejected(f"dataset SOP Instance UID {info.sop_uid} differs from the C-STORE request's {sop_uid}",
                            STATUS_DATASET_MISMATCH)
    return info


TAGS = {
    "SpecificCharacterSet": 0x00080005, "SOPClassUID": 0x00080016, "SOPInstanceUID": 0x00080018,
    "StudyDate": 0x00080020, "AccessionNumber": 0x00080050, "Modality": 0x00080060,
    "StudyDescription": 0x00081030, "PatientID": 0x00100020, "OtherPatientIDs": 0x00101000,
    "StudyInstanceUID": 0x0020000D, "SeriesInstanceUID": 0x0020000E, "InstanceNumber": 0x00200013,
    "OtherPatientIDsSequence": 0x00101002,
}
_COLLECT = frozenset(TAGS.values())
_REQUIRED = (
    ("SOPClassUID", "(0008,0016)"),
    ("SOPInstanceUID", "(0008,0018)"),
    ("StudyInstanceUID", "(0020,000D)"),
    ("SeriesInstanceUID", "(0020,000E)"),
)


def inspect(data: bytes | memoryview, offset: int, transfer_syntax: str) -> InstanceInfo:
    """Check the dataset from ``offset`` in ``transfer_syntax`` and take its identifying attributes."""
    view = memoryview(data)[offset:]
    try:
        raw = check_dataset(view, transfer_syntax, _COLLECT)
    except Malformed as exc:
        raise DicomRejected(f"malformed dataset: {exc}") from None
    try:
        return _info(raw, view, transfer_syntax, offset)
    except DicomRejected:
        raise
    except Exception as exc:  # odd values must give a reason, never crash a worker
        raise DicomRejected(f"dataset cannot be decoded: {type(exc).__name__}: {str(exc)[:200]}") from None


def _info(raw: dict[int, bytes], view: memoryview, transfer_syntax: str, offset: int) -> InstanceInfo:
    uids = {}
    for keyword, tag in _REQUIRED:
        value = raw.get(TAGS[keyword], b"").rstrip(b"\x00 ").lstrip(b" ").decode("ascii", "replace")
        if not value:
            raise DicomRejected(f"required attribute {keyword} {tag} is missing or empty", STATUS_DATASET_MISMATCH)
        if len(value) > 64 or not _UID.match(value):
            raise DicomRejected(f"{keyword} {tag} is not a valid UID (digits and dots, at most 64 characters)",
                                STATUS_DATASET_MISMATCH)
        uids[keyword] = value
    encodings = _encodings(raw.get(TAGS["SpecificCharacterSet"]))

    def text(keyword: str) -> str | None:
        value = raw.get(TAGS[keyword])
        if not value:
            return None
        return decode_bytes(value, encodings, set()).strip(" \x00") or None

    patient_ids = [text("PatientID")] + (text("OtherPatientIDs") or "").split("\\")
    if TAGS["OtherPatientIDsSequence"] in raw:
        patient_ids += _sequence_patient_ids(view, transfer_syntax)
    modality = text("Modality")
    return InstanceInfo(
        sop_class_uid=uids["SOPClassUID"],
        sop_uid=uids["SOPInstanceUID"],
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        transfer_syntax=transfer_syntax,
        dataset_offset=offset,
        dataset_sha256=hashlib.sha256(view).hexdigest(),
        modality=modality.upper() if modality and re.fullmatch(r"[A-Za-z]{2,4}", modality) else None,
        patient_ids=tuple(p.strip() for p in patient_ids if p and p.strip()),
        accession_number=text("AccessionNumber"),
        study_date=_date(text("StudyDate")),
        study_description=(text("StudyDescription") or "")[:256] or None,
        instance_number=_int(text("InstanceNumber")),
    )


def _encodings(value: bytes | None) -> list[str]:
    if not value:
        return ["iso8859"]
    terms = [t.strip() for t in value.decode("ascii", "replace").split("\\")]
    return convert_encodings(terms or [""])


def _sequence_patient_ids(view: memoryview, transfer_syntax: str) -> list[str]:
    """IDs from OtherPatientIDsSequence, which is rare: only then is the header parsed with pydicom."""
    ds = _read_header(view, transfer_syntax)
    out = []
    for item in ds.get("OtherPatientIDsSequence", []) or []:
        value = item.get("PatientID")
        if value:
            out.append(str(value))
    return out


def _read_header(view: memoryview, transfer_syntax: str) -> pydicom.Dataset:
    from pydicom.filereader import read_dataset

    fp = io.BytesIO(view)
    if transfer_syntax in DEFLATED:
        import zlib

        fp = io.BytesIO(zlib.decompress(bytes(view), -zlib.MAX_WBITS))
    implicit = transfer_syntax == "1.2.840.10008.1.2"
    little = transfer_syntax != "1.2.840.10008.1.2.2"
    return read_dataset(fp, implicit, little, stop_when=lambda tag, vr, length: tag >= 0x7FE00010)


def _date(value: str | None) -> date | None:
    if not value or not re.fullmatch(r"\d{8}", value):
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
