"""DICOM JSON (PS3.18 F.2) for WADO-RS metadata and QIDO-RS results.

Bulk data (pixel data and any large binary value) is not inlined: it becomes a BulkDataURI. URIs are written
relative to the DICOMweb root (``studies/…``) so the same JSON can sit in a bundle served from anywhere; the
router makes them absolute for the request's base URL.
"""
from __future__ import annotations

from typing import Iterable

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.tag import Tag

BULK_THRESHOLD = 1024
AVAILABLE_TRANSFER_SYNTAX = "00083002"
PIXEL_DATA = "7FE00010"


def instance_path(study: str, series: str, sop: str) -> str:
    return f"studies/{study}/series/{series}/instances/{sop}"


def to_json(ds: Dataset, *, study: str, series: str, sop: str, transfer_syntax: str) -> dict:
    """An instance's metadata, bulk data as relative URIs, plus AvailableTransferSyntaxUID."""
    base = instance_path(study, series, sop)

    def bulk(elem) -> str:
        return f"{base}/bulkdata/{elem.tag:08X}"

    doc = ds.to_json_dict(bulk_data_threshold=BULK_THRESHOLD, bulk_data_element_handler=bulk)
    if PIXEL_DATA not in doc and "Rows" in ds:  # headers are read without pixel data: point at it anyway
        native = transfer_syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")
        vr = "OW" if native and int(ds.get("BitsAllocated", 8)) > 8 else "OB"
        doc[PIXEL_DATA] = {"vr": vr, "BulkDataURI": f"{base}/bulkdata/{PIXEL_DATA}"}
    doc[AVAILABLE_TRANSFER_SYNTAX] = {"vr": "UI", "Value": [transfer_syntax]}
    return dict(sorted(doc.items()))


def absolutize(doc: dict, root: str) -> dict:
    """Make every BulkDataURI absolute under ``root`` (the DICOMweb base URL, ending without a slash)."""
    for value in doc.values():
        if not isinstance(value, dict):
            continue
        uri = value.get("BulkDataURI")
        if uri is not None and not uri.startswith(("http://", "https://")):
            value["BulkDataURI"] = f"{root}/{uri}"
        for item in value.get("Value", ()) if value.get("vr") == "SQ" else ():
            if isinstance(item, dict):
                absolutize(item, root)
    return doc


def tag_key(name: str) -> str | None:
    """``00100010`` or ``PatientName`` -> ``00100010``; None when unknown."""
    name = name.strip()
    if len(name) == 8 and all(c in "0123456789abcdefABCDEF" for c in name):
        return name.upper()
    tag = tag_for_keyword(name)
    return f"{tag:08X}" if tag is not None else None


def keyword_of(key: str) -> str:
    return keyword_for_tag(Tag(int(key, 16))) or key


def pick(ds: Dataset, keys: Iterable[str]) -> dict:
    """The DICOM JSON of the given top-level attributes of ``ds`` (absent ones are left out); no bulk data."""
    out = {}
    for key in keys:
        tag = Tag(int(key, 16))
        if tag in ds:
            elem = ds[tag]
            if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") and elem.value and len(elem.value) > 64:
                continue
            out[key] = elem.to_json_dict(None, BULK_THRESHOLD)
    return out


def all_attributes(ds: Dataset) -> list[str]:
    return [f"{e.tag:08X}" for e in ds if e.tag.group not in (0x0002, 0x7FE0) and not e.tag.is_private]
