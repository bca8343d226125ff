"""Each check detects its injected defect (moderate or severe) and passes the clean case."""
import pytest

from qc.engine import ANALYSES
from qc.protocol import get
from qc.scoring import score
from tests.qc.helpers import exam_for

CASES = [
    # body part, defect, severity, check that must fail
    ("chest_pa", "cropped", 3, "lung_fields_in_field"),
    ("chest_pa", "tilt", 3, "tilt"),
    ("chest_pa", "rotation", 2, "rotation"),
    ("chest_pa", "poor_inspiration", 2, "inspiration"),
    ("chest_pa", "motion_ghost", 3, "motion_double_edges"),
    ("chest_pa", "metal", 2, "foreign_metal"),
    ("chest_pa", "blur", 3, "sharpness"),
    ("chest_pa", "noise", 2, "noise"),
    ("chest_pa", "underexposure", 3, "dynamic_range"),
    ("chest_pa", "overexposure", 2, "burn_out"),
    ("lumbar_ap", "cropped", 3, "vertebrae_in_field"),
    ("knee_lat", "cropped", 2, "soft_tissue_in_field"),
    ("knee_ap", "tilt", 3, "tilt"),
    ("abdomen_erect", "cropped", 2, "flanks_in_field"),
    ("ct_chest", "cropped", 3, "range_covers_lungs"),
    ("ct_head", "cropped", 3, "range_covers_vertex"),
    ("ct_upper_abdomen", "cropped", 3, "range_covers_liver"),
    ("ct_head", "missing_slices", 2, "slice_continuity"),
    ("ct_chest", "truncation", 2, "truncation"),
    ("ct_head", "rotation", 2, "roll"),
    ("ct_upper_abdomen", "metal_streak", 2, "metal_streak"),
    ("ct_upper_abdomen", "motion_ghost", 2, "motion"),
    ("ct_head", "ring", 2, "ring"),
    ("ct_head", "motion_ghost", 3, "motion"),
    ("ct_upper_abdomen", "noise", 2, "noise"),
    ("ct_head", "blur", 3, "sharpness"),
    ("mr_head", "cropped", 3, "range_covers_vertex"),
    ("mr_lumbar", "cropped", 3, "vertebrae_in_field"),
    ("mr_upper_abdomen", "cropped", 3, "scan_length"),
    ("mr_head", "motion_ghost", 3, "ghosting"),
    ("mr_head", "wrap_around", 2, "wrap_around"),
    ("mr_upper_abdomen", "bias_field", 3, "non_uniformity"),
    ("mr_lumbar", "rotation", 3, "roll"),
    ("mr_head", "noise", 2, "snr"),
    ("mr_head", "blur", 3, "sharpness"),
]


def _result(body_part, defect="none", severity=0):
    protocol = get(body_part)
    exam = exam_for(body_part, defect, severity)
    return score(protocol, ANALYSES[protocol.kind](exam, protocol.params))


@pytest.mark.parametrize("body_part, defect, severity, check_id", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_check_fails_on_its_defect(body_part, defect, severity, check_id):
    result = _result(body_part, defect, severity)
    check = next(c for c in result.checks if c.id == check_id)
    assert not check.passed, f"{check_id} passed on {defect} sev {severity}: measured {check.value}"
    assert check.value is not None and check.explanation


@pytest.mark.parametrize("body_part", sorted({c[0] for c in CASES}))
def test_clean_case_passes_every_measured_check(body_part):
    result = _result(body_part)
    failed = [(c.id, c.value) for c in result.checks if not c.passed]
    assert not failed
    assert result.grade == "甲"


@pytest.mark.parametrize("degrees", [0, 22.5, 45, 90, 157.5])
def test_ct_motion_ghost_is_found_whatever_its_direction(degrees):
    """The upper abdomen's flat outline and the table once hid ghosts displaced along them (0 and 180 deg)."""
    import numpy as np

    from qc.synth import defects as D
    from qc.synth import generate as G
    from qc.synth import volumes as V

    rng = np.random.default_rng(int(degrees * 10))
    vol, grid = V.render("ct_upper_abdomen", rng)
    vol = V.finish_ct(vol, rng, G.CT_NOISE["ct_upper_abdomen"])
    protocol = get("ct_upper_abdomen")
    motion = next(c for c in protocol.checks if c.id == "motion")

    def reading(v):
        from qc.exam import Exam

        exam = Exam("CT", v.astype(np.float32), grid.spacing, {"Modality": "CT"}, positions=list(grid.slice_positions))
        return ANALYSES["ct"](exam, protocol.params)["ghost_ratio"].value

    a, shift = np.radians(degrees), 16 / grid.spacing[1]
    ghosted = D.ghost(vol, 2, (round(shift * np.sin(a)), round(shift * np.cos(a))), axes=(1, 2))
    assert reading(vol) <= motion.pass_ < reading(ghosted)


def test_real_chest_reads_or_explains_the_landmark_checks(tmp_path):
    """The real CR chest of pydicom-data: no crash; rotation and inspiration either pass with a value or say
    why they were not read (its top edge cuts the clavicle level, masses overlie the bases)."""
    import numpy as np

    from qc.engine import score_path
    from qc.synth import generate as G

    rows = G.write_case(tmp_path, 0, G.Case("chest_pa", "none", 0, real=True), seed=3)
    result = score_path(tmp_path / rows[0][0])
    assert result.body_part == "chest_pa"
    for check in (c for c in result.checks if c.id in ("rotation", "inspiration")):
        if check.value is None:
            assert check.explanation.startswith("not measured (not read:"), check
        else:
            assert np.isfinite(check.value) and check.passed and check.where, check
