"""Series bundles: one derived object per series so a viewer loads a whole CT in one streamed request.

Format ``wanying.series-bundle/1`` (integers little endian)::

    b"WYBUNDL1" | u32 H | header: H bytes of UTF-8 JSON | frame data

The header comes first so a client can draw as soon as the first frame's bytes arrive:

    {"format", "study_uid", "series_uid", "source_sha256", "encoding": "raw" | "htj2k",
     "transfer_syntax": "1.2.840.10008.1.2.1" (raw, little endian) | "1.2.840.10008.1.2.4.201" (HTJ2K lossless),
     "data_length": bytes of frame data (which starts at 12 + H; readers add "data_offset" = 12 + H),
     "instances": [{"sop_uid", "rows", "columns", "samples_per_pixel", "bits_allocated", "pixel_representation",
                    "frames": [[offset, length], ...]}],   # offsets from data_offset; instances in slice order
     "metadata": [DICOM JSON of each instance, same order, BulkDataURIs relative to the DICOMweb root]}

Instances are in slice order (position along the slice normal when every instance has one, else InstanceNumber).
``source_sha256`` names the exact originals the bundle was made from (SHA-256 over ``sop_uid:object_sha256``
lines, sorted); it is part of the file name and of the ETag, so a series that changed gets a new bundle and the
stale one is removed. Bundles are derived data: deleting them loses nothing, the next request rebuilds them from
the originals (whose hashes are verified on the way).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pydicom

from pipelines.dicomweb.catalog import CatalogRow
from pipelines.dicomweb.metadata import to_json
from pipelines.dicomweb.reading import ObjectReader, frame_arrays, frame_length, number_of_frames
from pipelines.dicomweb.transfer import EXPLICIT_LE, HTJ2K_LOSSLESS, encode_frame

FORMAT = "wanying.series-bundle/1"
MetadataOf = Callable[[CatalogRow], dict]
MAGIC = b"WYBUNDL1"
ENCODINGS = {"raw": EXPLICIT_LE, "htj2k": HTJ2K_LOSSLESS}
MEDIA_TYPE = "application/vnd.wanying.series-bundle"


def source_sha256(rows: list[CatalogRow]) -> str:
    lines = sorted(f"{r.sop_uid}:{r.object_sha256}" for r in rows)
    return hashlib.sha256((FORMAT + "\n" + "\n".join(lines)).encode()).hexdigest()


@dataclass(frozen=True)
class BuiltBundle:
    path: Path
    source_sha256: str
    encoding: str
    size: int

    @property
    def etag(self) -> str:
        return f'"{self.source_sha256[:40]}-{self.encoding}"'


@dataclass
class _Instance:
    order: tuple
    entry: dict
    metadata: dict
    frames: list[bytes | memoryview]


def _slice_key(ds) -> tuple:
    try:
        ipp = [float(v) for v in ds.ImagePositionPatient]
        iop = [float(v) for v in ds.ImageOrientationPatient]
        normal = np.cross(iop[:3], iop[3:])
        return (0, float(np.dot(normal, ipp)), int(ds.get("InstanceNumber") or 0))
    except (AttributeError, TypeError, ValueError, IndexError):
        return (1, float(ds.get("InstanceNumber") or 0), 0)


def _entry(row: CatalogRow, ds) -> dict:
    return {"sop_uid": row.sop_uid, "rows": int(ds.get("Rows") or 0), "columns": int(ds.get("Columns") or 0),
            "samples_per_pixel": int(ds.get("SamplesPerPixel") or 1),
            "bits_allocated": int(ds.get("BitsAllocated") or 0),
            "pixel_representation": int(ds.get("PixelRepresentation") or 0)}


def _instance(reader: ObjectReader, row: CatalogRow, encoding: str, metadata_of: MetadataOf) -> _Instance:
    header = reader.header(row.object_sha256)
    pixels = reader.native_pixels(row.object_sha256) if encoding == "raw" else None  # verified on the way
    if pixels is not None and "Rows" in header:
        size = frame_length(header)
        frames = [pixels[i * size:(i + 1) * size] for i in range(number_of_frames(header))]
    else:  # compressed, big endian or HTJ2K wanted: decode the original
        ds = pydicom.dcmread(io.BytesIO(reader.raw(row.object_sha256)))
        frames = [encode_frame(a, ENCODINGS[encoding]) for a in frame_arrays(ds)] if "PixelData" in ds else []
    return _Instance(_slice_key(header) + (row.sop_uid,), _entry(row, header), metadata_of(row), frames)


def default_metadata(reader: ObjectReader) -> MetadataOf:
    return lambda row: to_json(reader.header(row.object_sha256), study=row.study_uid, series=row.series_uid,
                               sop=row.sop_uid, transfer_syntax=row.transfer_syntax)


def build_bytes(reader: ObjectReader, rows: list[CatalogRow], encoding: str, *, workers: int = 2,
                metadata_of: MetadataOf | None = None) -> list[bytes]:
    """The bundle as a list of chunks (header first)."""
    metadata_of = metadata_of or default_metadata(reader)
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown bundle encoding {encoding!r}; use {' or '.join(ENCODINGS)}")
    with ThreadPoolExecutor(workers) as pool:  # codecs and hashing release the GIL
        items = sorted(pool.map(lambda r: _instance(reader, r, encoding, metadata_of), rows),
                       key=lambda i: i.order)
    offset, chunks = 0, []
    for item in items:
        spans = []
        for frame in item.frames:
            spans.append([offset, len(frame)])
            chunks.append(frame)
            offset += len(frame)
        item.entry["frames"] = spans
    first = rows[0]
    header = {"format": FORMAT, "study_uid": first.study_uid, "series_uid": first.series_uid,
              "source_sha256": source_sha256(rows), "encoding": encoding, "transfer_syntax": ENCODINGS[encoding],
              "data_length": offset, "instances": [i.entry for i in items], "metadata": [i.metadata for i in items]}
    body = json.dumps(header, separators=(",", ":")).encode()
    return [MAGIC + struct.pack("<I", len(body)), body, *chunks]


class BundleStore:
    """Bundle files under ``root/<series_uid>/<source_sha256>.<encoding>.bundle``, built once per version."""

    def __init__(self, root: Path, reader: ObjectReader, *, metadata_of: MetadataOf | None = None) -> None:
        self.root, self.reader = Path(root), reader
        self.metadata_of = metadata_of
        self.root.mkdir(parents=True, exist_ok=True)
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def path_of(self, series_uid: str, source: str, encoding: str) -> Path:
        return self.root / series_uid / f"{source}.{encoding}.bundle"

    def get(self, rows: list[CatalogRow], encoding: str = "raw") -> BuiltBundle:
        """The current bundle of the series made of ``rows`` (its current instances), built if missing or stale."""
        if not rows:
            raise LookupError("the series has no instances")
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown bundle encoding {encoding!r}; use {' or '.join(ENCODINGS)}")
        series, source = rows[0].series_uid, source_sha256(rows)
        path = self.path_of(series, source, encoding)
        if not path.exists():
            with self._guard:
                lock = self._locks.setdefault((series, encoding), threading.Lock())
            with lock:
                if not path.exists():
                    self._write(path, build_bytes(self.reader, rows, encoding, metadata_of=self.metadata_of))
                    for stale in path.parent.glob(f"*.{encoding}.bundle"):
                        if stale != path:
                            stale.unlink(missing_ok=True)
        os.utime(path)  # the modification time doubles as "last used" for prune()
        return BuiltBundle(path, source, encoding, path.stat().st_size)

    def prune(self, max_bytes: int) -> int:
        """Delete least recently used bundles until they fit in ``max_bytes`` (they are rebuilt on demand)."""
        files = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in self.root.glob("*/*.bundle"))
        total, removed = sum(size for _, size, _ in files), 0
        for _, size, path in files:
            if total <= max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed

    @staticmethod
    def _write(path: Path, chunks: list[bytes]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".tmp-{uuid.uuid4().hex}"
        with open(tmp, "wb") as fh:
            fh.writelines(chunks)
        os.replace(tmp, path)


# ------------------------------------------------------------------ reading a bundle (clients, the cache node)


def parse_prefix(buf: bytes | memoryview) -> dict | None:
    """The header once ``buf`` holds it (None before); raises ValueError when this is not a bundle."""
    if len(buf) < 12:
        return None
    if bytes(buf[:8]) != MAGIC:
        raise ValueError("not a Wanying series bundle (bad magic)")
    (size,) = struct.unpack_from("<I", buf, 8)
    if len(buf) < 12 + size:
        return None
    header = json.loads(bytes(buf[12:12 + size]))
    if header.get("format") != FORMAT:
        raise ValueError(f"unsupported bundle format {header.get('format')!r}")
    header["data_offset"] = 12 + size
    return header


def frame_array(header: dict, index: int, data: bytes | memoryview) -> np.ndarray:
    """Decode frame ``index`` (one per instance for single-frame series) from the frame bytes ``data``."""
    from pipelines.dicomweb.transfer import decode_frame

    entry = header["instances"][index]
    dtype = np.dtype({8: "u1", 16: "<u2", 32: "<u4"}[entry["bits_allocated"]])
    if entry["pixel_representation"] == 1:
        dtype = np.dtype(dtype.str.replace("u", "i"))
    shape = (entry["rows"], entry["columns"]) + ((entry["samples_per_pixel"],) if entry["samples_per_pixel"] > 1
                                                 else ())
    return decode_frame(data, header["transfer_syntax"], shape, dtype)
