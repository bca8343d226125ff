"""MR series measurements: coverage, phase-direction ghosting, wrap-around, intensity non-uniformity, SNR."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from qc import volumetric as V
from qc.exam import Exam
from qc.measures import factor_for, in_original, largest_components, noise_sigma, otsu
from qc.radiograph import spine_band, vertebra_count
from qc.scoring import Measurement


def foreground(small: np.ndarray) -> np.ndarray:
    sm = ndi.gaussian_filter(small, (0, 1, 1))
    t = otsu(sm[sm > 0.02 * sm.max()])
    return V.fill_slices(largest_components(sm > 0.5 * t, 1))


def phase_axis(exam: Exam) -> int:
    return 1 if exam.tags.get("InPlanePhaseEncodingDirection", "").upper() == "ROW" else 0


def ghosting(vol: np.ndarray, fg: np.ndarray, axis: int, factor: int) -> Measurement:
    """Background signal alongside the object in the phase direction, above the noise floor, relative to the
    object's signal. Ghosts of a moving object repeat along the phase axis only."""
    vals = []
    for i in V.middle_slices(vol.shape[0]):
        s = vol[i]
        obj = np.kron(fg[i], np.ones((factor, factor), bool))[: s.shape[0], : s.shape[1]]
        if obj.shape != s.shape or obj.sum() < 50:
            continue
        near = ndi.binary_dilation(obj, iterations=3)
        other = 1 - axis
        span = np.nonzero(obj.any(axis=axis))[0]
        band = np.zeros_like(obj)
        sl = [slice(None), slice(None)]
        sl[other] = slice(span[0], span[-1] + 1)
        band[tuple(sl)] = True
        bg = band & ~near
        if bg.sum() < 20:
            continue
        sigma = noise_sigma(s, ndi.binary_erosion(obj, iterations=3))
        level = float(np.median(s[obj]))
        vals.append((float(s[bg].mean()) - 1.2533 * sigma) / max(level, 1e-6))
    value = float(np.median(vals)) if vals else float("nan")
    return Measurement(value, {"phase_axis": "rows" if axis == 0 else "columns"})


def wrap(fg: np.ndarray, axis: int) -> Measurement:
    """Object signal at both ends of the phase axis (folded-in anatomy), worst slice."""
    first = fg.take([0, 1], axis=axis + 1).any(axis=axis + 1).mean(axis=1)
    last = fg.take([-2, -1], axis=axis + 1).any(axis=axis + 1).mean(axis=1)
    both = np.minimum(first, last) + 0.5 * np.maximum(first, last) * (np.minimum(first, last) > 0)
    k = int(np.argmax(both))
    return Measurement(float(both[k]), {"slice": k} if both[k] > 0 else None)


def top_edge_contact(fg: np.ndarray) -> Measurement:
    """Share of the top rows covered by the object on the middle slices (sagittal): 0 when the vertex is in."""
    idx = V.middle_slices(fg.shape[0])
    share = [float(fg[i, :2].any(axis=0).mean()) for i in idx]
    k = int(np.argmax(share))
    return Measurement(float(np.median(share)), {"edge": "top", "slice": idx[k]} if share[k] > 0 else None,
                       note="sagittal series: vertex at the top edge")


def nonuniformity(small: np.ndarray, fg: np.ndarray) -> Measurement:
    """Spread of the very smooth (normalised-convolution) signal inside the object: a bias field's signature."""
    vals = []
    for i in V.middle_slices(small.shape[0]):
        m = ndi.binary_erosion(fg[i], iterations=2)
        if m.sum() < 50:
            continue
        sigma = max(small.shape[1:]) / 8
        num = ndi.gaussian_filter(small[i] * m, sigma)
        den = ndi.gaussian_filter(m.astype(np.float32), sigma)
        lowpass = num[m] / np.maximum(den[m], 1e-3)
        p5, p95 = np.percentile(lowpass, [5, 95])
        vals.append((p95 - p5) / max(float(np.median(lowpass)), 1e-6))
    return Measurement(float(np.median(vals)) if vals else float("nan"))


def snr(vol: np.ndarray, fg: np.ndarray, factor: int) -> Measurement:
    vals = []
    for i in V.middle_slices(vol.shape[0]):
        obj = np.kron(ndi.binary_erosion(fg[i], iterations=2), np.ones((factor, factor), bool))
        obj = obj[: vol.shape[1], : vol.shape[2]]
        if obj.shape != vol.shape[1:] or obj.sum() < 50:
            continue
        sigma = noise_sigma(vol[i], obj)
        vals.append(float(np.median(vol[i][obj])) / max(sigma, 1e-6))
    return Measurement(float(np.median(vals)) if vals else float("nan"))


def measure(exam: Exam, params: dict) -> dict[str, Measurement]:
    vol = exam.pixels
    factor = factor_for(vol.shape, 128)
    small = V.downsample_volume(vol, factor)
    fg = foreground(small)
    axis = phase_axis(exam)
    mm = exam.spacing[1] * factor
    out = {"missing_slices": V.missing_slices(exam.positions), "roll_deg": V.roll(fg)}
    kind = params.get("mask", "body")
    if kind != "spine" and V.plane(exam) == "sagittal":
        # a sagittal series of an axial protocol (the head's routine T1 sagittal): the range runs across the
        # slices, so coverage is the vertex inside the field, and the section's long axis says nothing of roll
        out["organ_end_fraction"] = top_edge_contact(fg)
        out["roll_deg"] = Measurement(float("nan"), note="not read on a sagittal series")
    elif kind == "spine":
        mid = small[small.shape[0] // 2]
        smooth = ndi.gaussian_filter(mid / max(float(mid.max()), 1e-6), 1.0)
        out["vertebra_count"] = vertebra_count(smooth, mm, spine_band(smooth, fg[small.shape[0] // 2], mm))
    else:
        out["organ_end_fraction"] = V.organ_end_fraction(fg, params.get("ends", ["top"]))
    if len(exam.positions) > 1:
        pos = sorted(exam.positions)
        out["scan_length_mm"] = Measurement(float(pos[-1] - pos[0] + exam.spacing[0]))
    out["phase_ghost_ratio"] = ghosting(vol, fg, axis, factor)
    out["wrap_fraction"] = wrap(fg, axis)
    out["nonuniformity"] = nonuniformity(small, fg)
    out["snr"] = snr(vol, fg, factor)
    for key in ("vertebra_count", "organ_end_fraction"):
        if key in out:
            out[key].where = in_original(out[key].where, factor)
    top = float(np.percentile(small, 99.5))
    out["sharpness_ratio"] = V.sharpness(vol / max(top, 1e-6), 0.0, 10.0)
    return out
