"""Synthetic radiographs (projection phantoms) of the six radiograph protocols, in mm coordinates.

Each phantom is a sum of projected ellipsoids/superellipses (thickness ~ sqrt(1-r^2)), so bone edges are sharp
and soft tissue shades smoothly, like a real film. Geometry (tilt, shift) is applied to the coordinates, so
in-plane tilt and off-centre cropping are rendered, not pasted on. The chest also takes a rotation about the
vertical axis (each structure moves sideways by its depth times sin(angle): the anterior clavicle heads one way,
the posterior spinous processes the other) and the height of the diaphragm domes (inspiration).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

FULL_SCALE = 4095  # 12-bit stored values
BASE, GAIN = 150.0, 1750.0


@dataclass
class Layout:
    rows: int
    cols: int
    spacing: float  # mm


LAYOUTS = {
    "chest_pa": Layout(512, 512, 0.7),
    "abdomen_erect": Layout(512, 512, 0.7),
    "lumbar_ap": Layout(640, 420, 0.6),
    "lumbar_lat": Layout(640, 420, 0.6),
    "knee_ap": Layout(512, 512, 0.4),
    "knee_lat": Layout(512, 512, 0.4),
}


class Canvas:
    """Coordinates in mm (x right, y down), centred, after an in-plane tilt (deg) and a shift (mm)."""

    def __init__(self, layout: Layout, tilt: float = 0.0, shift: tuple[float, float] = (0.0, 0.0)):
        ys = (np.arange(layout.rows) - (layout.rows - 1) / 2) * layout.spacing
        xs = (np.arange(layout.cols) - (layout.cols - 1) / 2) * layout.spacing
        y, x = np.meshgrid(ys, xs, indexing="ij")
        x, y = x - shift[0], y - shift[1]
        t = np.radians(tilt)
        self.x = (x * np.cos(t) + y * np.sin(t)).astype(np.float32)
        self.y = (-x * np.sin(t) + y * np.cos(t)).astype(np.float32)
        self.a = np.zeros_like(self.x)

    def blob(self, cx, cy, ax, by, mu, p=2.0, angle=0.0, step=0.0, above=None):
        """Add a projected (super)ellipsoid: thickness sqrt(1 - r^p) inside; ``step`` adds a sharp rim
        (cortical bone edges are steps on a film, soft tissue fades out); ``above`` (rows of y) keeps only the
        part above that line (a lung above its diaphragm dome)."""
        x, y = self.x - cx, self.y - cy
        if angle:
            t = np.radians(angle)
            x, y = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
        r = (np.abs(x / ax) ** p + np.abs(y / by) ** p)
        add = mu * ((1 - step) * np.sqrt(np.clip(1 - r, 0, 1)) + step * (r <= 1))
        self.a += add if above is None else add * (self.y < above)

    def band(self, x0, y0, x1, y1, half, mu, step=0.5):
        """A bone-like bar between two points with a rounded cross-section."""
        dx, dy = x1 - x0, y1 - y0
        length = np.hypot(dx, dy)
        ux, uy = dx / length, dy / length
        px, py = self.x - x0, self.y - y0
        along = px * ux + py * uy
        across = np.abs(-px * uy + py * ux)
        inside = (along >= 0) & (along <= length)
        profile = (1 - step) * np.sqrt(np.clip(1 - (across / half) ** 2, 0, 1)) + step * (across <= half)
        self.a += mu * inside * profile

    def arc(self, y0, curve, half, mu, xmin, xmax, x0=0.0):
        """A rib: the band |y - (y0 + curve*(x-x0)^2)| < half for xmin < |x-x0| < xmax."""
        x = self.x - x0
        centre = y0 + curve * x**2
        d = np.abs(self.y - centre) / half
        inside = (np.abs(x) > xmin) & (np.abs(x) < xmax)
        self.a += mu * inside * (0.5 * np.sqrt(np.clip(1 - d**2, 0, 1)) + 0.5 * (d <= 1))


def _texture(shape, rng, sigma, amp):
    return amp * ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma) * sigma


CLAVICLE_HEAD_X = 30.0  # mm from the midline to each medial clavicle end
RIB_SPACING = 24.0  # mm between posterior ribs at the mid-lung line
DOME_Y = (95.0, 105.0)  # right and left hemidiaphragm peaks (mm, y down): about ten posterior ribs above
DEPTH = {"clavicle_head": -60.0, "clavicle_tip": -10.0, "heart": -30.0, "vertebra": 30.0, "spinous": 75.0,
         "rib": 50.0}  # mm behind the rotation axis (+ posterior): how far each moves sideways when rotated


def chest_pa(c: Canvas, rng, rotation: float = 0.0, diaphragm_raise: float = 0.0):
    """``rotation``: degrees about the vertical axis; ``diaphragm_raise``: mm the domes sit higher (poor
    inspiration)."""
    s = np.sin(np.radians(rotation))
    dx = {k: d * s for k, d in DEPTH.items()}
    c.blob(0, 30, 172, 255, 1.0, p=3, step=0.5)
    c.blob(0, -190, 45, 60, 0.4)  # neck
    jitter = rng.uniform(-4, 4)
    for side, (cx, cy, ax, by), peak, dome_y in ((-1, (-76, -12, 62, 124), -70, DOME_Y[0]),
                                                (1, (78, -8, 60, 120), 75, DOME_Y[1])):
        dome = dome_y + jitter - diaphragm_raise + 0.006 * (c.x - peak) ** 2
        c.blob(cx, cy, ax, by, -0.75, p=2.3, above=dome)
    c.blob(25 + dx["heart"], 58, 60, 52, 0.42)  # heart
    c.blob(0, -40, 26, 110, 0.3)  # mediastinum
    for k in range(16):
        y = -205 + 26 * k
        c.blob(dx["vertebra"], y, 18, 10.5, 0.2, p=4, step=0.2)
        c.blob(dx["spinous"], y + 9, 4.5, 7.5, 0.3, step=0.5)  # spinous process, projected over the body
    for side in (-1, 1):
        c.band(side * CLAVICLE_HEAD_X + dx["clavicle_head"], -124, side * 125 + dx["clavicle_tip"], -150, 5.5, 0.4)
        c.blob(side * (CLAVICLE_HEAD_X + 3) + dx["clavicle_head"], -124, 7, 7.5, 0.15)  # the bulbous head
    for k in range(12):  # posterior ribs, the first at the apex
        c.arc(-150 + RIB_SPACING * k, 0.0035, 4.5, 0.15, 18, 160, x0=dx["rib"])
    c.a += _texture(c.a.shape, rng, 4, 0.01) * (c.a < 0.7)


def abdomen_erect(c: Canvas, rng):
    c.blob(0, 40, 150, 300, 1.0, p=2.5, step=0.3)
    c.blob(-75, -232, 66, 80, -0.5)
    c.blob(75, -228, 62, 80, -0.5)
    c.blob(-60, -110, 90, 60, 0.15)  # liver
    for k in range(10):
        c.blob(0, -170 + 30 * k, 20 + k, 11, 0.42, p=4, step=0.5)
    c.blob(0, 150, 50, 45, 0.35)  # sacrum
    for side in (-1, 1):
        c.blob(side * 95, 145, 55, 60, 0.3)
    # stomach bubble with an air-fluid level (erect film): gas only above the level
    gas = Canvas.__new__(Canvas)
    gas.x, gas.y, gas.a = c.x, c.y, np.zeros_like(c.a)
    gas.blob(70, -118, 36, 26, -0.35)
    c.a += np.where(c.y < -118, gas.a, 0)
    for _ in range(6):
        c.blob(rng.uniform(-90, 90), rng.uniform(-20, 90), rng.uniform(8, 16), rng.uniform(6, 12), -0.2)


def _lumbar_vertebrae(c: Canvas, cx0: float, lateral: bool):
    for k in range(7):
        y = -160 + 36 * k
        a = 22 + 1.5 * k
        if lateral:
            c.blob(cx0, y, 19 + k, 13.5, 0.55, p=4, step=0.5)
            c.blob(cx0 + 38, y - 4, 10, 7, 0.25)  # pedicle/lamina
            c.blob(cx0 + 68, y + 4, 16, 8, 0.3, angle=-15)  # spinous process
        else:
            c.blob(0, y, a, 13.5, 0.5, p=4, step=0.5)
            for side in (-1, 1):
                c.blob(side * (a - 6), y - 4, 5, 7, 0.22)
                c.band(side * a, y, side * (a + 26), y - 3, 3.5, 0.25)
            c.blob(0, y + 3, 4, 9, 0.2)


def lumbar_ap(c: Canvas, rng):
    c.blob(0, 0, 200, 420, 1.0, p=4)
    _lumbar_vertebrae(c, 0, lateral=False)
    c.blob(0, 140, 55, 50, 0.4)
    for side in (-1, 1):
        c.blob(side * 108, 128, 60, 70, 0.32)
    for _ in range(5):
        c.blob(rng.uniform(-100, 100), rng.uniform(-120, 80), rng.uniform(8, 15), rng.uniform(6, 10), -0.2)


def lumbar_lat(c: Canvas, rng):
    c.blob(0, 0, 190, 420, 1.1, p=4)
    _lumbar_vertebrae(c, 15, lateral=True)
    c.blob(40, 150, 34, 46, 0.42, angle=30, p=3)  # sacrum
    c.blob(30, 120, 80, 60, 0.12)  # iliac wings overlapping
    for _ in range(4):
        c.blob(rng.uniform(-110, -30), rng.uniform(-120, 80), rng.uniform(8, 15), rng.uniform(6, 10), -0.2)


def knee_ap(c: Canvas, rng):
    half = 56 + 0.08 * np.clip(-c.y, 0, None)
    c.a += 0.8 * np.sqrt(np.clip(1 - (c.x / half) ** 2, 0, 1))
    c.band(0, -200, 0, -35, 15.5, 0.55)
    c.blob(0, -30, 38, 27, 0.55, step=0.5)
    c.band(0, 25, 0, 200, 14.5, 0.55)
    c.blob(0, 24, 37, 17, 0.55, step=0.5)
    c.band(31, 38, 31, 200, 6, 0.3)
    c.blob(31, 36, 9, 10, 0.3)
    c.blob(0, -36, 20, 22, 0.18)  # patella seen through the femur


def knee_lat(c: Canvas, rng):
    front = -62 - 10 * np.exp(-((c.y + 30) / 35) ** 2)
    back = 55 + 0.05 * np.clip(-c.y, 0, None)
    mid, half = (front + back) / 2, (back - front) / 2
    c.a += 0.85 * np.sqrt(np.clip(1 - ((c.x - mid) / half) ** 2, 0, 1))
    c.band(6, -200, 6, -30, 14, 0.55)
    c.blob(8, -24, 29, 27, 0.6, step=0.5)
    c.blob(4, 22, 33, 14, 0.55, step=0.5)
    c.band(4, 22, 2, 200, 13, 0.55)
    c.blob(-12, 40, 8, 12, 0.3)  # tibial tuberosity
    c.blob(24, 38, 8, 9, 0.3)  # fibular head
    c.blob(-44, -30, 9, 21, 0.5, step=0.5)  # patella


PHANTOMS = {"chest_pa": chest_pa, "abdomen_erect": abdomen_erect, "lumbar_ap": lumbar_ap,
            "lumbar_lat": lumbar_lat, "knee_ap": knee_ap, "knee_lat": knee_lat}


def render(body_part: str, rng: np.random.Generator, tilt: float = 0.0, shift=(0.0, 0.0), **anatomy) -> np.ndarray:
    """Attenuation map of one phantom with small anatomical variation per case; ``anatomy`` goes to the phantom
    (chest: rotation, diaphragm_raise)."""
    layout = LAYOUTS[body_part]
    jitter = (rng.uniform(-4, 4), rng.uniform(-4, 4))
    canvas = Canvas(layout, tilt + rng.uniform(-1, 1), (shift[0] + jitter[0], shift[1] + jitter[1]))
    scale = rng.uniform(0.96, 1.04)
    canvas.x /= scale
    canvas.y /= scale
    PHANTOMS[body_part](canvas, rng, **anatomy)
    return canvas.a


def expose(attenuation: np.ndarray, rng: np.random.Generator, noise: float = 14.0) -> np.ndarray:
    """Detector values (MONOCHROME2, bone bright) with quantum noise."""
    v = BASE + GAIN * attenuation
    v = v + rng.normal(0, noise, v.shape) * np.sqrt(np.clip(v / 1500, 0.2, None))
    return np.clip(v, 0, FULL_SCALE)
