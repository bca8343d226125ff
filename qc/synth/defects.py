"""Defects injected at known strength (severity 1 mild, 2 moderate, 3 severe).

Each defect names the QC dimension it spoils. Radiograph defects act on detector values (MONOCHROME2, bone
bright); volume defects act on HU (CT) or signal (MR). Geometry defects (tilt, crop, truncation, wrap, coverage)
are applied when rendering, so they are listed with their rendering parameters.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

XR_DEFECTS = {"cropped": "coverage", "wrong_body_part": "coverage", "tilt": "positioning",
              "motion_ghost": "artefact", "metal": "artefact", "blur": "clarity", "noise": "clarity",
              "underexposure": "clarity", "overexposure": "clarity"}
CT_DEFECTS = {"cropped": "coverage", "missing_slices": "coverage", "truncation": "coverage",
              "wrong_body_part": "coverage", "rotation": "positioning", "metal_streak": "artefact",
              "ring": "artefact", "motion_ghost": "artefact", "blur": "clarity", "noise": "clarity"}
MR_DEFECTS = {"cropped": "coverage", "missing_slices": "coverage", "wrong_body_part": "coverage",
              "rotation": "positioning", "motion_ghost": "artefact", "wrap_around": "artefact",
              "bias_field": "artefact", "blur": "clarity", "noise": "clarity"}

# chest PA only: the patient turned about the vertical axis (clavicle heads asymmetric about the spinous
# processes) and a shallow breath (diaphragm domes higher, fewer posterior ribs above them)
CHEST_DEFECTS = {"rotation": "positioning", "poor_inspiration": "positioning"}

# rendering parameters per severity
XR_TILT = {1: 5.0, 2: 9.0, 3: 15.0}  # in-plane, degrees
CHEST_ROTATION = {1: 3.0, 2: 6.0, 3: 10.0}  # about the vertical axis, degrees
DIAPHRAGM_RAISE = {1: 30.0, 2: 55.0, 3: 85.0}  # mm: about 1.2, 2.3 and 3.5 posterior ribs fewer
XR_CROP_SHIFT = {  # mm the anatomy moves (x, y) per severity: costophrenic angles, flanks, upper vertebrae
    "chest_pa": {1: (0, 72), 2: (0, 95), 3: (0, 120)},
    "abdomen_erect": {1: (40, 0), 2: (60, 0), 3: (85, 0)},
    "lumbar_ap": {1: (0, -30), 2: (0, -66), 3: (0, -102)},
    "lumbar_lat": {1: (0, -30), 2: (0, -66), 3: (0, -102)},
    "knee_ap": {1: (45, 0), 2: (65, 0), 3: (90, 0)},
    "knee_lat": {1: (45, 0), 2: (65, 0), 3: (90, 0)},
}
REAL_CROP_FRACTION = {1: 0.05, 2: 0.09, 3: 0.14}  # of the image height cut from the top: apices (real chest)
VOL_ROLL = {1: 6.0, 2: 12.0, 3: 20.0}
VOL_CROP_MM = {1: 20.0, 2: 40.0, 3: 65.0}  # removed from the superior end (or the field moved, lumbar)
MISSING = {1: 1, 2: 3, 3: 6}
TRUNCATION_FOV = {1: 0.98, 2: 0.9, 3: 0.8}  # FOV as a fraction of the body's width
WRAP_FOV = {"mr_head": {1: 0.75, 2: 0.66, 3: 0.57}, "mr_upper_abdomen": {1: 0.58, 2: 0.5, 3: 0.42},
            "mr_lumbar": {1: 0.72, 2: 0.64, 3: 0.56}}


def blur(img: np.ndarray, severity: int, axes=(0, 1)) -> np.ndarray:
    sigma = {1: 1.0, 2: 1.8, 3: 3.0}[severity]
    s = [0.0] * img.ndim
    for a in axes:
        s[a] = sigma
    return ndi.gaussian_filter(img, s)


def ghost(img: np.ndarray, severity: int, shift_px: tuple[float, float], axes=(0, 1)) -> np.ndarray:
    """Patient motion during exposure/acquisition: a displaced, weaker copy (double edges)."""
    a = {1: 0.15, 2: 0.3, 3: 0.45}[severity]
    shift = [0.0] * img.ndim
    shift[axes[0]], shift[axes[1]] = shift_px
    return (1 - a) * img + a * ndi.shift(img, shift, order=1, mode="nearest")


# radiographs -------------------------------------------------------------------------------------------------

def xr_noise(v, severity, rng, full_scale):
    lo, hi = np.percentile(v, [5, 95])
    sd = {1: 0.025, 2: 0.05, 3: 0.1}[severity] * (hi - lo)
    return np.clip(v + rng.normal(0, sd, v.shape), 0, full_scale)


def xr_underexposure(v, severity, rng, full_scale):
    """Too few photons: the range collapses towards 'white' (little signal) and quantum noise rises."""
    c = {1: 0.55, 2: 0.38, 3: 0.22}[severity]
    lo, hi = np.percentile(v, [5, 95])
    out = full_scale * 0.96 - (full_scale * 0.96 - v) * c
    return np.clip(out + rng.normal(0, 0.01 * (hi - lo) / np.sqrt(c), v.shape), 0, full_scale)


def xr_overexposure(v, severity, rng, full_scale):
    """Too many photons: thin parts burn out to black (clipped at 0)."""
    cut = np.percentile(v, {1: 12, 2: 28, 3: 48}[severity])
    return np.clip(v - cut, 0, full_scale)


def xr_metal(v, severity, rng, full_scale, body_box):
    """A metal object (button, jewellery, implant): saturated, sharp-edged."""
    r0, c0, r1, c1 = body_box
    radius = {1: 0.012, 2: 0.025, 3: 0.045}[severity] * max(v.shape)
    cy = rng.uniform(r0 + 0.3 * (r1 - r0), r0 + 0.7 * (r1 - r0))
    cx = rng.uniform(c0 + 0.3 * (c1 - c0), c0 + 0.7 * (c1 - c0))
    yy, xx = np.ogrid[: v.shape[0], : v.shape[1]]
    out = v.copy()
    out[(yy - cy) ** 2 + ((xx - cx) / 0.6) ** 2 <= radius**2] = full_scale
    return out


# volumes ------------------------------------------------------------------------------------------------------

def vol_noise(v, severity, rng, mr: bool):
    if mr:
        sd = {1: 0.03, 2: 0.06, 3: 0.12}[severity]
        return np.sqrt((v + rng.normal(0, sd, v.shape)) ** 2 + rng.normal(0, sd, v.shape) ** 2).astype(np.float32)
    sd = {1: 15.0, 2: 30.0, 3: 60.0}[severity]
    return (v + rng.normal(0, sd, v.shape)).astype(np.float32)


def metal_streaks(hu, severity, rng, mm):
    """A metal implant in a few slices with the dark/bright streaks it casts along projection lines."""
    n, h, w = hu.shape
    z0 = int(rng.integers(n // 3, 2 * n // 3))
    zs = range(max(0, z0 - 3), min(n, z0 + 4))
    body = hu[z0] > -300
    ys, xs = np.nonzero(body)
    k = int(rng.integers(len(ys)))
    cy, cx = float(ys[k] * 0.5 + h / 4), float(xs[k] * 0.5 + w / 4)
    radius = {1: 3.0, 2: 5.0, 3: 8.0}[severity] / mm
    amp = {1: 150.0, 2: 350.0, 3: 700.0}[severity]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    dist = np.hypot(yy - cy, xx - cx)
    theta = np.arctan2(yy - cy, xx - cx)
    angles = rng.uniform(0, np.pi, 12)
    pattern = np.zeros((h, w), np.float32)
    for i, a in enumerate(angles):
        off = np.abs(np.sin(theta - a)) * dist  # distance from the line through the metal at angle a
        pattern += (1 if i % 2 else -1) * np.exp(-(off / 1.2) ** 2)
    pattern *= amp * np.exp(-dist / (0.6 * max(h, w)))
    out = hu.copy()
    for z in zs:
        out[z] += pattern
        out[z][dist <= radius] = 3000.0
    return out, {"slice": z0, "centre_px": [round(cy), round(cx)]}


def rings(hu, severity, rng):
    """Detector-channel rings: thin concentric circles about the isocentre in every slice."""
    n, h, w = hu.shape
    amp = {1: 25.0, 2: 50.0, 3: 100.0}[severity]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    pattern = np.zeros((h, w), np.float32)
    for rad in rng.uniform(0.1, 0.4, 3) * max(h, w):
        pattern += (1 if rng.random() < 0.5 else -1) * amp * np.exp(-((r - rad) / 0.7) ** 2)
    return hu + pattern[None]


def mr_ghost(sig, severity, axis):
    """Periodic motion: faint copies of the object displaced along the phase-encoding axis."""
    a = {1: 0.05, 2: 0.1, 3: 0.2}[severity]
    n = sig.shape[axis]
    return sig + a * (np.roll(sig, n // 3, axis=axis) + np.roll(sig, -n // 3, axis=axis)) / 2


def fold(sig, keep_fraction, axis):
    """Wrap-around: a phase field of view smaller than the object; what lies outside folds back inside."""
    n = sig.shape[axis]
    keep = int(round(n * keep_fraction))
    c0 = (n - keep) // 2
    out = np.take(sig, range(c0, c0 + keep), axis=axis).copy()
    for i in list(range(0, c0)) + list(range(c0 + keep, n)):
        j = (i - c0) % keep
        idx = [slice(None)] * sig.ndim
        idx[axis] = j
        src = [slice(None)] * sig.ndim
        src[axis] = i
        out[tuple(idx)] += sig[tuple(src)]
    return out


def bias_field(sig, severity, rng):
    """Receive-coil shading: a smooth multiplicative field across the slice."""
    b = {1: 0.25, 2: 0.5, 3: 0.9}[severity]
    n, h, w = sig.shape
    yy, xx = np.mgrid[-1:1:h * 1j, -1:1:w * 1j]
    a = rng.uniform(0, 2 * np.pi)
    field = np.exp(b * (np.cos(a) * xx + np.sin(a) * yy + 0.5 * (xx**2 + yy**2) - 0.33))
    return (sig * field[None]).astype(np.float32)
