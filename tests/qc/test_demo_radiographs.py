"""Every radiograph of the demo world (a small scale that still holds all five film kinds) is scored with the
protocol its tags name, and a normal chest PA of the demo grades 甲 with its rotation and inspiration read."""
import pytest

from qc import bodypart
from qc.engine import score_exam
from qc.exam import load_paths
from wanying.demo.dicom_writer import write_study
from wanying.demo.world import build_world

SCALE = 0.3
PROTOCOL_OF_KIND = {"xr_chest_pa": "chest_pa", "xr_knee_ap": "knee_ap", "xr_knee_lat": "knee_lat",
                    "xr_lspine_ap": "lumbar_ap", "xr_lspine_lat": "lumbar_lat"}


@pytest.fixture(scope="module")
def films(tmp_path_factory):
    """(series kind, study finding, exam) of every radiograph instance in the demo world."""
    out = tmp_path_factory.mktemp("demo-films")
    world = build_world(scale=SCALE)
    found = []
    for visit, order, study in world.studies():
        if not any(s.template.plane == "projection" for s in study.series):
            continue
        stored = write_study(out, world.seed, world.hospital(visit.hospital), world.patient(visit.patient_key),
                             visit, order)
        kind_of = {s.uid: s.template.kind for s in study.series}
        for f in stored.files:
            found.append((kind_of[f.series_uid], study.finding, load_paths([out / f.path])))
    return found


def test_the_small_demo_holds_every_film_kind(films):
    assert {kind for kind, _, _ in films} == set(PROTOCOL_OF_KIND)


def test_every_demo_film_is_scored_with_the_protocol_its_tags_name(films):
    wrong = []
    for kind, _finding, exam in films:
        named = bodypart.from_tags(exam)
        assert named == [PROTOCOL_OF_KIND[kind]], (kind, exam.tags)
        result = score_exam(exam)
        if result.protocol != named[0]:
            wrong.append((kind, exam.tags.get("SeriesDescription"), result.protocol, result.body_part_source))
    assert not wrong, wrong


def test_a_normal_demo_chest_pa_grades_jia_with_rotation_and_inspiration_read(films):
    chests = [exam for kind, finding, exam in films if kind == "xr_chest_pa" and finding == "normal"]
    assert chests
    for exam in chests:
        result = score_exam(exam).to_dict()
        checks = {c["id"]: c for c in result["checks"]}
        assert checks["inspiration"]["value"] >= 9, checks["inspiration"]  # about ten posterior ribs
        assert checks["rotation"]["value"] is not None and checks["rotation"]["value"] < 0.15, checks["rotation"]
        assert result["grade"] == "甲", (result["total"], result["failed"])
