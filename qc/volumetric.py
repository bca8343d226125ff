"""Measurements shared by CT and MR series: slice continuity, scan range, roll, sharpness."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from qc.measures import bbox, edge_sharpness, principal_angle
from qc.scoring import Measurement


def plane(exam) -> str:
    """'axial', 'sagittal' or 'coronal' from the slice normal (ImageOrientationPatient); axial when unknown."""
    iop = exam.tags.get("ImageOrientationPatient", "")
    if not iop:
        return "axial"
    v = [float(x) for x in iop.split(",")]
    normal = np.abs(np.cross(v[:3], v[3:]))
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


def downsample_volume(vol: np.ndarray, factor: int) -> np.ndarray:
    """In-plane downsampling for masks: mean of four samples per block (a quarter of the data read)."""
    if factor <= 1:
        return vol
    h, w = (vol.shape[1] // factor) * factor, (vol.shape[2] // factor) * factor
    half = factor // 2
    v = vol[:, :h, :w]
    out = v[:, ::factor, ::factor].astype(np.float32)
    if half:
        out += v[:, half::factor, half::factor]
        out += v[:, ::factor, half::factor]
        out += v[:, half::factor, ::factor]
        out *= 0.25
    return out


def fill_slices(mask: np.ndarray) -> np.ndarray:
    """Fill holes slice by slice in one labelling pass: background not connected to a slice's border is a hole."""
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = ndi.generate_binary_structure(2, 1)
    labels, count = ndi.label(~mask, structure=in_plane)
    outside = np.zeros(count + 1, bool)
    for edge in (labels[:, 0, :], labels[:, -1, :], labels[:, :, 0], labels[:, :, -1]):
        outside[np.unique(edge)] = True
    outside[0] = False
    return mask | ~outside[labels] & (labels > 0)


def missing_slices(positions: list[float]) -> Measurement:
    """Gaps in the slice positions larger than the regular spacing (ImagePositionPatient along the normal)."""
    if len(positions) < 3:
        return Measurement(float("nan"))
    pos = np.sort(np.asarray(positions))
    gaps = np.diff(pos)
    step = float(np.median(gaps))
    if step <= 0:
        return Measurement(float("nan"), note="duplicate positions")
    missing = np.round(gaps / step) - 1
    after = [int(i) for i in np.nonzero(missing > 0)[0]]
    where = {"after_slices": after, "positions_mm": [round(float(pos[i]), 2) for i in after]} if after else None
    return Measurement(float(missing[missing > 0].sum()), where)


def organ_end_fraction(organ: np.ndarray, ends) -> Measurement:
    """Organ area in the end slice(s) relative to its largest slice: near 0 when the range covers the organ."""
    areas = organ.sum(axis=(1, 2)).astype(float)
    peak = areas.max()
    if peak <= 0:
        return Measurement(float("nan"), note="organ not found")
    best, where = 0.0, None
    for end in ends:
        idx = len(areas) - 1 if end == "top" else 0
        frac = areas[idx] / peak
        if frac >= best:
            best, where = frac, {"end": end, "slice": idx, "bbox": bbox(organ[idx])}
    return Measurement(float(best), where)


def roll(mask: np.ndarray) -> Measurement:
    """Deviation of the cross-section's main axis from the nearest image axis (degrees), middle slices."""
    n = mask.shape[0]
    idx = [i for i in range(n // 4, max(n // 4 + 1, 3 * n // 4), max(1, n // 10)) if mask[i].sum() > 50]
    if not idx:
        return Measurement(float("nan"))
    angles = [principal_angle(mask[i]) for i in idx]
    devs = [min(abs(a), 90 - abs(a)) for a in angles]
    k = int(np.argsort(devs)[len(devs) // 2])
    return Measurement(float(np.median(devs)), {"slice": idx[k], "signed_deg": round(angles[k], 2)})


def middle_slices(n: int, count: int = 3) -> list[int]:
    return sorted({int(round(n * f)) for f in np.linspace(0.35, 0.65, count)} & set(range(n)))


def sharpness(vol: np.ndarray, lo: float, hi: float) -> Measurement:
    """Edge sharpness on the middle slices, values clipped to [lo, hi] (metal and air must not dominate)."""
    idx = middle_slices(vol.shape[0])
    values = [edge_sharpness(np.clip(vol[i], lo, hi)) for i in idx]
    return Measurement(float(np.median(values)), {"slices": idx})
