"""Body part and view: from the DICOM tags first, from the image when tags are missing or contradict it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from qc import protocol as P
from qc.exam import RADIOGRAPH_MODALITIES, Exam
from qc.measures import factor_for
from qc.volumetric import plane

CONFIDENT = 0.6  # image evidence needed to overrule the tags
CONFIDENT_AGAINST_CONSISTENT = 0.8  # ... when the body-part tag and a description both name the same protocol
BASES_FULL = 0.15  # dark share of the top band at which lung bases are certain (clean abdomens: 0.2-0.33, lumbar <0.02)


@dataclass
class Decision:
    body_part: str | None
    source: str  # "tags", "image", "image (tags contradicted)", "tags (image unsure)"
    tag_guess: str | None
    image_guess: str | None
    image_confidence: float


def _kind(modality: str) -> str:
    return "radiograph" if modality in RADIOGRAPH_MODALITIES else modality.lower()


def from_tags(exam: Exam) -> list[str]:
    """Protocols whose tag vocabulary matches best; several when the tags cannot tell them apart."""
    t = exam.tags
    text = _description(exam)
    body = t.get("BodyPartExamined", "").upper()
    view = t.get("ViewPosition", "").upper()
    scores = {}
    for p in P.load_all().values():
        if _kind(exam.modality) != p.kind:
            continue
        s = 0.0
        if body and body in [b.upper() for b in p.tags.get("body_part", [])]:
            s += 2
        if view and view in [v.upper() for v in p.tags.get("view", [])]:
            s += 1
        hits = [d for d in p.tags.get("description", []) if _squeeze(d) in text]
        if hits:
            s += 1 + 0.1 * max(len(h) for h in hits)  # the more specific keyword wins (腰椎侧 over 腰椎)
        if s >= 2:
            scores[p.id] = s
    if not scores:
        return []
    best = max(scores.values())
    return sorted(k for k, v in scores.items() if v == best)


def consistent(exam: Exam, protocol_id: str) -> bool:
    """BodyPartExamined and a description (study, series or protocol name) both name this protocol: two
    independent entries agreeing, which the image must be surer to overrule."""
    t = exam.tags
    tags = P.get(protocol_id).tags
    body = t.get("BodyPartExamined", "").upper()
    text = _description(exam)
    return (bool(body) and body in [b.upper() for b in tags.get("body_part", [])]
            and any(_squeeze(d) in text for d in tags.get("description", [])))


def _squeeze(text: str) -> str:
    return "".join(text.split()).upper()


def _description(exam: Exam) -> str:
    """Study, series and protocol descriptions, upper case, without spaces ("膝关节 侧位" is "膝关节侧位"),
    separated so that a keyword cannot straddle two of them."""
    return "|".join(_squeeze(exam.tags.get(k, "")) for k in ("StudyDescription", "SeriesDescription", "ProtocolName"))


def _margin(value: float, threshold: float, scale: float) -> float:
    """How far a feature lies from a decision threshold, 0 (on it) to 1 (far)."""
    return float(min(1.0, abs(value - threshold) / scale))


def _radiograph_guess(exam: Exam) -> tuple[str, float, float]:
    """A small decision tree on anatomy features of the de-tilted image; confidence is the smallest margin
    along the path."""
    from qc.radiograph import prepared, tilt

    r = prepared(exam)
    angle = tilt(r).where
    angle = angle["signed_deg"] if angle else 0.0
    smooth, body = r.smooth, r.body
    if abs(angle) > 2:
        smooth = ndi.rotate(smooth, -angle, reshape=False, order=1, mode="nearest")
        body = ndi.rotate(body.astype(np.float32), -angle, reshape=False, order=0, mode="nearest") > 0.5
    h, w = smooth.shape
    lung = float(r.lungs.mean())
    # a burnt-out film hides the body outline: trust the tags then
    fs = exam.full_scale or float(r.work.max())
    p1, p99 = np.percentile(r.work, [1, 99])
    quality = 0.3 if (r.work <= 0.002 * fs).mean() > 0.05 or (p99 - p1) / fs < 0.25 else 1.0
    if lung > 0.06:
        return "chest_pa", _margin(lung, 0.06, 0.04), _margin(lung, 0.06, 0.04)
    rows = slice(h // 5, 4 * h // 5)
    width = float(np.median(body[rows].mean(axis=1)))
    touch = float(body[rows, :2].any(axis=1).mean() + body[rows, -2:].any(axis=1).mean()) / 2
    sym = _symmetry(smooth, body)
    conf = _margin(lung, 0.06, 0.04) * quality
    m_width, m_touch = _margin(width, 0.7, 0.1), _margin(touch, 0.75, 0.2)
    limb = width < 0.7 and touch < 0.75  # a limb: narrow, air on at least one side
    if limb:
        group = min(conf, m_width, m_touch)
        cut = 1.0 if touch == 0 else 0.3  # a film cut at the side is not symmetric whatever the view
        return ("knee_ap" if sym >= 0.955 else "knee_lat"), min(group, cut, _margin(sym, 0.955, 0.03)), group
    failing = [m for m, bad in ((m_width, width >= 0.7), (m_touch, touch >= 0.75)) if bad]
    group = min(conf, max(failing))
    if touch < 0.75:  # flanks inside the field: an abdomen film, or a lumbar film on a wide cassette
        # only the lung bases under the domes set an (erect) abdomen apart from a lumbar AP showing its flanks
        bases = min(1.0, _lung_bases(smooth, body) / BASES_FULL)
        return "abdomen_erect", min(group, m_touch, bases), min(group, m_touch)
    view = "lumbar_ap" if sym >= 0.8 else "lumbar_lat"
    return view, min(group, m_touch, _margin(sym, 0.8, 0.1)), min(group, m_touch)


def _lung_bases(img: np.ndarray, body: np.ndarray) -> float:
    """Share of the body's top sixth (flanks left out) much darker than the mid-abdomen: the lung bases over
    the diaphragm domes that an abdomen film includes and a lumbar film, starting at T12, does not."""
    h = img.shape[0]
    cols = np.nonzero(body.any(axis=0))[0]
    middle = img[h // 3: 2 * h // 3][body[h // 3: 2 * h // 3]]
    if cols.size < 10 or middle.size == 0:
        return 0.0
    ref, floor = float(np.median(middle)), float(np.percentile(img[body], 1))
    inset = int(0.1 * (cols[-1] - cols[0]))
    top = body[: max(h // 6, 1), cols[0] + inset: cols[-1] - inset + 1]
    vals = img[: max(h // 6, 1), cols[0] + inset: cols[-1] - inset + 1][top]
    return float((vals < ref - 0.5 * (ref - floor)).mean()) if vals.size else 0.0


GROUPS = {"chest_pa": "chest", "knee_ap": "limb", "knee_lat": "limb", "abdomen_erect": "trunk", "lumbar_ap": "trunk",
          "lumbar_lat": "trunk"}


def _symmetry(img: np.ndarray, body: np.ndarray) -> float:
    """Mirror correlation about the body's midline column."""
    cols = np.nonzero(body.any(axis=0))[0]
    if cols.size < 10:
        return 0.0
    mid = int(round((cols[0] + cols[-1]) / 2))
    half = min(mid, img.shape[1] - mid - 1)
    left = img[:, mid - half: mid]
    right = img[:, mid + 1: mid + 1 + half][:, ::-1]
    a, b = left - left.mean(), right - right.mean()
    return float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-9))


def _volume_guess(exam: Exam) -> tuple[str, float, float]:
    guess, conf = _volume_guess2(exam)
    return guess, conf, conf


def _volume_guess2(exam: Exam) -> tuple[str, float]:
    vol = exam.pixels
    f = factor_for(vol.shape, 96)
    small = vol[:, ::f, ::f]
    mm = exam.spacing[2] * f
    if exam.modality == "CT":
        body = small > -500
        width = float(body.any(axis=1).sum(axis=1).max()) * mm
        if width < 230:
            return "ct_head", 0.5 + (230 - width) / 100
        from qc.volumetric import fill_slices

        filled = fill_slices(body)
        lung = float(((small < -400) & filled).sum() / max(filled.sum(), 1))
        return ("ct_chest", 0.5 + (lung - 0.1) * 3) if lung > 0.1 else ("ct_upper_abdomen", 0.5 + (0.1 - lung) * 5)
    from qc.mr import foreground

    fg = foreground(small)
    middle = fg[[int(round(f * (len(fg) - 1))) for f in (0.4, 0.5, 0.6)]]
    if plane(exam) == "sagittal":
        # a trunk runs through the top of the field, a head has air above its vertex (a sagittal series is
        # routine for the head too: orientation alone does not make it a spine)
        through_top = float(middle[:, :2].any(axis=(1, 2)).mean())
        return ("mr_lumbar", 0.9) if through_top > 0.5 else ("mr_head", 0.8)
    cut_sides = float((middle[:, :, :2].any(axis=(1, 2)) & middle[:, :, -2:].any(axis=(1, 2))).mean())
    if cut_sides > 0.5:  # wider than the field: a trunk (a head has air around it), its level unknown here
        return "mr_upper_abdomen", 0.3
    width = float(fg.any(axis=1).sum(axis=1).max()) * mm
    return ("mr_head", 0.5 + (230 - width) / 100) if width < 230 else ("mr_upper_abdomen", 0.5 + (width - 230) / 100)


def decide(exam: Exam) -> Decision:
    tagged = from_tags(exam)
    try:
        guess, conf, group_conf = _radiograph_guess(exam) if not exam.is_volume else _volume_guess(exam)
        conf, group_conf = float(np.clip(conf, 0, 1)), float(np.clip(group_conf, 0, 1))
    except Exception:  # an image the heuristics cannot read: rely on the tags
        guess, conf, group_conf = None, 0.0, 0.0
    tag_guess = tagged[0] if len(tagged) == 1 else None
    if tagged and guess in tagged:
        return Decision(guess, "tags", tag_guess or guess, guess, conf)
    if tag_guess and guess is not None:
        other_group = GROUPS.get(tag_guess, tag_guess) != GROUPS.get(guess, guess)
        bar = CONFIDENT_AGAINST_CONSISTENT if consistent(exam, tag_guess) else CONFIDENT
        if (other_group and group_conf >= bar) or conf >= bar:
            return Decision(guess, "image (tags contradicted)", tag_guess, guess, conf)
        return Decision(tag_guess, "tags (image unsure)", tag_guess, guess, conf)
    if tag_guess:
        return Decision(tag_guess, "tags (image unreadable)", tag_guess, None, 0.0)
    return Decision(guess, "image", tagged[0] if tagged else None, guess, conf)
