"""Chest PA positioning landmarks: rotation from the medial clavicle ends about the spinous processes, and
inspiration from the posterior ribs above the diaphragm.

Both are read on the radiograph's work image in "thorax millimetres": the span of the two lung fields is taken
as 276 mm (an adult's), so the reading does not depend on a pixel spacing the file may not state (the real CR
chest of pydicom-data states none). Locations are returned in original pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy import signal

from qc.scoring import Measurement

LUNG_SPAN_MM = 276.0


@dataclass
class Thorax:
    img: np.ndarray  # work image, 0..1, bone bright
    lungs: np.ndarray
    factor: int  # work pixel -> original pixels
    mm: float  # thorax millimetres per work pixel
    mid: float  # column between the lung fields
    top: int  # highest lung row
    sides: list[np.ndarray]  # lung masks, image left then image right

    def px(self, mm: float) -> float:
        return mm / self.mm


def thorax(img: np.ndarray, lungs: np.ndarray, factor: int) -> Thorax | None:
    labels, n = ndi.label(lungs)
    if n < 2:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    two = [int(i) + 1 for i in np.argsort(sizes)[::-1][:2]]
    masks = sorted((labels == i for i in two), key=lambda m: np.nonzero(m.any(axis=0))[0].mean())
    cols = [np.nonzero(m.any(axis=0))[0] for m in masks]
    span = cols[1][-1] - cols[0][0] + 1
    if span < 20:
        return None
    mid = (cols[0][-1] + cols[1][0]) / 2
    top = int(min(np.nonzero(m.any(axis=1))[0][0] for m in masks))
    return Thorax(img, lungs, factor, float(LUNG_SPAN_MM / span), float(mid), top, masks)


def _bright_rows(t: Thorax, scale_mm: float) -> np.ndarray:
    """Thin horizontal bright structures (clavicles, ribs): the image less its vertical smoothing."""
    fine = ndi.gaussian_filter(t.img, max(0.7, t.px(1.5)))
    return fine - ndi.gaussian_filter1d(fine, t.px(scale_mm), axis=0)


def spinous_line(t: Thorax, rows: slice) -> float:
    """Column of the spinous processes near ``rows``: the narrow bright vertical chain inside the vertebral
    column (negative second derivative across the rows at a few millimetres, summed down the rows, peak near
    the midline); a step edge of the mediastinum answers far less than a line does."""
    sigma = max(0.8, t.px(2.5))
    line = np.clip(-ndi.gaussian_filter(t.img[rows], sigma, order=(0, 2)), 0, None)
    profile = line.sum(axis=0)
    half = int(round(t.px(16)))
    lo, hi = max(0, int(t.mid) - half), min(profile.size, int(t.mid) + half + 1)
    k = lo + int(np.argmax(profile[lo:hi]))
    if 0 < k < profile.size - 1:  # parabolic refinement
        a, b, c = profile[k - 1], profile[k], profile[k + 1]
        den = a - 2 * b + c
        return float(k + (0.5 * (a - c) / den if den < 0 else 0.0))
    return float(k)


def clavicle_seeds(t: Thorax, ridge: np.ndarray, rows: tuple[int, int]) -> list[tuple[int, int]] | None:
    """(row, column) on each clavicle at mid-length: the pair of horizontal bright bands, one each side at
    75 mm from the midline, with the largest summed strength at about one level (the clavicles are a
    symmetric pair; a lone rib on one side is not). None when no pair stands out from the ribs."""
    r0, r1 = rows
    cols = [int(round(t.mid + side * t.px(75))) for side in (-1, 1)]
    if r1 - r0 < 5 or not all(0 <= c < ridge.shape[1] for c in cols):
        return None
    w = max(1, int(round(t.px(3))))
    left, right = (ridge[r0:r1, max(0, c - w): c + w + 1].mean(axis=1) for c in cols)
    reach = max(1, int(round(t.px(12))))
    best, pair = -np.inf, None
    for i in range(len(left)):
        lo, hi = max(0, i - reach), min(len(right), i + reach + 1)
        j = lo + int(np.argmax(right[lo:hi]))
        if left[i] + right[j] > best:
            best, pair = left[i] + right[j], (i, j)
    # the clavicles are the densest bands up there; a pair no stronger than the ribs around it is two ribs
    typical = sum(float(np.median(p[signal.find_peaks(p)[0]])) if signal.find_peaks(p)[0].size else 0.0
                  for p in (left, right))
    if best < 1.5 * max(typical, 0.0):
        return None
    return [(r0 + pair[0], cols[0]), (r0 + pair[1], cols[1])]


def clavicle_end(t: Thorax, ridge: np.ndarray, side: int, seed: tuple[int, int]) -> tuple[float, float] | None:
    """Medial end (row, column) of one clavicle, followed from its mid-length seed towards the midline a
    pixel at a time (a gentle slope allowed); the end is where the band's contrast drops below half of what it
    had laterally."""
    row, seed_col = seed
    path = []
    col, y = seed_col, float(row)
    reach = int(round(t.px(1.0))) + 1
    while 0 <= col < ridge.shape[1] and side * (col - t.mid) > -t.px(25):
        lo, hi = max(0, int(round(y)) - reach), min(ridge.shape[0], int(round(y)) + reach + 1)
        k = lo + int(np.argmax(ridge[lo:hi, col]))
        path.append((col, k, float(ridge[k, col])))
        y = 0.7 * y + 0.3 * k
        col -= side
    if len(path) < 5:
        return None
    cols_, rows_, vals = (np.array(v) for v in zip(*path))
    lateral = np.abs(cols_ - t.mid) >= t.px(45)
    ref = float(np.median(vals[lateral])) if lateral.sum() >= 3 else float(vals[0])
    if ref <= 0:
        return None
    vals = ndi.uniform_filter1d(vals, max(1, int(round(t.px(4)))))
    weak = np.nonzero(vals < 0.5 * ref)[0]
    end = int(weak[0]) - 1 if weak.size else len(vals) - 1
    if end < 1:
        return None
    return float(rows_[end]), float(cols_[end])


def rotation(t: Thorax) -> Measurement:
    """|dL - dR| / (dL + dR): dL, dR = distances from the spinous processes to the medial ends of the two
    clavicles. 0 when centred; a rotated patient moves the clavicle heads one way and the spinous processes the
    other."""
    ridge = _bright_rows(t, 12)
    rows = (max(int(round(t.px(8))), t.top - int(round(t.px(30)))), t.top + int(round(t.px(60))))
    seeds = clavicle_seeds(t, ridge, rows)
    ends = [clavicle_end(t, ridge, side, seed) for side, seed in zip((-1, 1), seeds)] if seeds else [None]
    if any(e is None for e in ends):
        return Measurement(float("nan"), note="not read: no clavicle pair stands out from the ribs in the upper chest")
    if abs(ends[0][0] - ends[1][0]) > t.px(30):  # the heads sit at one level; a trace that ran onto a rib does not
        return Measurement(float("nan"), note="not read: clavicle heads not found at a common level")
    level = int(round((ends[0][0] + ends[1][0]) / 2))
    band = slice(max(0, level - int(round(t.px(40)))), level + int(round(t.px(40))))
    spine = spinous_line(t, band)
    d_left, d_right = spine - ends[0][1], ends[1][1] - spine
    total = d_left + d_right
    if total <= t.px(10):
        return Measurement(float("nan"), note="clavicle ends not apart")
    f = t.factor
    where = {"spinous_col": round(spine * f), "clavicle_ends": [[round(e[0] * f), round(e[1] * f)] for e in ends],
             "distances_mm": [round(d_left * t.mm, 1), round(d_right * t.mm, 1)],
             "bbox": [max(0, round((min(e[0] for e in ends) - t.px(15)) * f)), round(min(ends[0][1], spine) * f),
                      round((max(e[0] for e in ends) + t.px(15)) * f), round(max(ends[1][1], spine) * f) + 1]}
    return Measurement(abs(d_left - d_right) / total, where)


def inspiration(t: Thorax) -> Measurement:
    """Posterior ribs above the diaphragm at the mid-lung line of each lung, averaged: the height from the apex
    to the dome there over the rib spacing, plus a half (ribs are evenly spaced, the first at the apex). A side
    whose dome is not on the film (lung reaching its bottom) is left out."""
    ridge = _bright_rows(t, 8)
    down = ndi.gaussian_filter(t.img, max(0.7, t.px(3)), order=(1, 0))  # > 0 where it brightens downwards
    counts, lines = [], []
    h = t.img.shape[0]
    for mask in t.sides:
        col = int(round(np.nonzero(mask.any(axis=0))[0].mean()))
        w = max(1, int(round(t.px(5))))
        cols = slice(max(0, col - w), col + w + 1)
        rows = np.nonzero(mask[:, cols].any(axis=1))[0]
        if rows.size < 10 or rows[-1] >= h - 3:
            continue
        apex, bottom = int(rows[0]), int(rows[-1])
        dome = diaphragm(down[:, cols].mean(axis=1), apex, bottom, t)
        if dome is None:
            continue
        spacing = rib_spacing(ridge[apex: dome + 1, cols].mean(axis=1), t)
        if spacing is None:
            continue
        counts.append((dome - apex) / spacing + 0.5)
        lines.append({"col": col * t.factor, "apex_row": apex * t.factor, "diaphragm_row": dome * t.factor,
                      "rib_spacing_mm": round(spacing * t.mm, 1)})
    if not counts:
        return Measurement(float("nan"), note="not read: diaphragm dome or rib period not clear at the mid-lung lines")
    rows_ = [v for line in lines for v in (line["apex_row"], line["diaphragm_row"])]
    cols_ = [line["col"] for line in lines]
    pad = int(round(t.px(20) * t.factor))
    where = {"mid_lung_lines": lines, "bbox": [min(rows_), max(0, min(cols_) - pad), max(rows_) + 1, max(cols_) + pad]}
    return Measurement(float(np.mean(counts)), where)


def diaphragm(down: np.ndarray, apex: int, bottom: int, t: Thorax) -> int | None:
    """Row of the dome on a mid-lung profile: the strongest dark-to-bright step going down near the lung
    field's lower end. It must stand out (twice the typical step of the ribs and vessels above it); on a film
    where soft tissue or disease blurs the base it is not read at all rather than guessed."""
    height = bottom - apex
    lo, hi = bottom - int(0.15 * height), min(down.size - 3, bottom + int(0.35 * height))
    if hi - lo < 3:
        return None
    k = lo + int(np.argmax(down[lo:hi]))
    steps, _ = signal.find_peaks(down[apex:k], distance=max(2, int(t.px(8))))
    typical = float(np.median(down[apex:k][steps])) if steps.size else 0.0
    return k if down[k] > 0 and down[k] >= 2 * max(typical, 0.0) else None


def rib_spacing(profile: np.ndarray, t: Thorax) -> float | None:
    """Rib period on the mid-lung profile, in work pixels: the first autocorrelation peak between 14 and 40 mm,
    read on the upper two thirds of the lung (where posterior ribs are plainest)."""
    part = profile[: max(int(len(profile) * 2 / 3), 1)]
    lo, hi = int(t.px(14)), int(t.px(40))
    if part.size < 2 * hi:
        part = profile
    if part.size < hi + 3:
        return None
    part = part - part.mean()
    ac = np.correlate(part, part, mode="full")[part.size - 1:]
    if ac[0] <= 0:
        return None
    ac = ac / ac[0] * part.size / np.maximum(part.size - np.arange(part.size), 1)  # unbiased
    peaks, _ = signal.find_peaks(ac[: hi + 1])
    peaks = [p for p in peaks if p >= lo and ac[p] > 0.1]
    if not peaks:
        return None
    p = peaks[0]
    a, b, c = ac[p - 1], ac[p], ac[p + 1] if p + 1 < ac.size else ac[p]
    den = a - 2 * b + c
    return float(p + (0.5 * (a - c) / den if den < 0 else 0.0))
