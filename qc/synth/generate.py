"""Generate the labelled QC set: synthetic phantoms of the 12 protocols plus the real CR chest, clean and with
defects at severities 1-3, written as DICOM with ``labels.csv`` (file,body_part,dimension,defect,severity)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from qc.measures import block_mean
from qc.protocol import BODY_PARTS, DIMENSIONS, get
from qc.synth import defects as D
from qc.synth import dicomio, radiographs as XR, volumes as V

MODALITY_OF = {bp: ("DX" if bp in XR.LAYOUTS else bp.split("_")[0].upper()) for bp in BODY_PARTS}
MR_PHASE_AXIS = {"mr_head": 1, "mr_upper_abdomen": 1, "mr_lumbar": 2}  # 1: rows ("COL"), 2: columns ("ROW")
BODY_WIDTH_MM = {"ct_head": 146, "ct_chest": 304, "ct_upper_abdomen": 320}
CT_NOISE = {"ct_head": 4.0, "ct_chest": 12.0, "ct_upper_abdomen": 12.0}


@dataclass
class Case:
    body_part: str
    defect: str  # "none" for clean
    severity: int
    real: bool = False

    @property
    def dimension(self) -> str | None:
        return defects_for(self.body_part).get(self.defect)


def defects_for(bp: str) -> dict[str, str]:
    if bp == "chest_pa":
        return {**D.XR_DEFECTS, **D.CHEST_DEFECTS}
    return D.XR_DEFECTS if bp in XR.LAYOUTS else D.CT_DEFECTS if bp.startswith("ct") else D.MR_DEFECTS


def plan(per_class: int, body_parts=BODY_PARTS, real: bool = True) -> list[Case]:
    """K cases per (body part, defect, severity) and 2K clean ones; wrong body part only as severe."""
    cases = []
    for bp in body_parts:
        cases += [Case(bp, "none", 0) for _ in range(2 * per_class)]
        for defect in defects_for(bp):
            for sev in ((3,) if defect == "wrong_body_part" else (1, 2, 3)):
                cases += [Case(bp, defect, sev) for _ in range(per_class)]
    if real and "chest_pa" in body_parts:
        k = max(1, per_class // 2)
        cases += [Case("chest_pa", "none", 0, real=True) for _ in range(2 * k)]
        for defect in ("cropped", "tilt", "motion_ghost", "metal", "blur", "noise", "underexposure", "overexposure"):
            cases += [Case("chest_pa", defect, sev, real=True) for sev in (1, 2, 3) for _ in range(k)]
    return cases


def tags_for(bp: str, wrong_from=None, strip=False) -> dict:
    if strip:
        return {}
    proto = get(wrong_from or bp)
    t = proto.tags
    out = {"BodyPartExamined": t["body_part"][0], "StudyDescription": proto.title}
    if "view" in t:
        out["ViewPosition"] = t["view"][0]
    return out


def _wrong_part(bp: str, rng) -> str:
    same = [b for b in BODY_PARTS if MODALITY_OF[b] == MODALITY_OF[bp] and b != bp]
    return same[int(rng.integers(len(same)))]


def radiograph_case(case: Case, rng) -> tuple[np.ndarray, float]:
    bp, d, s = case.body_part, case.defect, case.severity
    layout = XR.LAYOUTS[bp]
    tilt = D.XR_TILT[s] * rng.choice([-1, 1]) if d == "tilt" else 0.0
    shift = D.XR_CROP_SHIFT[bp][s] if d == "cropped" else (0.0, 0.0)
    if d == "cropped" and bp in ("abdomen_erect", "knee_ap", "knee_lat"):
        shift = (shift[0] * rng.choice([-1, 1]), shift[1])
    anatomy = {}
    if d == "rotation":
        anatomy["rotation"] = D.CHEST_ROTATION[s] * rng.choice([-1, 1])
    elif d == "poor_inspiration":
        anatomy["diaphragm_raise"] = D.DIAPHRAGM_RAISE[s]
    v = XR.expose(XR.render(bp, rng, tilt, shift, **anatomy), rng)
    return _radiograph_defect(v, case, rng, XR.FULL_SCALE), layout.spacing


def _radiograph_defect(v, case: Case, rng, fs):
    d, s = case.defect, case.severity
    scale = max(v.shape) / 512
    if d == "blur":
        return ndi.gaussian_filter(v, {1: 1.0, 2: 1.8, 3: 3.0}[s] * scale)
    if d == "noise":
        return D.xr_noise(v, s, rng, fs)
    if d == "underexposure":
        return D.xr_underexposure(v, s, rng, fs)
    if d == "overexposure":
        return D.xr_overexposure(v, s, rng, fs)
    if d == "motion_ghost":
        a = rng.uniform(0, 2 * np.pi)
        dist = 0.03 * max(v.shape)
        return D.ghost(v, s, (round(dist * np.sin(a)), round(dist * np.cos(a))))
    if d == "metal":
        body = v > np.percentile(v, 30)
        ys, xs = np.nonzero(body)
        return D.xr_metal(v, s, rng, fs, (ys.min(), xs.min(), ys.max(), xs.max()))
    return v


def real_chest_case(case: Case, rng):
    ds = dicomio.real_chest()
    fs = float(2 ** int(ds.BitsStored) - 1)
    v = block_mean(fs - ds.pixel_array.astype(np.float32), 2)
    d, s = case.defect, case.severity
    if d == "cropped":
        v = v[int(v.shape[0] * D.REAL_CROP_FRACTION[s]):]
    elif d == "tilt":
        v = ndi.rotate(v, D.XR_TILT[s] * rng.choice([-1, 1]), reshape=False, order=1, mode="nearest")
    else:
        v = _radiograph_defect(v, case, rng, fs)
    raw = np.clip(np.round(fs - v), 0, fs).astype(np.uint16)
    return ds, raw


def volume_case(case: Case, rng):
    bp, d, s = case.body_part, case.defect, case.severity
    spec = V.SPECS[bp]
    mr = bp.startswith("mr_")
    roll = D.VOL_ROLL[s] * rng.choice([-1, 1]) if d == "rotation" else 0.0
    z_range, centre, fov_scale = None, (0.0, 0.0), 1.0
    if d == "cropped":
        if spec.sagittal:
            centre = ({1: 30.0, 2: 66.0, 3: 102.0}[s], 0.0)
        else:
            z_range = (spec.z0, spec.z1 - D.VOL_CROP_MM[s])
    if d == "truncation":
        fov_scale = D.TRUNCATION_FOV[s] * BODY_WIDTH_MM[bp] / spec.fov
    vol, grid = V.render(bp, rng, roll=roll, fov_scale=fov_scale, z_range=z_range, centre=centre)
    info = {}
    if mr:
        vol = V.finish_mr(vol, rng, 0.012)
    else:
        vol = V.finish_ct(vol, rng, CT_NOISE[bp])
    mm = grid.spacing[1]
    if d == "blur":
        vol = D.blur(vol, s, axes=(1, 2))
    elif d == "noise":
        vol = D.vol_noise(vol, s, rng, mr)
    elif d == "motion_ghost":
        if mr:
            vol = D.mr_ghost(vol, s, MR_PHASE_AXIS[bp])
        else:
            a = rng.uniform(0, 2 * np.pi)
            vol = D.ghost(vol, s, (round(16 / mm * np.sin(a)), round(16 / mm * np.cos(a))), axes=(1, 2))
    elif d == "metal_streak":
        vol, info = D.metal_streaks(vol, s, rng, mm)
    elif d == "ring":
        vol = D.rings(vol, s, rng)
    elif d == "wrap_around":
        vol = D.fold(vol, D.WRAP_FOV[bp][s], MR_PHASE_AXIS[bp])
    elif d == "bias_field":
        vol = D.bias_field(vol, s, rng)
    keep = None
    if d == "missing_slices":
        n = vol.shape[0]
        gone = rng.choice(np.arange(2, n - 2), size=D.MISSING[s], replace=False)
        keep = [i for i in range(n) if i not in set(gone.tolist())]
    return vol, grid, keep, info


def write_case(root: Path, index: int, case: Case, seed: int) -> list[list]:
    rng = np.random.default_rng([seed, index])
    bp = case.body_part
    strip = case.defect != "wrong_body_part" and rng.random() < 0.2
    wrong = _wrong_part(bp, rng) if case.defect == "wrong_body_part" else None
    tags = tags_for(bp, wrong, strip)
    patient = f"QC{seed:04d}{index:05d}"
    name = f"{bp}/{'real_' if case.real else ''}{index:05d}_{case.defect}_{case.severity}"
    if case.real:
        ds, raw = real_chest_case(case, rng)
        ds.Rows, ds.Columns = raw.shape
        ds.PixelData = raw.tobytes()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = dicomio.generate_uid()
        ds.PatientID, ds.PatientName = patient, "QC^REAL"
        for key in ("BodyPartExamined", "ViewPosition", "StudyDescription"):
            if key in ds:
                delattr(ds, key)
        for key, value in tags.items():
            setattr(ds, key, value)
        ds.Modality = "CR"
        ds.SpecificCharacterSet = "ISO_IR 192"
        rel = name + ".dcm"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(root / rel, enforce_file_format=True)
    elif bp in XR.LAYOUTS:
        v, spacing = radiograph_case(case, rng)
        rel = name + ".dcm"
        dicomio.write_radiograph(root / rel, v, spacing, tags, patient)
    else:
        vol, grid, keep, _ = volume_case(case, rng)
        rel = name
        if bp.startswith("mr_"):
            tags["InPlanePhaseEncodingDirection"] = "COL" if MR_PHASE_AXIS[bp] == 1 else "ROW"
        dicomio.write_series(root / rel, vol, list(grid.slice_positions), grid.spacing, MODALITY_OF[bp], tags,
                             patient, sagittal=grid.sagittal, keep=keep)
    if case.defect == "none":
        return [[rel, bp, dim, "none", 0] for dim in DIMENSIONS]
    return [[rel, bp, case.dimension, case.defect, case.severity]]


def _one(args):
    root, i, case, seed = args
    return write_case(root, i, case, seed)


def generate(root: Path, seed: int = 0, per_class: int = 3, body_parts=BODY_PARTS, real: bool = True,
             workers: int = 1) -> int:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cases = plan(per_class, body_parts, real)
    jobs = [(root, i, c, seed) for i, c in enumerate(cases)]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            rows = list(pool.map(_one, jobs, chunksize=4))
    else:
        rows = [_one(j) for j in jobs]
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "body_part", "dimension", "defect", "severity"])
        for r in rows:
            w.writerows(r)
    return len(cases)
