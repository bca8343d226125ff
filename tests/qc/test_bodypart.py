"""Body part from tags first: a sagittal head MR is a head (the demo world's, tags and image agree), while a
sagittal spine tagged as a head is still recognised by the image."""
import numpy as np
import pytest

from qc import bodypart
from qc.exam import Exam, discover, load_paths
from qc.synth import generate as G
from qc.synth import volumes as V
from tests.qc.helpers import exam_for


@pytest.fixture(scope="module")
def demo_mr_head(tmp_path_factory):
    from wanying.demo.dicom_writer import study_folder, write_study
    from wanying.demo.world import build_world

    out = tmp_path_factory.mktemp("demo-mr")
    world = build_world(scale=0.05)
    visit, order, study = next((v, o, s) for v, o, s in world.studies() if o.item_key == "MR_HEAD")
    write_study(out, world.seed, world.hospital(visit.hospital), world.patient(visit.patient_key), visit, order)
    return [load_paths(paths) for paths in discover(study_folder(out, visit.hospital, study))]


def test_demo_sagittal_head_mr_is_a_head(demo_mr_head):
    planes = {}
    for exam in demo_mr_head:
        decision = bodypart.decide(exam)
        planes[exam.tags["SeriesDescription"]] = decision
        assert decision.body_part == "mr_head" and decision.source == "tags", (exam.tags, decision)
    assert any("SAG" in d for d in planes) and any("TRA" in d for d in planes)


def _sagittal_head(tags: dict) -> Exam:
    rng = np.random.default_rng(5)
    grid = V.Grid((12, 128, 128), (5.0, 240 / 128, 240 / 128), -30.0, sagittal=True)
    vol = V.Volume(grid, V._t("air", True))
    V.head(vol, True, rng)
    sig = V.finish_mr(vol.v, rng, 0.012)
    return Exam("MR", sig, grid.spacing, {"Modality": "MR", "ImageOrientationPatient": "0,1,0,0,0,-1", **tags},
                positions=list(grid.slice_positions))


def test_untagged_sagittal_head_is_read_as_a_head_and_a_spine_as_a_spine():
    decision = bodypart.decide(_sagittal_head({}))
    assert decision.body_part == "mr_head" and decision.source == "image"
    spine = exam_for("mr_lumbar")
    spine.tags.update({"BodyPartExamined": "HEAD", "StudyDescription": "头颅 MR 平扫"})
    decision = bodypart.decide(spine)
    assert decision.body_part == "mr_lumbar" and decision.tag_guess == "mr_head"


def test_axial_trunk_wider_than_the_field_does_not_overrule_spine_tags():
    exam = exam_for("mr_upper_abdomen")
    exam.pixels = exam.pixels[:, :, 24:-24]  # a 250 mm field on a 320 mm trunk (as an axial L4/5 slice)
    exam.tags.update({"BodyPartExamined": "LSPINE", "StudyDescription": "腰椎MRI平扫"})
    decision = bodypart.decide(exam)
    assert decision.body_part == "mr_lumbar", decision


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_abdomen_film_tagged_consistently_as_lumbar_ap_is_still_an_abdomen(seed):
    """Flanks in the field alone do not overrule consistent lumbar tags (the demo's lumbar AP shows its flanks);
    the lung bases over the domes do."""
    exam = exam_for("abdomen_erect", seed=seed)
    exam.tags.update(G.tags_for("lumbar_ap"))
    assert bodypart.consistent(exam, "lumbar_ap")
    decision = bodypart.decide(exam)
    assert decision.body_part == "abdomen_erect" and decision.source == "image (tags contradicted)", decision
