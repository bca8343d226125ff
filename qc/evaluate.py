"""Evaluate QC on a labelled folder: AUC (clean vs moderate/severe defects) and Spearman (dimension score vs
severity) per body part and dimension, and body-part accuracy."""
from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from qc.protocol import BODY_PARTS, DIMENSIONS


@dataclass
class Scored:
    file: str
    body_part: str  # labelled
    predicted: str | None
    dimensions: dict[str, float]
    measurements: dict[str, float]
    error: str = ""


def read_labels(folder: Path) -> dict[str, dict]:
    """file -> {"body_part": bp, "severity": {dimension: severity}, "defects": {dimension: defect}}"""
    cases: dict[str, dict] = {}
    with open(Path(folder) / "labels.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            c = cases.setdefault(row["file"], {"body_part": row["body_part"], "severity": {}, "defects": {}})
            c["severity"][row["dimension"]] = int(row["severity"])
            c["defects"][row["dimension"]] = row["defect"]
    return cases


def _score_one(args) -> Scored:
    folder, file, bp = args
    from qc.engine import score_path

    try:
        r = score_path(Path(folder) / file)
        meas = {c.measure: c.value for c in r.checks}
        return Scored(file, bp, r.body_part, r.dimensions, meas)
    except Exception as e:  # one unreadable case is reported, never stops the run
        return Scored(file, bp, None, {d: float("nan") for d in DIMENSIONS}, {}, f"{type(e).__name__}: {e}")


def score_folder(folder: Path, workers: int = 1) -> tuple[dict[str, dict], list[Scored]]:
    cases = read_labels(folder)
    jobs = [(str(folder), f, c["body_part"]) for f, c in cases.items()]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            scored = list(pool.map(_score_one, jobs, chunksize=4))
    else:
        scored = [_score_one(j) for j in jobs]
    return cases, scored


def auc(negatives: list[float], positives: list[float]) -> float:
    """Probability that a clean case scores higher than a defective one (ties count half)."""
    if not negatives or not positives:
        return float("nan")
    neg, pos = np.asarray(negatives)[:, None], np.asarray(positives)[None, :]
    return float(((neg > pos).sum() + 0.5 * (neg == pos).sum()) / (neg.size * pos.size))


def metrics(cases: dict[str, dict], scored: list[Scored], min_severity: int = 2) -> tuple[list[dict], float]:
    by_file = {s.file: s for s in scored}
    lines = []
    for bp in BODY_PARTS:
        files = [f for f, c in cases.items() if c["body_part"] == bp]
        if not files:
            continue
        clean = [f for f in files if all(v == 0 for v in cases[f]["severity"].values())]
        for dim in DIMENSIONS:
            neg = [by_file[f].dimensions[dim] for f in clean]
            defective = [f for f in files if cases[f]["severity"].get(dim, 0) > 0]
            pos = [by_file[f].dimensions[dim] for f in defective if cases[f]["severity"][dim] >= min_severity]
            sev = [0] * len(clean) + [cases[f]["severity"][dim] for f in defective]
            val = neg + [by_file[f].dimensions[dim] for f in defective]
            varied = len(set(sev)) > 1 and len(set(val)) > 1
            rho = float(stats.spearmanr(val, sev).statistic) if varied else float("nan")
            lines.append({"body_part": bp, "dimension": dim, "auc": auc(neg, pos), "spearman": rho, "n": len(val)})
    correct = [by_file[f].predicted == c["body_part"] for f, c in cases.items()]
    return lines, float(np.mean(correct)) if correct else float("nan")


def format_lines(lines: list[dict], accuracy: float) -> list[str]:
    out = [f"qc_eval body_part={r['body_part']} dimension={r['dimension']} auc={r['auc']:.3f} "
           f"spearman={r['spearman']:.3f} n={r['n']}" for r in lines]
    out.append(f"qc_eval body_part_accuracy={accuracy:.3f}")
    return out


def defect_table(cases: dict[str, dict], scored: list[Scored]) -> dict:
    """Mean dimension score per (body part, defect, severity): for finding which checks need work."""
    table = defaultdict(list)
    for s in scored:
        c = cases[s.file]
        for dim, sev in c["severity"].items():
            table[(c["body_part"], c["defects"][dim], sev, dim)].append(s.dimensions[dim])
    return {k: float(np.mean(v)) for k, v in sorted(table.items())}
