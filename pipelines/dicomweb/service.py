"""DICOMweb as plain calls: what the router (and the cache node) ask, answered with data, never HTTP."""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pydicom.tag import Tag

from pipelines.crypto import Keyring
from pipelines.dicom.ingest import DicomIngest
from pipelines.dicomweb.bundle import BuiltBundle, BundleStore
from pipelines.dicomweb.catalog import Catalog, CatalogRow
from pipelines.dicomweb.metadata import absolutize, to_json
from pipelines.dicomweb.multipart import Part
from pipelines.dicomweb.query import parse_query
from pipelines.dicomweb.reading import ObjectReader, frame_arrays, number_of_frames, stored_frames
from pipelines.dicomweb.render import RenderOptions, render
from pipelines.dicomweb.search import search
from pipelines.dicomweb.stow import StowResult, store_parts
from pipelines.dicomweb.transfer import (EXPLICIT_LE, Acceptable, choose_frame_syntax, choose_instance_syntax,
                                         encode_frame)
from pipelines.storage.index import InstanceIndex
from pipelines.storage.objects import ObjectStore


class NotFound(LookupError):
    """No such study, series, instance, frame or attribute (404 with this message)."""


@dataclass(frozen=True)
class FrameAnswer:
    media_type: str
    transfer_syntax: str
    frames: list[bytes]


class DicomWebService:
    def __init__(self, *, store: ObjectStore, index: InstanceIndex, ingest: DicomIngest, keys: Keyring,
                 derived_dir: Path) -> None:
        self.store, self.index, self.ingest = store, index, ingest
        self.reader = ObjectReader(store)
        self.catalog = Catalog(index.engine, self.reader, keys)
        self.bundles = BundleStore(Path(derived_dir) / "bundles", self.reader, metadata_of=self._metadata_of)
        self._metadata: OrderedDict[str, dict] = OrderedDict()
        self._metadata_lock = threading.Lock()

    @classmethod
    def for_platform(cls, platform) -> "DicomWebService":
        return cls(store=platform.dicom_store, index=platform.dicom_index, ingest=platform.dicom_ingest,
                   keys=platform.keys, derived_dir=platform.settings.data_dir.resolve() / "derived")

    # ------------------------------------------------------------------ lookups

    def rows(self, study: str, series: str | None = None, sop: str | None = None) -> list[CatalogRow]:
        """Current instances of a study, series or one instance; NotFound when there are none."""
        self.catalog.sync()
        if sop is not None:
            row = self.catalog.instance_row(study, series, sop)
            found = [row] if row else []
        elif series is not None:
            found = self.catalog.series_rows(study, series)
        else:
            found = self.catalog.study_rows(study)
        if not found:
            what = f"instance {sop}" if sop else f"series {series}" if series else f"study {study}"
            raise NotFound(f"{what} is not here")
        return found

    def person_key(self, study: str) -> str | None:
        row = self.index.study(study)
        return row.person_key if row else None

    # ------------------------------------------------------------------ QIDO

    def search(self, level: str, params: list[tuple[str, str]], root: str, *, study: str | None = None,
               series: str | None = None) -> list[dict]:
        query = parse_query(level, params)
        self.catalog.sync()
        return search(self.catalog, query, root, study_uid=study, series_uid=series)

    # ------------------------------------------------------------------ WADO

    def instance_parts(self, rows: list[CatalogRow], accept: list[Acceptable]) -> tuple[str | None, Iterator[Part]]:
        """The instances as application/dicom parts; the syntax is checked for every row before any is read."""
        syntaxes = [choose_instance_syntax(accept, r.transfer_syntax) for r in rows]
        named = {s for s, r in zip(syntaxes, rows) if s != r.transfer_syntax}

        def parts() -> Iterator[Part]:
            for row, syntax in zip(rows, syntaxes):
                data = self.reader.raw(row.object_sha256)
                if syntax != row.transfer_syntax:
                    data = self._transcode(row, syntax)
                yield Part(f"application/dicom; transfer-syntax={syntax}", data)

        return (named.pop() if len(named) == 1 and len(set(syntaxes)) == 1 else None), parts()

    def _transcode(self, row: CatalogRow, syntax: str) -> bytes:
        import io

        from pydicom.encaps import encapsulate
        from pydicom.uid import UID

        ds = self.reader.dataset(row.object_sha256)
        frames = [encode_frame(a, syntax) for a in frame_arrays(ds)]
        if syntax == EXPLICIT_LE:
            ds.PixelData = b"".join(frames)
            ds["PixelData"].VR = "OW" if int(ds.BitsAllocated) > 8 else "OB"
            if int(ds.get("SamplesPerPixel", 1)) > 1:
                ds.PlanarConfiguration = 0
        else:
            ds.PixelData = encapsulate(frames)
            ds["PixelData"].VR = "OB"
            ds["PixelData"].is_undefined_length = True
            if int(ds.get("SamplesPerPixel", 1)) > 1:
                ds.PlanarConfiguration = 0
        ds.file_meta.TransferSyntaxUID = UID(syntax)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True, implicit_vr=False, little_endian=True)
        return buf.getvalue()

    def metadata(self, rows: list[CatalogRow], root: str) -> list[dict]:
        import copy

        return [absolutize(copy.deepcopy(self._metadata_of(r)), root) for r in rows]

    def _metadata_of(self, row: CatalogRow) -> dict:
        """Relative-URI metadata of an instance, cached by object (shared: copy before changing it)."""
        with self._metadata_lock:
            doc = self._metadata.get(row.object_sha256)
        if doc is None:
            header = self.reader.header(row.object_sha256)
            with self._metadata_lock:  # pydicom converts raw elements lazily: one thread per shared header
                doc = to_json(header, study=row.study_uid, series=row.series_uid, sop=row.sop_uid,
                              transfer_syntax=row.transfer_syntax)
                self._metadata[row.object_sha256] = doc
                while len(self._metadata) > 4096:
                    self._metadata.popitem(last=False)
        return doc

    def frames(self, row: CatalogRow, numbers: list[int], accept: list[Acceptable]) -> FrameAnswer:
        syntax, media = choose_frame_syntax(accept, row.transfer_syntax)
        ds = self.reader.dataset(row.object_sha256)
        if "PixelData" not in ds:
            raise NotFound(f"instance {row.sop_uid} has no pixel data")
        count = number_of_frames(ds)
        bad = [n for n in numbers if not 1 <= n <= count]
        if bad:
            raise NotFound(f"instance {row.sop_uid} has frames 1-{count}; no frame {bad[0]}")
        if syntax == row.transfer_syntax or (syntax == EXPLICIT_LE and row.transfer_syntax == "1.2.840.10008.1.2"):
            stored = stored_frames(ds)
            return FrameAnswer(media, syntax, [stored[n - 1] for n in numbers])
        arrays = frame_arrays(ds)
        return FrameAnswer(media, syntax, [encode_frame(arrays[n - 1], syntax) for n in numbers])

    def bulkdata(self, row: CatalogRow, tag: str) -> bytes:
        ds = self.reader.dataset(row.object_sha256)
        try:
            wanted = Tag(int(tag, 16))
        except ValueError:
            raise NotFound(f"{tag!r} is not a tag") from None
        for elem in ds.iterall():
            if elem.tag == wanted and isinstance(elem.value, (bytes, bytearray)):
                return bytes(elem.value)
        raise NotFound(f"instance {row.sop_uid} has no bulk data at {tag}")

    def rendered(self, row: CatalogRow, frame: int, options: RenderOptions) -> bytes:
        ds = self.reader.dataset(row.object_sha256)
        if "PixelData" not in ds:
            raise NotFound(f"instance {row.sop_uid} has no image to render")
        arrays = frame_arrays(ds)
        if not 1 <= frame <= len(arrays):
            raise NotFound(f"instance {row.sop_uid} has frames 1-{len(arrays)}; no frame {frame}")
        return render(ds, arrays[frame - 1], options)

    def thumbnail(self, rows: list[CatalogRow], options: RenderOptions) -> bytes:
        images = [r for r in rows if r.number_of_frames is not None or r.modality not in ("SR", "KO", "PR")]
        row = sorted(images or rows, key=lambda r: (r.instance_number or 0, r.sop_uid))[len(images or rows) // 2]
        count = max(1, row.number_of_frames or 1)
        return self.rendered(row, (count + 1) // 2, options)

    # ------------------------------------------------------------------ bundles and STOW

    def bundle(self, study: str, series: str, encoding: str = "raw") -> BuiltBundle:
        return self.bundles.get(self.rows(study, series), encoding)

    def prebuild(self, study: str, encodings: tuple[str, ...] = ("raw",)) -> list[BuiltBundle]:
        """Build the bundles of every series of a study now (at study completion, so the first view is warm)."""
        rows = self.rows(study)
        by_series: dict[str, list[CatalogRow]] = {}
        for r in rows:
            by_series.setdefault(r.series_uid, []).append(r)
        return [self.bundles.get(series_rows, e) for series_rows in by_series.values() for e in encodings]

    def stow(self, body: bytes, content_type: str, *, hospital: str, source: str,
             study: str | None = None) -> StowResult:
        result = store_parts(self.ingest, body, content_type, hospital=hospital, source=source, study_uid=study)
        self.catalog.sync()
        return result
