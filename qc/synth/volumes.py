"""Synthetic CT (HU) and MR volumes of the six cross-sectional protocols, rendered from 3-D shapes in mm.

Axial series: rows = A-P (y, posterior down), columns = R-L (x), slices along z (superior positive, as in
DICOM patient coordinates). The MR lumbar series is sagittal: slices along x, rows = z (superior at the top),
columns = y (anterior left). Geometry (roll, field of view, centre) is applied to the sampling grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi


@dataclass
class Grid:
    """Sampling grid: positions in mm of every voxel (3-D arrays) for one series."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]  # slice, row, col mm
    origin_slice: float  # position of slice 0 along the slice axis
    sagittal: bool = False
    roll: float = 0.0  # in-plane rotation, degrees
    centre: tuple[float, float] = (0.0, 0.0)  # in-plane centre (row mm, col mm)
    x: np.ndarray = field(init=False, repr=False)
    y: np.ndarray = field(init=False, repr=False)
    z: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        ns, nr, nc = self.shape
        s = self.origin_slice + np.arange(ns) * self.spacing[0]
        r = (np.arange(nr) - (nr - 1) / 2) * self.spacing[1] + self.centre[0]
        c = (np.arange(nc) - (nc - 1) / 2) * self.spacing[2] + self.centre[1]
        t = np.radians(self.roll)
        rr, cc = np.meshgrid(r, c, indexing="ij")
        rr, cc = rr * np.cos(t) - cc * np.sin(t), rr * np.sin(t) + cc * np.cos(t)
        ones = np.ones((ns, 1, 1), np.float32)
        if self.sagittal:  # rows are z (superior up), columns are y
            self.x = (s[:, None, None] * ones).astype(np.float32) * np.ones((1, nr, nc), np.float32)
            self.z = (-rr[None] * ones).astype(np.float32)
            self.y = (cc[None] * ones).astype(np.float32)
        else:
            self.z = (s[:, None, None] * ones).astype(np.float32) * np.ones((1, nr, nc), np.float32)
            self.y = (rr[None] * ones).astype(np.float32)
            self.x = (cc[None] * ones).astype(np.float32)

    @property
    def slice_positions(self) -> np.ndarray:
        return self.origin_slice + np.arange(self.shape[0]) * self.spacing[0]


class Volume:
    def __init__(self, grid: Grid, background: float):
        self.g = grid
        self.v = np.full(grid.shape, background, np.float32)

    def ellipsoid(self, c, semi, value, p=2.0):
        g = self.g
        r = (np.abs((g.x - c[0]) / semi[0]) ** p + np.abs((g.y - c[1]) / semi[1]) ** p
             + np.abs((g.z - c[2]) / semi[2]) ** p)
        m = r <= 1
        self.v[m] = value
        return m

    def cylinder(self, c, semi, zrange, value):
        """Elliptic cylinder along z (axial body parts)."""
        g = self.g
        inside = ((g.x - c[0]) / semi[0]) ** 2 + ((g.y - c[1]) / semi[1]) ** 2 <= 1
        m = inside & (g.z >= zrange[0]) & (g.z <= zrange[1])
        self.v[m] = value
        return m

    def box(self, lo, hi, value):
        g = self.g
        m = ((g.x >= lo[0]) & (g.x <= hi[0]) & (g.y >= lo[1]) & (g.y <= hi[1]) & (g.z >= lo[2]) & (g.z <= hi[2]))
        self.v[m] = value
        return m


# tissue values: (CT HU, MR T1-weighted relative signal)
T = {
    "air": (-1000, 0.0), "fat": (-90, 0.9), "muscle": (45, 0.35), "lung": (-850, 0.03), "bone": (700, 0.08),
    "marrow": (300, 0.7), "brain": (35, 0.6), "grey": (40, 0.5), "csf": (5, 0.15), "liver": (62, 0.55),
    "spleen": (42, 0.42), "kidney": (30, 0.45), "blood": (45, 0.1), "disc": (80, 0.3), "cord": (35, 0.45),
    "bowel": (20, 0.4), "table": (150, 0.0),
}


def _t(name, mr):
    return T[name][1 if mr else 0]


def head(vol: Volume, mr: bool, rng):
    j = rng.uniform(0.96, 1.04)
    vol.cylinder((0, 12), (50 * j, 56 * j), (-200, -55), _t("muscle", mr))  # neck
    vol.ellipsoid((0, 0, 0), (73 * j, 91 * j, 97 * j), _t("fat", mr) if mr else _t("muscle", mr))  # scalp
    vol.ellipsoid((0, 0, 0), (69 * j, 87 * j, 93 * j), _t("bone", mr))
    vol.ellipsoid((0, 0, 0), (62 * j, 80 * j, 86 * j), _t("grey", mr))
    vol.ellipsoid((0, 0, 2), (52 * j, 68 * j, 72 * j), _t("brain", mr))
    for side in (-1, 1):
        vol.ellipsoid((side * 9, -4, 18), (6, 24, 14), _t("csf", mr))


def _trunk(vol: Volume, mr: bool, semi, zr):
    vol.box((-250, 122, -400), (250, 130, 400), _t("table", mr))
    vol.cylinder((0, 0), semi, zr, _t("fat", mr))
    vol.cylinder((0, 0), (semi[0] - 14, semi[1] - 12), zr, _t("muscle", mr))


def _spine_axial(vol: Volume, mr: bool, cy, zr):
    vol.cylinder((0, cy), (19, 17), zr, _t("bone", mr))
    vol.cylinder((0, cy), (16, 14), zr, _t("marrow", mr))
    vol.cylinder((0, cy + 25), (7, 7), zr, _t("csf", mr))


def chest(vol: Volume, mr: bool, rng):
    j = rng.uniform(0.96, 1.04)
    _trunk(vol, mr, (152 * j, 106 * j), (-400, 400))
    for side in (-1, 1):
        ribs = vol.g.z % 26 < 9
        ring = ((((vol.g.x) / (138 * j)) ** 2 + ((vol.g.y) / (92 * j)) ** 2) <= 1) & \
               ((((vol.g.x) / (128 * j)) ** 2 + ((vol.g.y) / (83 * j)) ** 2) > 1) & ribs & (side * vol.g.x > 20)
        vol.v[ring] = _t("bone", mr)
        vol.ellipsoid((side * 66 * j, -2, 0), (56 * j, 70 * j, 118 * j), _t("lung", mr))
    vol.ellipsoid((14, -22, -45), (55, 48, 45), _t("muscle", mr))  # heart
    vol.cylinder((-8, 30), (13, 13), (-400, 400), _t("blood", mr))  # aorta
    _spine_axial(vol, mr, 70 * j, (-400, 400))
    lungs = vol.v == _t("lung", mr)
    vessels = ndi.gaussian_filter(rng.standard_normal(vol.v.shape).astype(np.float32), 1.2)
    vol.v[lungs] += (60 if not mr else 0.01) * np.clip(vessels[lungs] * 4, 0, None) ** 2


def upper_abdomen(vol: Volume, mr: bool, rng):
    j = rng.uniform(0.96, 1.04)
    _trunk(vol, mr, (160 * j, 116 * j), (-400, 400))
    vol.ellipsoid((-55, -8, 25), (85 * j, 74 * j, 80 * j), _t("liver", mr))
    vol.ellipsoid((85, 25, 35), (30, 45, 55), _t("spleen", mr))
    for side in (-1, 1):
        vol.ellipsoid((side * 66, 48, -40), (24, 30, 52), _t("kidney", mr))
        vol.ellipsoid((side * 70, 35, 152), (56, 62, 60), _t("lung", mr))
    vol.ellipsoid((58, -30, 60), (40, 34, 40), _t("bowel", mr))
    gas = vol.ellipsoid((58, -30, 60), (38, 32, 38), _t("bowel", mr)) & (vol.g.y < -42)
    vol.v[gas] = _t("air", mr)
    vol.cylinder((-8, 28), (12, 12), (-400, 400), _t("blood", mr))
    _spine_axial(vol, mr, 72 * j, (-400, 400))


def lumbar_sagittal(vol: Volume, mr: bool, rng):
    g = vol.g
    vol.box((-200, -125, -400), (200, 85, 400), _t("fat", mr))
    vol.box((-200, -110, -400), (200, 72, 400), _t("bowel", mr))
    vol.box((-200, 35, -400), (200, 72, 400), _t("muscle", mr))
    vol.box((-9, 22, -400), (9, 36, 400), _t("csf", mr))
    vol.box((-4, 26, -400), (4, 32, 400), _t("cord", mr))
    for k in range(7):
        zc = 110 - 36 * k
        vol.ellipsoid((0, 0, zc), (24, 20, 13.5), _t("marrow", mr), p=4)
        vol.ellipsoid((0, 0, zc - 18), (22, 18, 4.5), _t("disc", mr), p=4)
        vol.ellipsoid((0, 52, zc + 4), (10, 14, 8), _t("marrow", mr))
    sac = (np.abs(g.x) < 30) & (((g.y - 15 - 0.5 * (-130 - g.z)) / 22) ** 2 + ((g.z + 150) / 32) ** 2 <= 1)
    vol.v[sac] = _t("marrow", mr)


def finish_ct(hu: np.ndarray, rng, noise: float) -> np.ndarray:
    """Reconstruction kernel blur plus noise, as stored (int16-ready HU)."""
    hu = ndi.gaussian_filter(hu, (0, 0.6, 0.6))
    return hu + rng.normal(0, noise, hu.shape).astype(np.float32)


def finish_mr(sig: np.ndarray, rng, noise: float) -> np.ndarray:
    sig = ndi.gaussian_filter(sig, (0, 0.6, 0.6))
    n1 = rng.normal(0, noise, sig.shape).astype(np.float32)
    n2 = rng.normal(0, noise, sig.shape).astype(np.float32)
    return np.sqrt((sig + n1) ** 2 + n2**2)


@dataclass
class SeriesSpec:
    matrix: int
    fov: float  # mm in-plane
    slice_mm: float
    z0: float
    z1: float
    sagittal: bool = False


SPECS = {
    "ct_head": SeriesSpec(160, 240, 5.0, -70, 100),
    "ct_chest": SeriesSpec(160, 380, 5.0, -145, 150),
    "ct_upper_abdomen": SeriesSpec(160, 400, 5.0, -100, 130),
    "mr_head": SeriesSpec(128, 240, 5.0, -70, 100),
    "mr_upper_abdomen": SeriesSpec(128, 400, 6.0, -100, 130),
    "mr_lumbar": SeriesSpec(144, 290, 4.0, -30, 30, sagittal=True),
}
SHAPES = {"ct_head": head, "ct_chest": chest, "ct_upper_abdomen": upper_abdomen, "mr_head": head,
          "mr_upper_abdomen": upper_abdomen, "mr_lumbar": lumbar_sagittal}


def render(body_part: str, rng, roll=0.0, fov_scale=1.0, z_range=None, centre=(0.0, 0.0), phase_extra=0):
    """Noise-free volume plus its grid. ``phase_extra`` adds rows on both sides (for wrap-around folding)."""
    spec = SPECS[body_part]
    z0, z1 = z_range or (spec.z0, spec.z1)
    n = int(round((z1 - z0) / spec.slice_mm)) + 1
    px = spec.fov * fov_scale / spec.matrix
    grid = Grid((n, spec.matrix + 2 * phase_extra, spec.matrix), (spec.slice_mm, px, px), z0,
                sagittal=spec.sagittal, roll=roll + rng.uniform(-1, 1),
                centre=(centre[0] + rng.uniform(-3, 3), centre[1] + rng.uniform(-3, 3)))
    mr = body_part.startswith("mr_")
    vol = Volume(grid, _t("air", mr))
    SHAPES[body_part](vol, mr, rng)
    return vol.v, grid
