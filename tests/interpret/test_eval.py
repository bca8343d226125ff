"""Marker quality on the labelled report set (written by the project, with gold spans)."""
from collections import Counter
from pathlib import Path

from interpret.evaluation import evaluate, load_reports
from interpret.marking import default_marker

REPORTS = Path(__file__).parent / "data" / "reports.jsonl"


def test_labelled_set_covers_every_modality():
    reports = load_reports(REPORTS)
    assert len(reports) >= 50
    modalities = Counter(r["modality"] for r in reports)
    assert {"CT", "MR", "US"} <= set(modalities) and modalities["DR"] + modalities["CR"] >= 5
    spans = [s for r in reports for s in r["spans"]]
    assert sum(s["negated"] for s in spans) >= 30 and sum(s["uncertain"] for s in spans) >= 30
    for report in reports:
        for span in report["spans"]:
            assert report["text"][span["start"]:span["end"]] == span["term"], (report["id"], span)


def test_marker_recall_precision_negation():
    scores = evaluate(default_marker(), load_reports(REPORTS))
    print(f"\ninterpret_eval recall={scores.recall:.3f} precision={scores.precision:.3f} "
          f"negation_accuracy={scores.negation_accuracy:.3f} n_reports={scores.n_reports}")
    print(f"interpret_eval_detail strict_recall={scores.strict_recall:.3f} "
          f"strict_precision={scores.strict_precision:.3f} uncertainty_accuracy={scores.uncertainty_accuracy:.3f} "
          f"gold_spans={scores.gold}")
    for error in scores.errors:
        print("  ", error)
    assert scores.recall >= 0.95
    assert scores.negation_accuracy >= 0.95
    assert scores.uncertainty_accuracy >= 0.90
    assert scores.precision >= 0.85
    assert scores.strict_recall >= 0.85
