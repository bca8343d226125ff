"""Lossless object storage for originals: content-addressed objects, the instance index, study manifests."""
from pipelines.storage.objects import ObjectStore, open_store
from pipelines.storage.index import InstanceIndex, InstanceRow, RecordOutcome
from pipelines.storage.manifest import StudyManifest, build_manifest

__all__ = ["ObjectStore", "open_store", "InstanceIndex", "InstanceRow", "RecordOutcome", "StudyManifest",
           "build_manifest"]
