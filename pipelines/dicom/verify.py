"""Rebuild a study's manifest from the stored objects themselves and compare it with the index.

Every object is read back, its SHA-256 checked against its name, and its DICOM identity (UIDs, transfer syntax,
dataset hash) taken again from its bytes. If the manifest built this way equals the one built from the index, the
index says exactly what storage holds.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from pipelines.dicom.parse import DicomRejected, inspect_part10
from pipelines.storage.index import InstanceIndex
from pipelines.storage.manifest import StudyManifest, build_manifest
from pipelines.storage.objects import ObjectCorrupt, ObjectStore


@dataclass(frozen=True)
class StudyCheck:
    study_uid: str
    from_index: StudyManifest
    from_storage: StudyManifest | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        rebuilt = self.from_storage
        return not self.problems and rebuilt is not None and self.from_index.sha256 == rebuilt.sha256


def check_study(index: InstanceIndex, store: ObjectStore, study_uid: str) -> StudyCheck:
    rows = index.instances_of(study_uid)
    from_index = build_manifest(study_uid, rows)
    rebuilt, problems = [], []
    for row in rows:
        try:
            data = store.get(row.object_sha256)
        except (ObjectCorrupt, FileNotFoundError) as exc:
            problems.append(f"{row.sop_uid}: object {row.object_sha256[:12]}… {type(exc).__name__}")
            continue
        try:
            info = inspect_part10(data)
        except DicomRejected as exc:
            problems.append(f"{row.sop_uid}: stored object no longer parses: {exc.reason}")
            continue
        rebuilt.append(replace(row, study_uid=info.study_uid, series_uid=info.series_uid, sop_uid=info.sop_uid,
                               sop_class_uid=info.sop_class_uid, transfer_syntax=info.transfer_syntax,
                               dataset_sha256=info.dataset_sha256, size=len(data)))
    try:
        from_storage = build_manifest(study_uid, rebuilt)
    except ValueError as exc:
        return StudyCheck(study_uid, from_index, None, tuple(problems + [str(exc)]))
    if not problems and from_storage.sha256 != from_index.sha256:
        problems.append("the index and the stored objects disagree")
    return StudyCheck(study_uid, from_index, from_storage, tuple(problems))
