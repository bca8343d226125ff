"""Pixel data and geometry of a planned series: CT in HU, MR signal, radiographs from line integrals.

Pure numpy: no files. The DICOM writer turns a :class:`RenderedSeries` into instances.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from wanying.demo import anatomy
from wanying.demo.anatomy import Lesion
from wanying.demo.model import SeriesPlan, Study

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
CT_INTERCEPT = -1024.0

#: kind -> (phantom, plane centre along z in phantom mm, CT windows (centre, width, name))
_CROSS = {
    "ct_chest": ("chest", -120.0, ((40, 400, "MEDIASTINUM"), (-600, 1500, "LUNG"))),
    "ct_head": ("head", -75.0, ((40, 80, "BRAIN"), (500, 2000, "BONE"))),
    "ct_abdomen": ("abdomen", -100.0, ((50, 350, "ABDOMEN"), (500, 2000, "BONE"))),
    "ct_chest_abdomen": ("chest_abdomen", -160.0, ((40, 400, "MEDIASTINUM"), (-600, 1500, "LUNG"))),
    "mr_head_ax": ("head", -80.0, ()),
    "mr_head_sag": ("head", -80.0, ()),
    "mr_lspine_sag": ("lumbar", -125.0, ()),
    "mr_lspine_ax": ("lumbar", anatomy.lumbar_disc_z(4), ()),
}
#: kind -> (phantom, axis, z centre, depth mm, mirror x, film constant)
_FILMS = {
    "xr_chest_pa": ("chest_film", "y", -140.0, 260.0, None, 5.0),
    "xr_knee_ap": ("knee", "y", -120.0, 140.0, 100.0, 3.5),
    "xr_knee_lat": ("knee", "x", -120.0, 160.0, None, 3.5),
    "xr_lspine_ap": ("lumbar", "y", -130.0, 300.0, None, 7.0),
    "xr_lspine_lat": ("lumbar", "x", -130.0, 320.0, None, 8.0),
}


@dataclass(frozen=True)
class RenderedSeries:
    frames: list[np.ndarray]  # uint16, rows x columns
    positions: list[tuple[float, float, float]] | None  # ImagePositionPatient per frame (cross-sectional)
    orientation: tuple[float, ...] | None
    slice_locations: list[float] | None
    windows: tuple[tuple[float, float, str], ...]
    laterality: list[str] | None = None  # radiographs: per frame


def lesion_of(study: Study) -> Lesion | None:
    if study.finding == "normal":
        return None
    return Lesion(study.finding, -1 if study.finding_side == "右" else 1, float(study.finding_size or 8))


def _rng(seed: int, series: SeriesPlan) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(f"{seed}|{series.uid}".encode()).digest()[:8], "big"))


def render(seed: int, study: Study, series: SeriesPlan, z_offset: float) -> RenderedSeries:
    """Pixels and geometry of ``series``; ``z_offset`` is where the table put the region in patient z."""
    if series.template.plane == "projection":
        return _film(seed, study, series)
    phantom_name, centre, windows = _CROSS[series.template.kind]
    phantom = anatomy.PHANTOMS[phantom_name]
    n, rows, cols, px, step = series.instances, series.rows, series.columns, series.pixel_mm, series.slice_mm
    offsets = ((n - 1) / 2 - np.arange(n)) * step
    lesion = lesion_of(study)
    if series.template.plane == "axial":
        zs = centre + offsets  # from the top down
        labels = anatomy.axial_volume(phantom, zs, rows, cols, px, lesion)
        first = (-(cols - 1) / 2 * px, -(rows - 1) / 2 * px)
        positions = [(first[0], first[1], float(z) + z_offset) for z in zs]
        orientation, locations = AXIAL, [float(z) + z_offset for z in zs]
    else:
        xs = -offsets  # from the patient's right to left
        labels = anatomy.sagittal_volume(phantom, xs, rows, cols, px, centre, lesion)
        top = centre + (rows - 1) / 2 * px + z_offset
        positions = [(float(x), -(cols - 1) / 2 * px, top) for x in xs]
        orientation, locations = SAGITTAL, [float(x) for x in xs]
    rng = _rng(seed, series)
    if series.modality == "CT":
        pixels = _ct(labels, rng, noise=4.0 if phantom_name == "head" else 10.0)
    else:
        pixels = _mr(labels, rng, series.template.sequence)
        lo, hi = np.percentile(pixels[pixels > 40], [2, 99]) if (pixels > 40).any() else (0, 4095)
        windows = (((lo + hi) / 2, max(hi - lo, 1.0), "AUTO"),)
    return RenderedSeries(list(pixels), [tuple(map(float, p)) for p in positions], orientation,
                          locations, tuple((float(c), float(w), e) for c, w, e in windows))


def _ct(labels: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    hu = ndimage.gaussian_filter(anatomy.HU[labels], sigma=(0, 0.6, 0.6))
    hu += rng.standard_normal(hu.shape, dtype=np.float32) * np.float32(noise)
    return np.clip(np.rint(hu - CT_INTERCEPT), 0, 4095).astype(np.uint16)


def _mr(labels: np.ndarray, rng: np.random.Generator, sequence: str) -> np.ndarray:
    table = anatomy.T1 if sequence == "T1" else anatomy.T2
    signal = ndimage.gaussian_filter(table[labels], sigma=(0, 0.8, 0.8))
    _, rows, cols = signal.shape
    yy, xx = np.mgrid[0:rows, 0:cols]
    signal *= (0.85 + 0.3 * (1 - yy / rows) * (0.5 + 0.5 * xx / cols)).astype(np.float32)  # coil sensitivity
    sigma = np.float32(25.0)  # magnitude of complex Gaussian noise: Rician, as MR magnitude images are
    noisy = np.hypot(signal + sigma * rng.standard_normal(signal.shape, dtype=np.float32),
                     sigma * rng.standard_normal(signal.shape, dtype=np.float32))
    return np.clip(np.rint(noisy), 0, 4095).astype(np.uint16)


def _film(seed: int, study: Study, series: SeriesPlan) -> RenderedSeries:
    phantom_name, axis, z_centre, depth, mirror, k = _FILMS[series.template.kind]
    phantom = anatomy.PHANTOMS[phantom_name]
    rows, cols = series.rows, series.columns
    low_rows = min(rows, 192)  # line integrals at low resolution, then interpolated: edges are blurred anyway
    low_cols = max(2, round(cols * low_rows / rows))
    low_px = series.pixel_mm * rows / low_rows
    line = anatomy.projection(phantom, axis, low_rows, low_cols, low_px, z_centre, depth, lesion_of(study),
                              mirror_x=mirror)
    line = ndimage.gaussian_filter(line, 0.7)
    full = ndimage.zoom(line, (rows / low_rows, cols / low_cols), order=1)[:rows, :cols]
    rng = _rng(seed, series)
    frames, sides = [], []
    for i in range(series.instances):
        film = 4095 * (1 - np.exp(-full / k)) + rng.standard_normal(full.shape, dtype=np.float32) * np.float32(12)
        frames.append(np.clip(np.rint(film), 0, 4095).astype(np.uint16))
        sides.append("B" if series.template.kind == "xr_knee_ap" else ("R", "L")[i] if series.instances > 1 else "")
    body = frames[0][frames[0] > 200]
    lo, hi = np.percentile(body, [1, 99.5]) if body.size else (0, 4095)
    return RenderedSeries(frames, None, None, None, (((lo + hi) / 2, max(hi - lo, 1.0), "DEFAULT"),), sides)
