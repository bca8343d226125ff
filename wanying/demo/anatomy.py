"""Synthetic anatomy: tissue-label phantoms of the chest, abdomen, head, lumbar spine and knee.

A phantom answers "which tissue is at (x, y, z)?" in patient coordinates (millimetres, DICOM LPS: +x patient
left, +y posterior, +z head), with ``z`` measured from the top of the region and negative downwards. One call
renders one axial plane (``x``/``y`` broadcastable arrays); sagittal images and radiographs are assembled from
planes, so every modality sees the same body. Labels map to CT numbers (HU), MR signal (T1/T2) or X-ray
attenuation through the tables at the end.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

(AIR, FAT, MUSCLE, SOFT, LUNG, CORTEX, MARROW, BLOOD, LIVER, SPLEEN, KIDNEY, CSF, GREY, WHITE, DISC, NUCLEUS,
 GGO, CONSOLIDATION, HAEMORRHAGE, OEDEMA, LACUNE, CYST, STONE, FATTY_LIVER, WM_LESION, TABLE, GAS, BILE,
 CARTILAGE, EFFUSION) = range(30)


@dataclass(frozen=True)
class Lesion:
    """What the report describes, drawn where it says: ``side`` is -1 for the patient's right, +1 for left."""

    kind: str
    side: int = -1
    size_mm: float = 8.0


Phantom = Callable[[np.ndarray, np.ndarray, float, "Lesion | None"], np.ndarray]


def _ellipse(x, y, cx, cy, a, b):
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0


def _sphere_at(x, y, z, centre, radius):
    """The disc where a sphere cuts the plane ``z`` (empty when it does not)."""
    cx, cy, cz = centre
    r2 = radius**2 - (z - cz) ** 2
    if r2 <= 0:
        return np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y)), dtype=bool)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r2


def _blank(x, y) -> np.ndarray:
    return np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y)), dtype=np.int8)


def _bowel(x, y, z):
    """Rounded loops of bowel (soft tissue) and pockets of gas, drifting with height."""
    field = np.sin(x / 9.0 + z / 17.0) * np.sin(y / 11.0 - z / 13.0) + 0.5 * np.sin((x + y) / 13.0 + z / 23.0)
    return field > 0.45, field > 1.15


def _vertebra(out, x, y, z, cy, period=32.0, radius=17.0, disc_mm=7.0, offset=0.0):
    """Vertebral body (cortex and marrow) or disc, spinal canal and posterior elements at height ``z``."""
    in_disc = ((offset - z) % period) < disc_mm
    body = _ellipse(x, y, 0, cy, radius * 1.15, radius)
    if in_disc:
        out[body] = DISC
        out[_ellipse(x, y, 0, cy, radius * 0.6, radius * 0.5)] = NUCLEUS
    else:
        out[body] = CORTEX
        out[_ellipse(x, y, 0, cy, radius * 1.15 - 2, radius - 2)] = MARROW
        out[(np.abs(x) < 5) & (y > cy + radius + 14) & (y < cy + radius + 42)] = CORTEX  # spinous process
        out[(np.abs(x) < radius * 1.9) & (np.abs(x) > 10) & (np.abs(y - cy - radius - 8) < 4)] = CORTEX  # laminae
    out[_ellipse(x, y, 0, cy + radius + 9, 8, 7)] = CSF
    return out


# ---------------------------------------------------------------------------------------------- chest


def chest(x, y, z, lesion: Lesion | None = None, rib_spacing: tuple[float, float] = (26.0, 26.0),
          clavicles: bool = False, anterior_ribs: bool = True) -> np.ndarray:
    """Thorax, 240 mm from the lung apices (z=0) to below the diaphragm."""
    t = -z / 240.0
    out = _blank(x, y)
    a, b = 150 + 10 * min(max(t, 0), 1), 100 + 8 * min(max(t, 0), 1)
    out[_ellipse(x, y, 0, 0, a, b)] = FAT
    out[_ellipse(x, y, 0, 0, a - 12, b - 10)] = MUSCLE
    out[_ellipse(x, y, 0, 0, a - 24, b - 20)] = FAT  # mediastinal and pleural fat under the lungs
    ring = _ellipse(x, y, 0, 0, a - 20, b - 16) & ~_ellipse(x, y, 0, 0, a - 27, b - 23)
    if -0.05 < t < 0.92:  # ribs run down and forwards from the spine: anterior ends sit lower
        drop = 45 * (1 - np.sin(np.arctan2(y, np.abs(x))))
        out[ring & _rib(-z - drop, *rib_spacing) & (y > (-b + 25 if anterior_ribs else -20))] = CORTEX
    if 0 <= t <= 1:
        for side in (-1, 1):
            dome = 0.78 if side < 0 else 0.86  # the right hemidiaphragm sits higher, over the liver
            if t < 0.6:  # grows from the apex ...
                f = math.sin(math.pi * (0.1 + 0.9 * t / 0.6) / 2)
            else:  # ... and ends at the dome of the diaphragm
                f = max(0.0, (dome - t) / (dome - 0.6)) ** 0.5
            if f > 0.05:
                out[_ellipse(x, y, side * 62, 8, 52 * f + 8, 74 * f + 6)] = LUNG
        lung = out == LUNG
        out[lung & (np.sin(x / 3.7 + z / 9.0) * np.sin(y / 4.1 - z / 7.0) > 0.93)] = BLOOD  # vessels
        if 0.33 < t < 0.9:
            h = math.sin(math.pi * (t - 0.33) / 0.57)
            out[_ellipse(x, y, 22, -18, 58 * h + 4, 46 * h + 4)] = BLOOD
        if t < 0.32:
            out[_ellipse(x, y, 0, -28, 9, 9)] = AIR  # trachea
        elif t < 0.42:
            out[_ellipse(x, y, -16, -14, 6, 6) | _ellipse(x, y, 16, -14, 6, 6)] = AIR  # main bronchi
        if t > 0.2:
            out[_ellipse(x, y, 20, 40, 11, 11)] = BLOOD  # descending aorta
        if 0.25 < t < 0.45:
            out[_ellipse(x, y, -8, -22, 14, 14)] = BLOOD  # ascending aorta
        if 0.15 < t < 0.85:
            out[(np.abs(x) < 14) & (y > -b + 10) & (y < -b + 22)] = CORTEX  # sternum
        if t > 0.74:
            g = min(1.0, (t - 0.74) / 0.2)
            out[_ellipse(x, y, -55, -5, 95 * g + 5, 75 * g + 5) & _ellipse(x, y, 0, 0, a - 24, b - 20)] = LIVER
    if clavicles:
        _clavicles(out, x, y, z)
    _vertebra(out, x, y, z, cy=58)
    out[(y > b + 14) & (y < b + 22) & (np.abs(x) < 190)] = TABLE
    if lesion is not None and 0 <= t <= 1:
        _chest_lesion(out, x, y, z, lesion)
    return out


def chest_film(x, y, z, lesion: Lesion | None = None) -> np.ndarray:
    """The thorax as the PA film shows it, for the QC inspiration and rotation checks: an adult's lungs (about
    as tall as they are wide, 40% taller than the CT phantom's), about ten posterior ribs above the domes
    (25 mm apart at the apex, spreading lower down; the faint anterior ends left out) and both clavicles."""
    return chest(x, y, z / FILM_STRETCH, lesion, rib_spacing=(25.0 / FILM_STRETCH, 29.0 / FILM_STRETCH),
                 clavicles=True, anterior_ribs=False)


FILM_STRETCH = 1.4


def _rib(depth, top: float, bottom: float, thickness: float = 9.0):
    """Whether ``depth`` mm below the apex falls on a rib, the spacing growing from ``top`` at the apex to
    ``bottom`` 240 mm lower (as the lower ribs spread apart)."""
    if top == bottom:
        return (depth % top) < thickness
    a = (bottom - top) / 240.0
    spacing = top + a * np.maximum(depth, 0)
    phase = np.log1p(a * np.maximum(depth, 0) / top) / a  # ribs counted from the apex
    return (depth >= 0) & ((phase % 1.0) * spacing < thickness) | (depth < 0) & ((depth % top) < thickness)


def _clavicles(out, x, y, z) -> None:
    """Two rods, flat front to back, from the sternal ends (28 mm off the midline, anterior, 30 mm below the
    apices) rising and running back to the shoulders: mirror images, so a straight patient's film shows the
    medial ends symmetric about the spinous processes."""
    s = (np.abs(x) - 28.0) / 112.0  # 0 at the sternal end, 1 at the acromial end
    d2 = ((y - (-80.0 + 75.0 * s)) / 2.0) ** 2 + (z - (-30.0 + 22.0 * s)) ** 2
    along = (s >= 0) & (s <= 1)
    out[along & (d2 <= 36.0)] = CORTEX
    out[along & (d2 <= 12.0)] = MARROW


def _chest_lesion(out, x, y, z, lesion: Lesion) -> None:
    lung = out == LUNG
    if lesion.kind == "nodule":
        out[lung & _sphere_at(x, y, z, (lesion.side * 68, -8, -52), lesion.size_mm / 2)] = GGO
    elif lesion.kind == "inflammation":
        out[lung & _sphere_at(x, y, z, (lesion.side * 70, 30, -165), 24) & ((x * 7 + y * 3) % 9 < 6)] = CONSOLIDATION
    elif lesion.kind == "fibrosis":
        strand = np.abs(y - 35 + 0.6 * (x - lesion.side * 75)) < 1.5
        out[lung & _sphere_at(x, y, z, (lesion.side * 75, 35, -160), 30) & strand] = SOFT
    elif lesion.kind == "effusion":
        out[lung & (y > 45 - max(0.0, (-z - 150)) * 0.8) & (np.sign(x) == lesion.side)] = EFFUSION


# ---------------------------------------------------------------------------------------------- abdomen


def abdomen(x, y, z, lesion: Lesion | None = None) -> np.ndarray:
    """Upper abdomen, 200 mm from the diaphragm dome (z=0) down to the lower poles of the kidneys."""
    t = -z / 200.0
    out = _blank(x, y)
    a, b = 160.0, 115.0
    out[_ellipse(x, y, 0, 0, a, b)] = FAT
    out[_ellipse(x, y, 0, 0, a - 18, b - 16) & ~_ellipse(x, y, 0, 0, a - 30, b - 28)] = MUSCLE
    cavity = _ellipse(x, y, 0, 0, a - 30, b - 28)
    loops, gas = _bowel(x, y, z)
    out[cavity & loops] = SOFT
    out[cavity & gas & (y < -20)] = GAS
    if 0 <= t <= 1:
        g = max(0.0, 1 - 0.75 * t)
        liver = _ellipse(x, y, -62, -5, 88 * g + 4, 82 * g + 4) & cavity
        out[liver] = FATTY_LIVER if lesion is not None and lesion.kind == "fatty_liver" else LIVER
        if t < 0.6:
            out[_ellipse(x, y, 92, 35, 28, 42 * (1 - t)) & cavity] = SPLEEN
        if t < 0.5:
            out[_ellipse(x, y, 52, -30, 42, 34)] = SOFT
            out[_ellipse(x, y, 52, -45, 30, 14)] = GAS  # stomach air
        if 0.45 < t < 0.8:
            out[_ellipse(x, y, -45, -42, 16, 16)] = BILE  # gallbladder
        if 0.4 < t < 0.6:
            out[_ellipse(x, y, 25, 12, 48, 11)] = SOFT  # pancreas
        if t > 0.35:
            for side in (-1, 1):
                out[_ellipse(x, y, side * 66, 55, 27, 36)] = KIDNEY
                out[_ellipse(x, y, side * 60, 48, 8, 12)] = FAT  # renal sinus
        if t > 0.5:
            for side in (-1, 1):
                out[_ellipse(x, y, side * 34, 58, 16, 14 + 10 * t)] = MUSCLE  # psoas
        if lesion is not None:
            if lesion.kind == "gallstone":
                out[_sphere_at(x, y, z, (-45, -36, -125), lesion.size_mm / 2)] = STONE
            elif lesion.kind == "cyst":
                out[liver & _sphere_at(x, y, z, (-80, -15, -60), lesion.size_mm / 2 + 3)] = CYST
    out[_ellipse(x, y, 18, 36, 11, 11)] = BLOOD  # aorta
    out[_ellipse(x, y, -22, 32, 12, 10)] = BLOOD  # inferior vena cava
    _vertebra(out, x, y, z, cy=58, offset=20.0)
    out[(y > b + 14) & (y < b + 22) & (np.abs(x) < 190)] = TABLE
    return out


def chest_abdomen(x, y, z, lesion: Lesion | None = None) -> np.ndarray:
    """Chest then upper abdomen (320 mm); a "nodule_fatty" lesion is a lung nodule plus a fatty liver."""
    both = lesion is not None and lesion.kind == "nodule_fatty"
    if -z <= 228:
        return chest(x, y, z, Lesion("nodule", lesion.side, lesion.size_mm) if both else lesion)
    return abdomen(x, y, z + 190, Lesion("fatty_liver") if both else lesion)


# ---------------------------------------------------------------------------------------------- head


def head(x, y, z, lesion: Lesion | None = None) -> np.ndarray:
    """Head, 150 mm from the vertex (z=0) to the skull base; the neck continues below."""
    t = -z / 150.0
    out = _blank(x, y)
    if t < 0:
        return out
    if t > 1.05:  # neck
        out[_ellipse(x, y, 0, 10, 55, 60)] = MUSCLE
        out[_ellipse(x, y, 0, -25, 9, 8)] = AIR
        _vertebra(out, x, y, z, cy=15, period=18, radius=11, disc_mm=4)
        return out
    s = max(0.08, math.sqrt(1 - (1 - min(t / 0.5, 1.0)) ** 2))  # a rounded vertex
    if t > 0.85:
        s *= 1 - (t - 0.85) * 1.2
    a, b = 72 * s, 90 * s
    out[_ellipse(x, y, 0, 0, a, b)] = SOFT  # scalp
    out[_ellipse(x, y, 0, 0, a - 5, b - 5)] = CORTEX
    out[_ellipse(x, y, 0, 0, a - 7, b - 7)] = MARROW
    out[_ellipse(x, y, 0, 0, a - 9, b - 9)] = CORTEX
    inner = _ellipse(x, y, 0, 0, a - 11, b - 11)
    out[inner] = CSF
    out[_ellipse(x, y, 0, 0, a - 13, b - 13)] = GREY
    out[_ellipse(x, y, 0, 0, a - 20, b - 20) & (t > 0.12)] = WHITE
    out[inner & (np.abs(x) < 1.2)] = CSF  # interhemispheric fissure
    if 0.35 < t < 0.68:
        for side in (-1, 1):
            out[_ellipse(x, y, side * 9, -4, 5 + 3 * math.sin(math.pi * (t - 0.35) / 0.33), 26)] = CSF
    if 0.62 < t < 0.72:
        out[_ellipse(x, y, 0, 0, 2.5, 10)] = CSF  # third ventricle
    if 0.45 < t < 0.7:
        for side in (-1, 1):
            out[_ellipse(x, y, side * 22, -2, 9, 14)] = GREY  # basal ganglia
    if t > 0.85:
        out[_ellipse(x, y, 0, -40, 12, 10)] = AIR  # sphenoid sinus
        for side in (-1, 1):
            out[_ellipse(x, y, side * 38, 20, 16, 6)] = CORTEX  # petrous bone
    if lesion is not None:
        c = (lesion.side * 22, -2, -82)
        r = lesion.size_mm / 2
        if lesion.kind == "lacunar":
            out[_sphere_at(x, y, z, c, r / 2 + 1)] = LACUNE
        elif lesion.kind == "haemorrhage":
            out[inner & _sphere_at(x, y, z, c, r + 6)] = OEDEMA
            out[_sphere_at(x, y, z, c, r)] = HAEMORRHAGE
        elif lesion.kind == "white_matter":
            for k in range(6):
                cx, cy, cz = (-1) ** k * (16 + 3 * k), -20 + 9 * k, -50 - 5 * k
                out[(out == WHITE) & _sphere_at(x, y, z, (cx, cy, cz), 2.5)] = WM_LESION
    return out


# ---------------------------------------------------------------------------------------------- lumbar spine


LUMBAR_PERIOD = 38.0
LUMBAR_DISC = 9.0


def lumbar_disc_z(k: int) -> float:
    """Centre height of disc k (0: T12/L1 ... 4: L4/5, 5: L5/S1)."""
    return -(20 + LUMBAR_DISC / 2 + k * LUMBAR_PERIOD)


def lumbar(x, y, z, lesion: Lesion | None = None) -> np.ndarray:
    """Lower trunk from T12 (z=0) to the sacrum, spine posterior: for lumbar MR and radiographs."""
    out = _blank(x, y)
    depth = -z
    out[_ellipse(x, y, 0, 0, 150, 110)] = FAT
    out[_ellipse(x, y, 0, 0, 135, 96) & ~_ellipse(x, y, 0, -10, 120, 75)] = MUSCLE
    cavity = _ellipse(x, y, 0, -10, 120, 75)
    loops, gas = _bowel(x, y, z)
    out[cavity & loops] = SOFT
    out[cavity & gas & (y < -20)] = GAS
    for side in (-1, 1):
        out[_ellipse(x, y, side * 32, 76, 24, 20)] = MUSCLE  # erector spinae
        if depth > 60:
            out[_ellipse(x, y, side * 40, 28, 14 + depth / 25, 16)] = MUSCLE  # psoas
    cy = 30.0
    k = int((depth - 20) // LUMBAR_PERIOD)
    in_disc = 0 <= (depth - 20) % LUMBAR_PERIOD < LUMBAR_DISC and 0 <= k <= 5
    if depth < 20 + 5 * LUMBAR_PERIOD + LUMBAR_DISC:
        if in_disc:
            out[_ellipse(x, y, 0, cy, 26, 19)] = DISC
            degenerate = lesion is not None and lesion.kind in ("herniation", "degenerative") and k in (4, 5)
            if not degenerate:
                out[_ellipse(x, y, 0, cy, 15, 10)] = NUCLEUS
            if lesion is not None and lesion.kind == "herniation" and k == 4:
                out[_ellipse(x, y, lesion.side * 8, cy + 19, 7, lesion.size_mm / 2 + 1)] = DISC
        else:
            out[_ellipse(x, y, 0, cy, 27, 20)] = CORTEX
            out[_ellipse(x, y, 0, cy, 25, 18)] = MARROW
            out[(np.abs(x) < 5) & (y > 62) & (y < 92)] = CORTEX  # spinous process
            out[(np.abs(x) > 12) & (np.abs(x) < 40) & (np.abs(y - 56) < 4)] = CORTEX  # laminae, transverse processes
        out[_ellipse(x, y, 0, 56, 11, 8)] = CSF
    else:  # sacrum, tilting backwards
        shift = (depth - 20 - 5 * LUMBAR_PERIOD - LUMBAR_DISC) * 0.5
        out[_ellipse(x, y, 0, cy + shift, 40, 16)] = CORTEX
        out[_ellipse(x, y, 0, cy + shift, 37, 13)] = MARROW
        wing = max(0.0, 1 - ((depth - 255) / 60) ** 2) ** 0.5
        if wing > 0:
            for side in (-1, 1):
                out[_ellipse(x, y, side * (60 + 30 * wing), 40, 45 * wing + 1, 10)] = CORTEX  # iliac wings
                out[_ellipse(x, y, side * (60 + 30 * wing), 40, 42 * wing + 0.5, 7)] = MARROW
    return out


# ---------------------------------------------------------------------------------------------- knee


def knee(x, y, z, lesion: Lesion | None = None) -> np.ndarray:
    """One knee centred on x=0, joint line at z=-120 (the femur above, tibia and fibula below)."""
    out = _blank(x, y)
    d = -z - 120.0  # below the joint line when positive
    width = 46 + 20 * math.exp(-((d / 40) ** 2))
    out[_ellipse(x, y, 0, 0, width + 10, 50)] = FAT
    out[_ellipse(x, y, 0, 0, width + 4, 44)] = MUSCLE
    gap = 5.0 if lesion is None or lesion.kind != "degenerative" else 2.0
    if d < -gap / 2:  # femur
        r = 14 + 20 * math.exp(-((d + gap) / 25) ** 2)
        if d > -45:  # condyles
            for side in (-1, 1):
                out[_ellipse(x, y, side * r * 0.55, 4, r * 0.62, 26)] = CORTEX
                out[_ellipse(x, y, side * r * 0.55, 4, r * 0.62 - 2.5, 23.5)] = MARROW
        else:
            out[_ellipse(x, y, 0, 2, r, r)] = CORTEX
            out[_ellipse(x, y, 0, 2, r - 5, r - 5)] = MARROW
        p = 1 - ((d + 40) / 30) ** 2
        if p > 0:
            out[_ellipse(x, y, 0, -40, 20 * p**0.5 + 0.5, 9 * p**0.5 + 0.5)] = CORTEX  # patella
            out[_ellipse(x, y, 0, -40, 17 * p**0.5 + 0.3, 6 * p**0.5 + 0.3)] = MARROW
    elif d > gap / 2:  # tibia and fibula
        r = 16 + 22 * math.exp(-((d - gap) / 30) ** 2)
        out[_ellipse(x, y, 0, 0, r * 1.1, r * 0.8)] = CORTEX
        out[_ellipse(x, y, 0, 0, r * 1.1 - 3, r * 0.8 - 3)] = MARROW
        if d > 15:
            out[_ellipse(x, y, 34, 18, 7, 7)] = CORTEX
            out[_ellipse(x, y, 34, 18, 4, 4)] = MARROW
        if lesion is not None and lesion.kind == "degenerative" and d < gap / 2 + 4:
            out[_ellipse(x, y, 0, 0, r * 1.1 + 4, r * 0.8 + 2) & (out == MUSCLE)] = CORTEX  # marginal osteophytes
    else:
        out[_ellipse(x, y, 0, 2, 38, 26)] = CARTILAGE
    return out


PHANTOMS: dict[str, Phantom] = {
    "chest": chest, "chest_film": chest_film, "abdomen": abdomen, "chest_abdomen": chest_abdomen, "head": head,
    "lumbar": lumbar, "knee": knee,
}

# ---------------------------------------------------------------------------------------------- tissue tables

_N = 30
HU = np.zeros(_N, np.float32)
T1 = np.zeros(_N, np.float32)
T2 = np.zeros(_N, np.float32)
MU = np.zeros(_N, np.float32)  # X-ray attenuation per mm (about 70 keV)
for label, hu, t1, t2, mu in (
    (AIR, -1000, 0, 0, 0.0), (FAT, -100, 2200, 1500, 0.018), (MUSCLE, 50, 700, 380, 0.021),
    (SOFT, 35, 800, 650, 0.020), (LUNG, -860, 30, 40, 0.004), (CORTEX, 900, 40, 40, 0.075),
    (MARROW, 250, 1500, 1100, 0.032), (BLOOD, 45, 250, 150, 0.021), (LIVER, 62, 900, 450, 0.021),
    (SPLEEN, 50, 700, 800, 0.021), (KIDNEY, 32, 750, 900, 0.020), (CSF, 6, 350, 2700, 0.020),
    (GREY, 38, 900, 1250, 0.020), (WHITE, 27, 1250, 850, 0.020), (DISC, 85, 600, 450, 0.022),
    (NUCLEUS, 95, 700, 1900, 0.022), (GGO, -560, 100, 300, 0.008), (CONSOLIDATION, 25, 700, 900, 0.020),
    (HAEMORRHAGE, 68, 1400, 500, 0.021), (OEDEMA, 18, 600, 1900, 0.020), (LACUNE, 12, 400, 2400, 0.020),
    (CYST, 8, 300, 2800, 0.020), (STONE, 450, 100, 80, 0.05), (FATTY_LIVER, 22, 1300, 600, 0.019),
    (WM_LESION, 24, 800, 2100, 0.020), (TABLE, 120, 0, 0, 0.0), (GAS, -950, 0, 0, 0.0),
    (BILE, 10, 350, 2500, 0.020), (CARTILAGE, 90, 900, 1300, 0.022), (EFFUSION, 12, 300, 2600, 0.020),
):
    HU[label], T1[label], T2[label], MU[label] = hu, t1, t2, mu


# ---------------------------------------------------------------------------------------------- rendering


def axial_volume(phantom: Phantom, zs: np.ndarray, rows: int, cols: int, pixel_mm: float,
                 lesion: Lesion | None = None, x_offset: float = 0.0, y_offset: float = 0.0) -> np.ndarray:
    """Labels of axial planes at heights ``zs``; column index grows with +x (left), row index with +y."""
    x = (np.arange(cols) - (cols - 1) / 2) * pixel_mm + x_offset
    y = (np.arange(rows) - (rows - 1) / 2) * pixel_mm + y_offset
    return np.stack([phantom(x[None, :], y[:, None], float(z), lesion) for z in zs])


def sagittal_volume(phantom: Phantom, xs: np.ndarray, rows: int, cols: int, pixel_mm: float, z_centre: float,
                    lesion: Lesion | None = None) -> np.ndarray:
    """Labels of sagittal planes at ``xs``: columns grow with +y (posterior), rows go down (-z)."""
    y = (np.arange(cols) - (cols - 1) / 2) * pixel_mm
    zs = z_centre - (np.arange(rows) - (rows - 1) / 2) * pixel_mm
    planes = np.stack([phantom(np.asarray(xs)[:, None], y[None, :], float(z), lesion) for z in zs])  # row, x, y
    return planes.transpose(1, 0, 2)


def projection(phantom: Phantom, axis: str, rows: int, cols: int, pixel_mm: float, z_centre: float,
               depth_mm: float, lesion: Lesion | None = None, mirror_x: float | None = None,
               samples: int = 48) -> np.ndarray:
    """Attenuation line integrals through the phantom along ``axis`` ("y": frontal, "x": lateral).

    Image rows go down (-z); columns go along +x, towards the patient's left (frontal), or +y (lateral).
    ``mirror_x`` puts the phantom at -mirror_x and a mirrored copy at +mirror_x (both knees on one film).
    """
    step = depth_mm / samples
    depth = (np.arange(samples) - (samples - 1) / 2) * step
    across = (np.arange(cols) - (cols - 1) / 2) * pixel_mm
    zs = z_centre - (np.arange(rows) - (rows - 1) / 2) * pixel_mm
    out = np.zeros((rows, cols), np.float32)
    for r, z in enumerate(zs):
        if axis == "y":
            if mirror_x is None:
                labels = phantom(across[:, None], depth[None, :], float(z), lesion)
            else:
                right = phantom(across[:, None] + mirror_x, depth[None, :], float(z), lesion)
                left = phantom(-(across[:, None] - mirror_x), depth[None, :], float(z), lesion)
                labels = np.where(right != AIR, right, left)
        else:
            labels = phantom(depth[None, :], across[:, None], float(z), lesion)
        out[r] = MU[labels].sum(axis=1) * step
    return out
