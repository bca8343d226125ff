"""Scores of the marker against a labelled set of reports (gold spans with offsets and flags)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from interpret.marking import Marker


@dataclass
class Scores:
    """Spans match when they overlap (one gold span to one predicted span): annotators and the glossary may
    draw the edge of a term differently ("双肺纹理增多"). strict_matched counts identical offsets only."""

    n_reports: int = 0
    gold: int = 0
    predicted: int = 0
    matched: int = 0
    strict_matched: int = 0
    negation_agree: int = 0
    uncertainty_agree: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.matched / self.gold if self.gold else 0.0

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 0.0

    @property
    def strict_recall(self) -> float:
        return self.strict_matched / self.gold if self.gold else 0.0

    @property
    def strict_precision(self) -> float:
        return self.strict_matched / self.predicted if self.predicted else 0.0

    @property
    def negation_accuracy(self) -> float:
        return self.negation_agree / self.matched if self.matched else 0.0

    @property
    def uncertainty_accuracy(self) -> float:
        return self.uncertainty_agree / self.matched if self.matched else 0.0


def load_reports(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _pair(gold: list[dict], predicted: list) -> list[tuple[dict, object | None]]:
    """Each gold span with the first unused predicted span that overlaps it (or None)."""
    used: set[int] = set()
    pairs = []
    for g in gold:
        hit = None
        for index, span in enumerate(predicted):
            if index not in used and span.start < g["end"] and g["start"] < span.end:
                hit = index
                break
        if hit is not None:
            used.add(hit)
        pairs.append((g, predicted[hit] if hit is not None else None))
    return pairs


def evaluate(marker: Marker, reports: list[dict]) -> Scores:
    scores = Scores()
    for report in reports:
        scores.n_reports += 1
        text = report["text"]
        predicted = marker.mark(text)
        scores.gold += len(report["spans"])
        scores.predicted += len(predicted)
        pairs = _pair(report["spans"], predicted)
        for g, span in pairs:
            if span is None:
                scores.errors.append(f"{report['id']} missed {g['term']!r} at {g['start']}")
                continue
            scores.matched += 1
            scores.strict_matched += (span.start, span.end) == (g["start"], g["end"])
            scores.negation_agree += span.negated == g["negated"]
            scores.uncertainty_agree += span.uncertain == g["uncertain"]
            if span.negated != g["negated"] or span.uncertain != g["uncertain"]:
                scores.errors.append(
                    f"{report['id']} {g['term']!r}: negated {span.negated}/{g['negated']}"
                    f" uncertain {span.uncertain}/{g['uncertain']} in {text[max(0, g['start'] - 12):g['end'] + 8]!r}"
                )
        paired = {id(span) for _, span in pairs if span is not None}
        for span in predicted:
            if id(span) not in paired:
                scores.errors.append(f"{report['id']} extra {span.term!r} at {span.start}")
    return scores
