"""Content-addressed object store under an fsspec URL.

An object's name is the SHA-256 of its bytes: ``<root>/sha256/ab/cd/abcd…``. Objects are immutable, so a put of
bytes already stored is a no-op, and any copy anywhere can be checked by re-hashing it.

- ``file://`` (or a plain path): write to a temporary file in the target folder, optionally fsync, then rename;
  a reader never sees a partial object. ``fsync="each"`` fsyncs the file and its folder before ``put`` returns;
  ``fsync="batch"`` leaves both to :meth:`ObjectStore.sync`, which a caller runs on its own schedule (the SCP: a
  background flush every few tens of milliseconds and before it confirms an association's release).
- ``s3://bucket/prefix`` (s3fs): one PUT per object, which S3 makes visible atomically; no multipart upload
  (Object Lock retention does not apply to multipart uploads in every store).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import threading
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Sequence
from urllib.parse import urlsplit

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
FsyncMode = Literal["each", "batch", "off"]


class ObjectCorrupt(ValueError):
    """The bytes do not hash to the name they were given or stored under."""


@dataclass(frozen=True)
class PutResult:
    sha256: str
    size: int
    created: bool  # False when the object was already there


def sha256_hex(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def object_key(sha256: str) -> str:
    if not _HEX64.match(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256[:80]!r}")
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class ObjectStore(ABC):
    url: str

    def put(self, data: bytes | memoryview, *, sha256: str | None = None) -> PutResult:
        """Store bytes; if ``sha256`` is given the bytes must hash to it (else :class:`ObjectCorrupt`)."""
        return self.put_parts([data], sha256=sha256)

    def put_parts(self, parts: Sequence[bytes | memoryview], *, sha256: str | None = None) -> PutResult:
        """Store the concatenation of ``parts`` without building it in memory first."""
        hasher = hashlib.sha256()
        for part in parts:
            hasher.update(part)
        digest, size = hasher.hexdigest(), sum(len(p) for p in parts)
        if sha256 is not None and sha256 != digest:
            raise ObjectCorrupt(f"bytes hash to {digest}, not the expected {sha256}")
        if self.exists(digest):
            return PutResult(digest, size, False)
        self._write(object_key(digest), parts)
        return PutResult(digest, size, True)

    def get(self, sha256: str, *, verify: bool = True) -> bytes:
        data = self._read(object_key(sha256))
        if verify and sha256_hex(data) != sha256:
            raise ObjectCorrupt(f"object {sha256} is corrupt: its bytes hash to something else")
        return data

    def verify(self, sha256: str) -> bool:
        try:
            self.get(sha256)
        except (ObjectCorrupt, FileNotFoundError):
            return False
        return True

    def exists(self, sha256: str) -> bool:
        return self._exists(object_key(sha256))

    def sync(self, *, precise: bool = False) -> int:
        """Make every object put so far durable (only does work in ``fsync="batch"`` mode)."""
        return 0

    @abstractmethod
    def iter_hashes(self) -> Iterator[str]: ...

    @abstractmethod
    def _write(self, key: str, parts: Sequence[bytes | memoryview]) -> None: ...

    @abstractmethod
    def _read(self, key: str) -> bytes: ...

    @abstractmethod
    def _exists(self, key: str) -> bool: ...


class FileObjectStore(ObjectStore):
    def __init__(self, root: str | Path, *, fsync: FsyncMode = "each") -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = self.root.resolve().as_uri()
        self.fsync = fsync
        self._pending: list[Path] = []
        self._made: set[str] = set()
        self._lock = threading.Lock()

    def path_of(self, sha256: str) -> Path:
        return self.root / object_key(sha256)

    def _write(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        final = self.root / key
        folder = str(final.parent)
        if folder not in self._made:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(folder)
        tmp = final.parent / f".tmp-{uuid.uuid4().hex}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            written, total = os.writev(fd, parts), sum(len(p) for p in parts)
            if written < total:  # short write (rare): finish the rest piece by piece
                rest = memoryview(b"".join(parts))[written:]
                while rest:
                    rest = rest[os.write(fd, rest):]
            if self.fsync == "each":
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, final)
        if self.fsync == "each":
            _fsync_dir(final.parent)
        elif self.fsync == "batch":
            with self._lock:
                self._pending.append(final)

    def sync(self, *, precise: bool = False) -> int:
        """Make every object written since the last call durable; returns how many objects.

        By default one ``syncfs`` of the store's filesystem (one journal commit) instead of an fsync per object and
        folder, which would commit the journal once per object and stall the writers' renames meanwhile.
        ``precise=True`` fsyncs exactly our objects and folders: its time does not depend on what other programs
        left unwritten on the same filesystem (for a caller that waits on it, e.g. an association's release)."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        if _syncfs is not None and not precise:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                if _syncfs(fd) != 0:
                    raise OSError(ctypes.get_errno(), "syncfs failed")
            finally:
                os.close(fd)
            return len(pending)
        for path in pending:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for folder in {p.parent for p in pending}:
            _fsync_dir(folder)
        return len(pending)

    def _read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def _exists(self, key: str) -> bool:
        return (self.root / key).exists()

    def iter_hashes(self) -> Iterator[str]:
        base = self.root / "sha256"
        if not base.exists():
            return
        for path in sorted(base.glob("*/*/*")):
            if _HEX64.match(path.name):
                yield path.name


def _load_syncfs():
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    return fn


_syncfs = _load_syncfs()  # Linux; elsewhere sync() falls back to an fsync per object


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FsspecObjectStore(ObjectStore):
    """Any fsspec filesystem; used for ``s3://``. ``storage_options`` go to the filesystem (e.g. endpoint_url)."""

    def __init__(self, url: str, **storage_options) -> None:
        import fsspec

        self.url = url.rstrip("/")
        self.fs, self.base = fsspec.core.url_to_fs(self.url, **storage_options)
        self.base = self.base.rstrip("/")

    def _write(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        data = b"".join(parts)
        self.fs.pipe_file(f"{self.base}/{key}", data)  # one PUT: visible whole or not at all

    def _read(self, key: str) -> bytes:
        return self.fs.cat_file(f"{self.base}/{key}")

    def _exists(self, key: str) -> bool:
        return self.fs.exists(f"{self.base}/{key}")

    def iter_hashes(self) -> Iterator[str]:
        try:
            paths = self.fs.find(f"{self.base}/sha256")
        except FileNotFoundError:
            return
        for path in sorted(paths):
            name = path.rsplit("/", 1)[-1]
            if _HEX64.match(name):
                yield name


def open_store(url: str, *, fsync: FsyncMode = "each", **storage_options) -> ObjectStore:
    """``file:///abs/path``, a plain path, or any fsspec URL such as ``s3://bucket/prefix``."""
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        return FileObjectStore(parts.path if parts.scheme else url, fsync=fsync)
    if parts.scheme == "s3" and "endpoint_url" not in storage_options and os.environ.get("AWS_ENDPOINT_URL"):
        storage_options["endpoint_url"] = os.environ["AWS_ENDPOINT_URL"]
    return FsspecObjectStore(url, **storage_options)
