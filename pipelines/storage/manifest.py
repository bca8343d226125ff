"""Study manifests: what exactly a study consists of, in a canonical form whose SHA-256 names it.

The manifest lists every series and the current version of every instance with its object hash. It is rebuilt on
demand from the index (which :func:`pipelines.dicom.reindex.reindex_from_storage` can itself rebuild from the
objects), so it is never a second source of truth. Canonical form: JSON, keys sorted, no whitespace, series and
instances sorted by UID, UTF-8.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable

from pipelines.storage.index import InstanceRow

MANIFEST_FORMAT = "wanying.study-manifest/1"


@dataclass(frozen=True)
class StudyManifest:
    study_uid: str
    document: dict
    canonical: bytes
    sha256: str

    @property
    def instance_count(self) -> int:
        return sum(len(s["instances"]) for s in self.document["series"])

    @property
    def total_bytes(self) -> int:
        return self.document["total_bytes"]


def build_manifest(study_uid: str, rows: Iterable[InstanceRow]) -> StudyManifest:
    """Rows are the current versions of a study's instances (see ``InstanceIndex.instances_of``)."""
    series: dict[str, dict] = {}
    total = 0
    for r in rows:
        if r.study_uid != study_uid:
            raise ValueError(f"instance {r.sop_uid} belongs to study {r.study_uid}, not {study_uid}")
        s = series.setdefault(r.series_uid, {"series_uid": r.series_uid, "modality": r.modality, "instances": []})
        s["instances"].append({
            "sop_uid": r.sop_uid,
            "sop_class_uid": r.sop_class_uid,
            "version": r.version,
            "transfer_syntax": r.transfer_syntax,
            "object_sha256": r.object_sha256,
            "dataset_sha256": r.dataset_sha256,
            "size": r.size,
        })
        total += r.size
    for s in series.values():
        s["instances"].sort(key=lambda i: i["sop_uid"])
    doc = {
        "format": MANIFEST_FORMAT,
        "study_uid": study_uid,
        "series": [series[k] for k in sorted(series)],
        "total_bytes": total,
    }
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return StudyManifest(study_uid, doc, canonical, hashlib.sha256(canonical).hexdigest())
