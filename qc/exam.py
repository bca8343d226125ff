"""Load a DICOM file or series folder into an Exam: pixels in a common convention plus the tags QC needs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom

RADIOGRAPH_MODALITIES = {"CR", "DX", "RG", "DR", "MG"}
VOLUME_MODALITIES = {"CT", "MR"}


@dataclass
class Exam:
    """One image (radiograph) or one series (CT/MR) ready for analysis.

    Radiograph pixels are float with bone bright (MONOCHROME1 inverted); ``full_scale`` is the top of the
    stored range. Volume pixels are (z, y, x) float, CT in HU; slices sorted along the slice normal.
    """

    modality: str
    pixels: np.ndarray
    spacing: tuple[float, ...]  # (row mm, col mm) or (z mm, row mm, col mm)
    tags: dict[str, str]
    full_scale: float = 0.0
    positions: list[float] = field(default_factory=list)  # slice positions along the normal, mm (volumes)
    datasets: list[pydicom.Dataset] = field(default_factory=list)  # headers only
    paths: list[Path] = field(default_factory=list)

    @property
    def is_volume(self) -> bool:
        return self.pixels.ndim == 3


TAG_KEYS = ("Modality", "BodyPartExamined", "ViewPosition", "StudyDescription", "SeriesDescription",
            "ProtocolName", "PatientOrientation", "InPlanePhaseEncodingDirection")


def _tags(ds: pydicom.Dataset) -> dict[str, str]:
    out = {k: str(ds.get(k, "") or "").strip() for k in TAG_KEYS}
    iop = ds.get("ImageOrientationPatient")
    out["ImageOrientationPatient"] = ",".join(f"{float(v):.3f}" for v in iop) if iop else ""
    return out


def _in_plane_spacing(ds: pydicom.Dataset) -> tuple[float, float]:
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(key)
        if value and float(value[0]) > 0 and float(value[1]) > 0:
            return float(value[0]), float(value[1])
    return 1.0, 1.0  # unknown: measurements fall back to pixel units


def slice_normal(ds: pydicom.Dataset) -> np.ndarray:
    iop = ds.get("ImageOrientationPatient")
    if not iop:
        return np.array([0.0, 0.0, 1.0])
    row, col = np.array(iop[:3], float), np.array(iop[3:], float)
    return np.cross(row, col)


def slice_position(ds: pydicom.Dataset) -> float | None:
    ipp = ds.get("ImagePositionPatient")
    if ipp is None:
        return None
    return float(np.dot(np.array(ipp, float), slice_normal(ds)))


def load_radiograph(ds: pydicom.Dataset, path: Path | None = None) -> Exam:
    raw = ds.pixel_array.astype(np.float32)
    full_scale = float(2 ** int(ds.get("BitsStored", 16)) - 1)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        raw = full_scale - raw
    del ds.PixelData  # keep the header only
    return Exam(str(ds.get("Modality", "")), raw, _in_plane_spacing(ds), _tags(ds), full_scale,
                datasets=[ds], paths=[path] if path else [])


def load_series(paths: list[Path]) -> Exam:
    """Read every file of one series, sort by position along the normal, stack (CT rescaled to HU)."""
    items = []
    for p in paths:
        ds = pydicom.dcmread(p)
        pos = slice_position(ds)
        items.append((pos if pos is not None else float(ds.get("InstanceNumber", 0) or 0), ds, p))
    items.sort(key=lambda t: t[0])
    first = items[0][1]
    slope, intercept = float(first.get("RescaleSlope", 1) or 1), float(first.get("RescaleIntercept", 0) or 0)
    volume = np.empty((len(items), int(first.Rows), int(first.Columns)), np.float32)
    headers = []
    for i, (_, ds, _) in enumerate(items):
        volume[i] = ds.pixel_array
        del ds.PixelData  # keep the header only; the pixels now live in the volume
        headers.append(ds)
    if slope != 1 or intercept != 0:
        volume *= slope
        volume += intercept
    positions = [it[0] for it in items]
    gaps = np.diff(positions)
    dz = float(np.median(gaps)) if len(gaps) else float(first.get("SliceThickness", 1) or 1)
    return Exam(str(first.get("Modality", "")), volume, (abs(dz),) + _in_plane_spacing(first), _tags(first),
                positions=positions, datasets=headers, paths=[it[2] for it in items])


def dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".dcm", ""))


def load(path: Path) -> Exam:
    """A file is one radiograph (or a one-slice series); a folder is one series."""
    path = Path(path)
    if path.is_dir():
        files = dicom_files(path)
        if not files:
            raise ValueError(f"{path}: no DICOM files")
        first = pydicom.dcmread(files[0], stop_before_pixels=True)
        if str(first.get("Modality", "")) in RADIOGRAPH_MODALITIES and len(files) == 1:
            return load_radiograph(pydicom.dcmread(files[0]), files[0])
        return load_series(files)
    ds = pydicom.dcmread(path)
    if str(ds.get("Modality", "")) in VOLUME_MODALITIES:
        return load_series([path])
    return load_radiograph(ds, path)


def discover(path: Path) -> list[list[Path]]:
    """The exams under a path: each radiograph file alone, each CT/MR series (by SeriesInstanceUID) together."""
    path = Path(path)
    files = [path] if path.is_file() else dicom_files(path)
    series: dict[str, list[Path]] = {}
    singles = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:
            continue  # not DICOM (labels.csv, notes): skipped
        if str(ds.get("Modality", "")) in VOLUME_MODALITIES:
            series.setdefault(str(ds.get("SeriesInstanceUID", f.parent)), []).append(f)
        else:
            singles.append([f])
    return singles + list(series.values())


def load_paths(paths: list[Path]) -> Exam:
    if len(paths) == 1:
        return load(paths[0])
    return load_series(paths)
