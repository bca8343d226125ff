from qc.protocol import get
from qc.scoring import Measurement, check_score, score


def _clean_measurements():
    return {"anatomy_edge_contact": Measurement(0.0), "body_part_agreement": Measurement(1.0),
            "tilt_deg": Measurement(1.0), "ghost_ratio": Measurement(0.05), "metal_fraction": Measurement(0.0),
            "sharpness_ratio": Measurement(1.7), "noise_ratio": Measurement(0.01),
            "clipped_fraction": Measurement(0.0), "dynamic_range": Measurement(0.6)}


def test_check_score_is_a_ramp_between_pass_and_fail():
    tilt = next(c for c in get("chest_pa").checks if c.id == "tilt")
    assert check_score(tilt, tilt.pass_) == 100
    assert check_score(tilt, tilt.fail) == 0
    mid = check_score(tilt, (tilt.pass_ + tilt.fail) / 2)
    assert 45 < mid < 55


def test_a_failed_check_is_explained_with_value_threshold_and_place():
    m = _clean_measurements()
    m["anatomy_edge_contact"] = Measurement(0.3, {"edge": "bottom", "from_px": 40, "to_px": 200})
    result = score(get("chest_pa"), m)
    assert result.grade != "甲"
    failed = result.failed
    assert [c.id for c in failed] == ["lung_fields_in_field"]
    c = failed[0]
    assert c.value == 0.3 and c.threshold == 0.01 and c.where["edge"] == "bottom"
    assert "0.3" in c.explanation and "0.01" in c.explanation and "bottom" in c.explanation
    assert result.dimensions["coverage"] < 50 and result.dimensions["clarity"] == 100
    d = result.to_dict()
    assert d["failed"] == ["lung_fields_in_field"] and d["protocol_version"] == get("chest_pa").version


def test_clean_measurements_grade_top_and_a_ruined_dimension_rejects():
    assert score(get("chest_pa"), _clean_measurements()).grade == "甲"
    m = _clean_measurements()
    m["sharpness_ratio"] = Measurement(1.0)
    m["noise_ratio"] = Measurement(0.2)
    m["dynamic_range"] = Measurement(0.05)
    assert score(get("chest_pa"), m).grade == "废片"


def test_unmeasurable_check_is_neutral_and_says_so():
    m = _clean_measurements()
    del m["body_part_agreement"]
    result = score(get("chest_pa"), m)
    c = next(c for c in result.checks if c.id == "body_part_matches_tags")
    assert c.passed and c.value is None and c.explanation == "not measured"


def test_a_landmark_not_found_is_neutral_and_says_why():
    m = _clean_measurements()
    m["posterior_ribs"] = Measurement(float("nan"), note="not read: diaphragm dome not clear")
    c = next(c for c in score(get("chest_pa"), m).checks if c.id == "inspiration")
    assert c.passed and c.value is None and "diaphragm dome not clear" in c.explanation
