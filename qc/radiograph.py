"""Radiograph measurements: field coverage of the anatomy, tilt, motion and metal artefacts, exposure,
noise and sharpness. Everything but noise is read on a copy downsampled to about 512 px."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage as ndi
from scipy import signal, stats

from qc import chest
from qc.exam import Exam
from qc.measures import bbox, block_mean, edge_sharpness, factor_for, ghost_index, largest_components, noise_sigma
from qc.scoring import Measurement

WORK_SIZE = 512
EDGES = ("top", "bottom", "left", "right")


@dataclass
class Radiograph:
    """An exam prepared for analysis: the work image and its masks, computed once."""

    exam: Exam

    @cached_property
    def factor(self) -> int:
        return factor_for(self.exam.pixels.shape, WORK_SIZE)

    @cached_property
    def work(self) -> np.ndarray:
        return block_mean(self.exam.pixels, self.factor)

    @cached_property
    def mm(self) -> float:
        """Work-image pixel size in mm (1 when the file does not say)."""
        return float(self.exam.spacing[0]) * self.factor

    @cached_property
    def norm(self) -> np.ndarray:
        fs = self.exam.full_scale or float(self.work.max())
        unsaturated = self.work[self.work < 0.99 * fs]  # metal must not squash the anatomy's range
        lo, hi = np.percentile(unsaturated if unsaturated.size > 100 else self.work, [0.5, 99.5])
        return np.clip((self.work - lo) / max(hi - lo, 1e-6), 0, 1)

    @cached_property
    def smooth(self) -> np.ndarray:
        return ndi.gaussian_filter(self.norm, 2.0)

    @cached_property
    def air(self) -> np.ndarray:
        """Direct-exposure background: very dark and reaching the border."""
        dark = self.smooth < 0.1
        labels, _ = ndi.label(dark)
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        air = np.isin(labels, border[border > 0])
        # direct exposure is far darker than any tissue; a merely darker edge of the body is not air
        if air.any() and (~air).any():
            p1, p99 = np.percentile(self.work, [1, 99])
            if (np.median(self.work[~air]) - self.work[air].mean()) < 0.35 * max(p99 - p1, 1e-6):
                return np.zeros_like(air)
        return air

    @cached_property
    def body(self) -> np.ndarray:
        return ndi.binary_fill_holes(largest_components(~self.air, 1))

    @cached_property
    def lungs(self) -> np.ndarray:
        """Lung fields: dark regions inside the body, walled in by brighter tissue (never touching the air
        background, little of their outline on the image border), at most two. Tried with the two-class
        threshold first (whole lungs), then the darkest of three classes (when soft tissue is as dark)."""
        from skimage.filters import threshold_multiotsu

        from qc.measures import otsu

        h, w = self.norm.shape
        inner = np.zeros_like(self.body)
        inner[h // 5: 4 * h // 5, w // 5: 4 * w // 5] = True
        vals = self.smooth[self.body & inner]
        if vals.size < 100:
            return np.zeros_like(self.body)
        thresholds = [otsu(vals)]
        try:
            thresholds.append(float(threshold_multiotsu(vals, classes=3)[0]))
        except ValueError:
            pass
        near_air = ndi.binary_dilation(self.air, iterations=3)
        for t in thresholds:
            found = self._fields(ndi.binary_opening((self.smooth < t) & self.body, iterations=2), near_air)
            if found.mean() >= 0.03:
                return found
        return np.zeros_like(self.body)

    @staticmethod
    def _fields(cand: np.ndarray, near_air: np.ndarray) -> np.ndarray:
        labels, n = ndi.label(cand)
        keep = []
        for i, sl in enumerate(ndi.find_objects(labels), start=1):
            comp = labels[sl] == i
            area = int(comp.sum())
            if area < 0.03 * cand.size or (comp & near_air[sl]).any():
                continue
            full = labels == i
            on_border = full[0].sum() + full[-1].sum() + full[:, 0].sum() + full[:, -1].sum()
            box = 2 * ((sl[0].stop - sl[0].start) + (sl[1].stop - sl[1].start))
            if on_border > 0.35 * box:
                continue
            keep.append((area, i))
        keep = [i for _, i in sorted(keep, reverse=True)[:2]]
        return np.isin(labels, keep)

    def target(self, name: str) -> np.ndarray:
        return self.lungs if name == "lungs" else self.body


def edge_contact(mask: np.ndarray, edges) -> Measurement:
    """Longest run of anatomy on a forbidden image edge, as a fraction of that edge's length."""
    lines = {"top": mask[:2].any(0), "bottom": mask[-2:].any(0), "left": mask[:, :2].any(1), "right": mask[:, -2:].any(1)}
    best, where = 0.0, None
    for edge in edges:
        line = lines[edge]
        frac = float(line.mean())
        if frac > best:
            idx = np.nonzero(line)[0]
            best, where = frac, {"edge": edge, "from_px": int(idx[0]), "to_px": int(idx[-1]) + 1}
    return Measurement(best, where)


def spine_band(smooth: np.ndarray, body: np.ndarray, mm: float) -> tuple[int, int]:
    """Columns of the vertebral column: where horizontal edges (end plates) are densest."""
    gy = np.abs(ndi.sobel(smooth, axis=0)) * body
    energy = ndi.gaussian_filter1d(gy.mean(axis=0), max(1.0, 10 / mm))
    w = energy.size
    lo, hi = w // 10, w - w // 10
    c = lo + int(np.argmax(energy[lo:hi]))
    half = max(2, int(round(12 / mm)))
    return max(0, c - half), min(w, c + half)


def vertebra_count(img: np.ndarray, mm: float, band: tuple[int, int]) -> Measurement:
    """Vertebral bodies wholly in the field: intensity peaks along the spine, one per body."""
    profile = img[:, band[0]:band[1]].mean(axis=1)
    detrended = profile - ndi.gaussian_filter1d(profile, 25 / mm)
    detrended = ndi.gaussian_filter1d(detrended, max(1.0, 3 / mm))
    peaks, _ = signal.find_peaks(detrended, distance=max(2, int(22 / mm)), prominence=0.35 * detrended.std())
    margin = 12 / mm
    inside = [int(p) for p in peaks if margin <= p <= len(profile) - margin]
    return Measurement(float(len(inside)), {"bbox": [0, band[0], len(profile), band[1]], "rows": inside})


def tilt(r: Radiograph) -> Measurement:
    """Angle of the anatomy's midline from vertical: per row, the brightest column of the smoothed image in the
    central band (spine, mediastinum, long bones), then a robust (Theil-Sen) line."""
    k = 2  # a heavily smoothed profile needs no more than a quarter of the work pixels
    heavy = ndi.gaussian_filter(block_mean(r.norm, k), max(1.0, 8 / (r.mm * k)))
    body = r.body[::k, ::k][: heavy.shape[0], : heavy.shape[1]]
    h, w = heavy.shape
    c0, c1 = int(w * 0.2), int(w * 0.8)
    rows = np.arange(int(h * 0.1), int(h * 0.9))
    rows = rows[body[rows, c0:c1].mean(axis=1) > 0.2]
    if rows.size < 10:
        return Measurement(float("nan"))
    cols = c0 + np.argmax(heavy[rows, c0:c1], axis=1)
    slope = stats.theilslopes(cols, rows)[0]
    angle = float(np.degrees(np.arctan(slope)))
    return Measurement(abs(angle), {"signed_deg": round(angle, 2)})


def metal(r: Radiograph) -> Measurement:
    """Saturated, compact objects: work-image blocks mostly at full scale (noise saturates single pixels,
    metal saturates areas)."""
    if not r.exam.full_scale:
        return Measurement(0.0)
    sat = block_mean((r.exam.pixels >= 0.995 * r.exam.full_scale).astype(np.float32), r.factor) > 0.5
    sat = ndi.binary_opening(sat, iterations=1)
    frac = float(sat.mean())
    return Measurement(frac, {"bbox": [v * r.factor for v in bbox(sat)]} if frac > 0 else None)


def noise_ratio(r: Radiograph) -> Measurement:
    """Noise SD at full resolution (central crop) relative to the anatomy's contrast."""
    px = r.exam.pixels
    h, w = px.shape
    size = min(512, h, w)
    y0, x0 = (h - size) // 2, (w - size) // 2
    crop = px[y0:y0 + size, x0:x0 + size]
    body_crop = np.kron(r.body, np.ones((r.factor, r.factor), bool))[y0:y0 + size, x0:x0 + size]
    if body_crop.shape != crop.shape:
        body_crop = None
    sigma = noise_sigma(crop, body_crop)
    lo, hi = np.percentile(r.work[r.body], [5, 95]) if r.body.any() else (0, 1)
    return Measurement(sigma / max(hi - lo, 1e-6), {"bbox": [y0, x0, y0 + size, x0 + size]})


def prepared(exam: Exam) -> Radiograph:
    """The exam's analysis object, built once and shared (body-part detection and measurement)."""
    cached = getattr(exam, "_radiograph", None)
    if cached is None:
        cached = Radiograph(exam)
        exam._radiograph = cached
    return cached


def measure(exam: Exam, params: dict) -> dict[str, Measurement]:
    r = prepared(exam)
    out: dict[str, Measurement] = {}
    target = params.get("target", "body")
    if target == "spine":
        out["vertebra_count"] = vertebra_count(r.smooth, r.mm, spine_band(r.smooth, r.body, r.mm))
    else:
        out["anatomy_edge_contact"] = edge_contact(r.target(target), params.get("forbidden_edges", EDGES))
    out["tilt_deg"] = tilt(r)
    if params.get("landmarks") == "chest":
        th = chest.thorax(r.norm, r.lungs, r.factor)
        missing = Measurement(float("nan"), note="two lung fields not found")
        out["clavicle_asymmetry"] = chest.rotation(th) if th else missing
        out["posterior_ribs"] = chest.inspiration(th) if th else missing
    g, lag = ghost_index(r.norm)
    out["ghost_ratio"] = Measurement(g, {"lag_px": [lag[0] * r.factor, lag[1] * r.factor]})
    out["metal_fraction"] = metal(r)
    out["sharpness_ratio"] = Measurement(edge_sharpness(r.norm, r.body))
    out["noise_ratio"] = noise_ratio(r)
    fs = exam.full_scale or float(exam.pixels.max())
    clipped = r.work <= 0.002 * fs
    out["clipped_fraction"] = Measurement(float(clipped.mean()), {"bbox": bbox(clipped)} if clipped.any() else None)
    p1, p99 = np.percentile(r.work, [1, 99])
    out["dynamic_range"] = Measurement(float((p99 - p1) / fs))
    # locations in original pixels (the measurements above were read on the work image)
    contact = out.get("anatomy_edge_contact")
    if contact is not None and contact.where:
        contact.where["from_px"] *= r.factor
        contact.where["to_px"] *= r.factor
    for key in ("vertebra_count", "clipped_fraction"):
        m = out.get(key)
        if m is not None and m.where and m.where.get("bbox"):
            m.where["bbox"] = [v * r.factor for v in m.where["bbox"]]
            if "rows" in m.where:
                m.where["rows"] = [v * r.factor for v in m.where["rows"]]
    return out
