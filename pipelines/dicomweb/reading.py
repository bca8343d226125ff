"""Reading stored originals: headers (cached, they are immutable), full datasets and their frames."""
from __future__ import annotations

import io
import struct
import threading
from collections import OrderedDict

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from pipelines.storage.objects import FileObjectStore, FsspecObjectStore, ObjectStore, object_key

PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
NATIVE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")


class ObjectReader:
    """Reads originals from the store. Header datasets are cached by object hash (an object never changes)."""

    def __init__(self, store: ObjectStore, header_cache: int = 8192) -> None:
        self.store = store
        self._headers: OrderedDict[str, Dataset] = OrderedDict()
        self._pixel_at: dict[str, int | None] = {}
        self._max = header_cache
        self._lock = threading.Lock()

    def raw(self, sha256: str, *, verify: bool = True) -> bytes:
        return self.store.get(sha256, verify=verify)

    def header(self, sha256: str) -> Dataset:
        """Everything but the pixel data. Do not modify the returned dataset (it is shared)."""
        with self._lock:
            ds = self._headers.get(sha256)
            if ds is not None:
                self._headers.move_to_end(sha256)
                return ds
        with self._open(sha256) as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True)
            at = fh.tell()  # pydicom stops at the start of the Pixel Data element
            pixel_at = at if fh.read(4) == PIXEL_DATA_TAG else None
        with self._lock:
            self._headers[sha256] = ds
            self._pixel_at[sha256] = pixel_at
            while len(self._headers) > self._max:
                gone, _ = self._headers.popitem(last=False)
                self._pixel_at.pop(gone, None)
        return ds

    def native_pixels(self, sha256: str) -> memoryview | None:
        """The Pixel Data value of a native little-endian original, cut from its verified bytes without parsing
        the dataset again; None when it is not that simple (encapsulated, big endian, no pixel data)."""
        ds = self.header(sha256)
        at = self._pixel_at.get(sha256)
        ts = transfer_syntax_of(ds)
        if at is None or ts not in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"):
            return None
        raw = memoryview(self.raw(sha256))
        if ts == "1.2.840.10008.1.2":
            length, start = struct.unpack_from("<I", raw, at + 4)[0], at + 8
        else:
            length, start = struct.unpack_from("<I", raw, at + 8)[0], at + 12
        if length == 0xFFFFFFFF or start + length > len(raw):
            return None
        return raw[start:start + length]

    def dataset(self, sha256: str, *, verify: bool = True) -> Dataset:
        return pydicom.dcmread(io.BytesIO(self.raw(sha256, verify=verify)))

    def _open(self, sha256: str):
        if isinstance(self.store, FileObjectStore):
            return open(self.store.path_of(sha256), "rb")
        if isinstance(self.store, FsspecObjectStore):  # reads only the blocks the header needs
            return self.store.fs.open(f"{self.store.base}/{object_key(sha256)}", "rb")
        return io.BytesIO(self.store.get(sha256))


def transfer_syntax_of(ds: Dataset) -> str:
    return str(ds.file_meta.TransferSyntaxUID)


def number_of_frames(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def frame_length(ds: Dataset) -> int:
    """Bytes of one native frame (bit-packed 1-bit data is rounded up per frame)."""
    bits = int(ds.BitsAllocated)
    pixels = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
    return (pixels * bits + 7) // 8


def stored_frames(ds: Dataset) -> list[bytes]:
    """The frames exactly as stored: native slices of Pixel Data, or the encapsulated fragments of each frame."""
    if "PixelData" not in ds:
        return []
    n = number_of_frames(ds)
    data = ds.PixelData
    if transfer_syntax_of(ds) in NATIVE:
        size = frame_length(ds)
        return [bytes(data[i * size:(i + 1) * size]) for i in range(n)]
    return list(generate_frames(data, number_of_frames=n))


def native_dtype(ds: Dataset) -> np.dtype:
    bits = int(ds.BitsAllocated)
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    if bits == 8:
        return np.dtype(np.int8 if signed else np.uint8)
    if bits == 16:
        return np.dtype("<i2" if signed else "<u2")
    if bits == 32:
        return np.dtype("<i4" if signed else "<u4")
    raise ValueError(f"BitsAllocated {bits} has no native array form here")


def frame_arrays(ds: Dataset) -> list[np.ndarray]:
    """Decoded frames (rows, columns[, samples]) in stored values, whatever the transfer syntax."""
    rows, cols, spp = int(ds.Rows), int(ds.Columns), int(ds.get("SamplesPerPixel", 1))
    shape = (rows, cols) if spp == 1 else (rows, cols, spp)
    if transfer_syntax_of(ds) in NATIVE and transfer_syntax_of(ds) != "1.2.840.10008.1.2.2":
        dtype = native_dtype(ds)
        planar = spp > 1 and int(ds.get("PlanarConfiguration", 0)) == 1
        out = []
        for frame in stored_frames(ds):
            arr = np.frombuffer(frame, dtype=dtype)
            arr = arr.reshape((spp, rows, cols)).transpose(1, 2, 0) if planar else arr.reshape(shape)
            out.append(arr)
        return out
    arr = ds.pixel_array  # compressed or big endian: let pydicom's decoders do it
    return list(arr) if number_of_frames(ds) > 1 else [arr]
