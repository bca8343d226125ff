"""Build QC cases in memory (no DICOM round trip) from the labelled-set generator."""
from __future__ import annotations

import numpy as np

from qc.exam import Exam
from qc.synth import generate as G
from qc.synth import radiographs as XR


def exam_for(body_part: str, defect: str = "none", severity: int = 0, seed: int = 0) -> Exam:
    case = G.Case(body_part, defect, severity)
    rng = np.random.default_rng([seed, 99])
    tags = {"Modality": G.MODALITY_OF[body_part]}
    for key, value in G.tags_for(body_part).items():
        tags[key] = value
    if body_part in XR.LAYOUTS:
        values, spacing = G.radiograph_case(case, rng)
        return Exam("DX", values.astype(np.float32), (spacing, spacing), tags, XR.FULL_SCALE)
    vol, grid, keep, _ = G.volume_case(case, rng)
    positions = list(grid.slice_positions)
    if keep is not None:
        vol, positions = vol[keep], [positions[i] for i in keep]
    if body_part.startswith("mr_"):
        tags["InPlanePhaseEncodingDirection"] = "COL" if G.MR_PHASE_AXIS[body_part] == 1 else "ROW"
        tags["ImageOrientationPatient"] = "0,1,0,0,0,-1" if grid.sagittal else "1,0,0,0,1,0"
    # what the DICOM round trip does: 12-bit storage
    vol = np.clip(np.round(vol + 1024), 0, 4095) - 1024 if body_part.startswith("ct_") else np.round(vol * 1000) / 1000
    return Exam(tags["Modality"], vol.astype(np.float32), grid.spacing, tags, positions=positions)
