"""Every located failure is in the original image's pixels, even when the analysis read a downsampled copy:
checked on a 512-matrix CT and 256/288-matrix MR series against masks computed independently at full size."""
import numpy as np
import pytest
from scipy import ndimage as ndi

from qc.engine import ANALYSES
from qc.measures import otsu
from qc.protocol import get
from qc.scoring import score
from qc.synth import volumes as V
from tests.qc.helpers import exam_for


@pytest.fixture
def large_matrices(monkeypatch):
    specs = dict(V.SPECS)
    specs["ct_upper_abdomen"] = V.SeriesSpec(512, 400, 10.0, -100, 130)
    specs["mr_head"] = V.SeriesSpec(256, 240, 10.0, -70, 100)
    specs["mr_lumbar"] = V.SeriesSpec(288, 290, 6.0, -24, 24, sagittal=True)
    monkeypatch.setattr(V, "SPECS", specs)


def _checks(body_part, defect, severity):
    exam = exam_for(body_part, defect, severity)
    proto = get(body_part)
    result = score(proto, ANALYSES[proto.kind](exam, proto.params))
    return exam, {c.id: c for c in result.checks}


def _inside(box, shape):
    r0, c0, r1, c1 = box
    return 0 <= r0 < r1 <= shape[0] and 0 <= c0 < c1 <= shape[1]


def _covers(box, mask, share=0.9):
    r0, c0, r1, c1 = box
    return mask[r0:r1, c0:c1].sum() >= share * mask.sum() > 0


def test_ct_boxes_are_in_original_pixels(large_matrices):
    exam, checks = _checks("ct_upper_abdomen", "cropped", 3)
    assert exam.pixels.shape[1:] == (512, 512)
    rng = checks["range_covers_liver"]
    assert not rng.passed
    box, z = rng.where["bbox"], rng.where["slice"]
    assert _inside(box, exam.pixels.shape[1:])
    sm = ndi.gaussian_filter(exam.pixels[z], 3)
    liver = ndi.binary_opening((sm >= 52) & (sm <= 80), iterations=3)
    assert _covers(box, liver, 0.8), (box, np.argwhere(liver).min(0), np.argwhere(liver).max(0))
    assert box[2] - box[0] > 64  # a box read on the 128-px mask and not scaled back would be four times smaller

    noise = checks["noise"]  # passes, but still says where the uniform region was read (256 px copy of 512)
    r0, c0, r1, c1 = noise.where["bbox"]
    region = exam.pixels[noise.where["slice"], r0:r1, c0:c1]
    assert _inside(noise.where["bbox"], exam.pixels.shape[1:]) and -60 < float(region.mean()) < 160


def test_mr_boxes_are_in_original_pixels(large_matrices):
    exam, checks = _checks("mr_head", "cropped", 3)
    assert exam.pixels.shape[1:] == (256, 256)
    rng = checks["range_covers_vertex"]
    box, z = rng.where["bbox"], rng.where["slice"]
    assert _inside(box, exam.pixels.shape[1:])
    sl = ndi.gaussian_filter(exam.pixels[z], 1)
    head = ndi.binary_fill_holes(sl > 0.5 * otsu(sl[sl > 0.02 * sl.max()]))
    assert _covers(box, head), (box, np.argwhere(head).min(0), np.argwhere(head).max(0))

    exam, checks = _checks("mr_lumbar", "cropped", 3)
    assert exam.pixels.shape[1:] == (288, 288)
    spine = checks["vertebrae_in_field"]
    r0, c0, r1, c1 = spine.where["bbox"]
    assert _inside(spine.where["bbox"], exam.pixels.shape[1:]) and r1 - r0 > 200
    # the vertebral bodies sit at y = -24..24 mm, the middle columns of the 290 mm field
    centre = (exam.pixels.shape[2] - 1) / 2
    assert c0 < centre + 24 / exam.spacing[2] and c1 > centre - 24 / exam.spacing[2], (c0, c1)
    assert all(0 <= row < exam.pixels.shape[1] for row in spine.where["rows"])
