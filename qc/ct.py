"""CT series measurements (HU): scan range, continuity, truncation, roll, metal streaks, rings, motion, noise,
sharpness. Masks are computed on a copy downsampled to about 128 px; artefacts are read at full resolution on
a few slices only, which keeps a 300-slice series well under the time budget."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from qc.exam import Exam
from qc.measures import block_mean, factor_for, ghost_index, in_original, largest_components
from qc.scoring import Measurement
from qc import volumetric as V

METAL_HU = 2500.0


def body_mask(small: np.ndarray) -> np.ndarray:
    return V.fill_slices(largest_components(small > -500, 1))


def organ(small: np.ndarray, body: np.ndarray, params: dict) -> np.ndarray:
    kind = params.get("mask", "body")
    if kind == "lungs":
        return (small < -400) & body
    if kind == "band":
        lo, hi = params.get("hu", [40, 80])
        sm = ndi.gaussian_filter(small, (0, 1.5, 1.5))
        return (sm >= lo) & (sm <= hi) & body
    return body


def truncation(body: np.ndarray) -> Measurement:
    """Share of the image border covered by the body, 90th percentile over slices."""
    border = np.concatenate([body[:, 0, :], body[:, -1, :], body[:, :, 0], body[:, :, -1]], axis=1).mean(axis=1)
    k = int(np.argmax(border))
    return Measurement(float(np.percentile(border, 90)), {"slice": k} if border[k] > 0 else None)


def noise_hu(vol: np.ndarray, body: np.ndarray, factor: int) -> Measurement:
    """SD in the most uniform soft-tissue windows (5x5), middle slices: a 'uniform region' found, not placed."""
    vals, where = [], None
    for i in V.middle_slices(vol.shape[0]):
        s = vol[i]
        if factor > 2:  # 512 px: read on 256 px, noise scaled back to native pixels
            s = block_mean(s, 2) * 1.0
        m = ndi.uniform_filter(s, 5)
        sd = np.sqrt(np.clip(ndi.uniform_filter(s * s, 5) - m * m, 0, None))
        inside = np.kron(ndi.binary_erosion(body[i], iterations=2), np.ones((factor, factor), bool))
        if factor > 2:
            inside = inside[::2, ::2]
        inside = inside[: s.shape[0], : s.shape[1]]
        pad = (s.shape[0] - inside.shape[0], s.shape[1] - inside.shape[1])
        inside = np.pad(inside, ((0, pad[0]), (0, pad[1])))
        soft = inside & (m > -50) & (m < 150)
        if soft.sum() < 50:
            continue
        cut = np.percentile(sd[soft], 20)
        vals.append(cut * (2 if factor > 2 else 1))
        ys, xs = np.nonzero(soft & (sd <= cut))
        k = len(ys) // 2
        read = 2 if factor > 2 else 1  # the slice was read at half resolution: back to original pixels
        where = {"slice": i, "pixel": [int(ys[k]) * read, int(xs[k]) * read],
                 "bbox": [(int(ys[k]) - 2) * read, (int(xs[k]) - 2) * read, (int(ys[k]) + 3) * read,
                          (int(xs[k]) + 3) * read]}
    return Measurement(float(np.median(vals)) if vals else float("nan"), where)


def metal_streak(vol: np.ndarray, noise: float) -> Measurement:
    """Metal (> 2500 HU) and the streak energy around it: fast angular HU variation on rings about the metal."""
    peaks = vol.max(axis=(1, 2))
    if peaks.max() < METAL_HU:
        return Measurement(0.0)
    z = int(np.argmax((vol > METAL_HU).sum(axis=(1, 2))))
    s = vol[z]
    ys, xs = np.nonzero(s > METAL_HU)
    cy, cx = ys.mean(), xs.mean()
    r_metal = np.sqrt(len(ys) / np.pi)
    radii = np.arange(r_metal + 4, r_metal + 4 + max(s.shape) * 0.25, 1.0)
    theta = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    rr, tt = np.meshgrid(radii, theta, indexing="ij")
    polar = ndi.map_coordinates(s, [cy + rr * np.sin(tt), cx + rr * np.cos(tt)], order=1, mode="nearest")
    valid = (polar > -500) & (polar < METAL_HU)
    resid = polar - ndi.gaussian_filter1d(polar, 4, axis=1, mode="wrap")
    rms = float(np.sqrt(np.mean(resid[valid] ** 2))) if valid.any() else 0.0
    streak = np.sqrt(max(rms**2 - (noise if noise == noise else 0) ** 2, 0.0))
    return Measurement(float(max(streak, 1.0 if len(ys) else 0.0)),
                       {"slice": z, "bbox": [int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1]})


def ring(vol: np.ndarray) -> Measurement:
    """Concentric rings about the isocentre: radial high-pass, median over all angles, median over slices, in a
    soft-tissue window and in a lung/air window (a ring shows in whatever it crosses); the larger counts."""
    n, h, w = vol.shape
    idx = sorted({int(round(n * f)) for f in np.linspace(0.2, 0.8, 5)} & set(range(n)))
    step = 0.25 * max(1.0, min(h, w) / 256)  # rings are about a pixel wide at any matrix
    radii = np.arange(4, 0.48 * min(h, w), step)
    theta = np.linspace(0, 2 * np.pi, 720 if min(h, w) <= 256 else 360, endpoint=False)
    rr, tt = np.meshgrid(radii, theta, indexing="ij")
    coords = [(h - 1) / 2 + rr * np.sin(tt), (w - 1) / 2 + rr * np.cos(tt)]
    best, where = 0.0, None
    for lo, hi in ((-200.0, 300.0), (-1000.0, -500.0)):
        profiles = []
        for i in idx:
            polar = ndi.map_coordinates(np.clip(vol[i], lo, hi), coords, order=1)
            resid = polar - ndi.gaussian_filter1d(polar, 4, axis=0)
            profiles.append(np.median(resid, axis=1))
        prof = np.abs(np.median(np.array(profiles), axis=0))
        k = int(np.argmax(prof))
        if prof[k] >= best:
            best, where = float(prof[k]), {"radius_px": round(float(radii[k]), 1), "slices": idx, "window_hu": [lo, hi]}
    return Measurement(best, where)


def motion(vol: np.ndarray, mm: float, directional: bool = False) -> Measurement:
    """Ghost strength on the middle slices. Thin slabs outside the patient (the table) are blanked first: their
    long straight edges would carry most of the energy and hide a ghost displaced along them. ``directional``
    (a protocol setting, for a wide flat trunk whose own outline does the same) also reads the edges by
    orientation and keeps the stronger reading."""
    f = factor_for(vol.shape, 256)
    thin = max(1, int(round(4 / (mm * f))))
    values = []
    for i in V.middle_slices(vol.shape[0]):
        s = np.clip(block_mean(vol[i], f), -1000, 1000)
        dense = s > -500
        body = ndi.binary_fill_holes(largest_components(ndi.binary_opening(dense, iterations=thin), 1))
        slabs = dense & ~ndi.binary_dilation(body, iterations=2)  # outside the patient only (lungs are inside)
        keep = ~ndi.binary_dilation(slabs, iterations=3)
        value = ghost_index(s, max_lag_fraction=0.08, mask=keep)[0]
        if directional:
            value = max(value, ghost_index(s, max_lag_fraction=0.08, mask=keep, split=True)[0])
        values.append(value)
    return Measurement(float(np.median(values)), {"slices": V.middle_slices(vol.shape[0])})


def measure(exam: Exam, params: dict) -> dict[str, Measurement]:
    vol = exam.pixels
    factor = factor_for(vol.shape, 128)
    small = V.downsample_volume(vol, factor)
    body = body_mask(small)
    out = {
        "organ_end_fraction": V.organ_end_fraction(organ(small, body, params), params.get("ends", ["top", "bottom"])),
        "missing_slices": V.missing_slices(exam.positions),
        "truncation_fraction": truncation(body),
        "roll_deg": V.roll(body),
        "ring_hu": ring(vol),
        "ghost_ratio": motion(vol, exam.spacing[1], params.get("motion_reading") == "directional"),
        "sharpness_ratio": V.sharpness(vol, -1000, 1500),
    }
    out["noise_hu"] = noise_hu(vol, body, factor)
    out["metal_streak_hu"] = metal_streak(vol, out["noise_hu"].value)
    out["organ_end_fraction"].where = in_original(out["organ_end_fraction"].where, factor)
    return out
