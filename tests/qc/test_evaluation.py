"""A small labelled set through the real CLI: generate, evaluate, score."""
import csv
import json
import re

import pytest
from typer.testing import CliRunner

from qc.cli import app
from qc.evaluate import auc
from qc.protocol import DIMENSIONS
from qc.synth.generate import generate

BODY_PARTS = ["chest_pa", "knee_ap", "ct_head", "mr_head"]
LINE = re.compile(r"^qc_eval body_part=(\w+) dimension=(\w+) auc=([\d.]+|nan) spearman=(-?[\d.]+|nan) n=(\d+)$")


def test_auc_counts_ties_half_and_orders_clean_above_defective():
    assert auc([100, 100], [50, 60]) == 1.0
    assert auc([100], [100]) == 0.5
    assert auc([40], [90]) == 0.0


@pytest.mark.slow
def test_small_evaluation_prints_every_line_and_meets_floors(tmp_path):
    generate(tmp_path, seed=11, per_class=1, body_parts=BODY_PARTS, real=False, workers=2)
    with open(tmp_path / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file", "body_part", "dimension", "defect", "severity"]
    clean = [r for r in rows if r["defect"] == "none"]
    assert len(clean) % 4 == 0 and {r["dimension"] for r in clean} == set(DIMENSIONS)

    out = CliRunner().invoke(app, ["evaluate", str(tmp_path), "--workers", "2"])
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    print("\n".join(lines))
    parsed = [LINE.match(line) for line in lines[:-1]]
    assert all(parsed), lines
    assert {(m[1], m[2]) for m in parsed} == {(bp, d) for bp in BODY_PARTS for d in DIMENSIONS}
    for m in parsed:
        assert float(m[3]) >= 0.8, m[0]
        assert float(m[4]) <= -0.3, m[0]  # the dimension score falls as severity rises
    accuracy = float(lines[-1].split("=")[1])
    assert lines[-1].startswith("qc_eval body_part_accuracy=") and accuracy >= 0.9

    # the explained score of one defective case, as JSON
    file = next(r["file"] for r in rows if r["defect"] == "tilt" and r["severity"] == "3")
    out = CliRunner().invoke(app, ["score", str(tmp_path / file)])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert "tilt" in result["failed"] and result["dimensions"]["positioning"] < 50
