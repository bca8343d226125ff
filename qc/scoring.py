"""Turn measurements into check results, dimension scores, a total and a grade, each failure explained."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from qc.protocol import DIMENSION_LABELS, DIMENSIONS, REJECT_GRADE, Check, Protocol


@dataclass
class Measurement:
    value: float
    where: dict | None = None  # e.g. {"bbox": [r0, c0, r1, c1]} in pixels, {"slice": 12}, {"edge": "bottom"}
    note: str = ""


@dataclass
class CheckResult:
    id: str
    label: str
    dimension: str
    measure: str
    value: float | None
    threshold: float
    fail_at: float
    direction: str
    score: float
    passed: bool
    where: dict | None = None
    explanation: str = ""


@dataclass
class QCResult:
    protocol: str
    protocol_version: str
    body_part: str
    body_part_source: str
    dimensions: dict[str, float]
    total: float
    grade: str
    checks: list[CheckResult] = field(default_factory=list)
    data_checks: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["failed"] = [c["id"] for c in d["checks"] if not c["passed"]]
        return d


def check_score(check: Check, value: float) -> float:
    """100 at or inside the pass threshold, 0 at or beyond the fail limit, linear in between."""
    if check.direction == "max":
        frac = (value - check.pass_) / (check.fail - check.pass_)
    else:
        frac = (check.pass_ - value) / (check.pass_ - check.fail)
    return float(100 * min(1.0, max(0.0, 1 - frac)))


def _explain(check: Check, m: Measurement) -> str:
    op = "≤" if check.direction == "max" else "≥"
    where = f" at {m.where}" if m.where else ""
    note = f" ({m.note})" if m.note else ""
    return (f"{check.label}: measured {m.value:.4g}, required {op} {check.pass_:g} "
            f"(0 points at {check.fail:g}){where}{note}")


def score(protocol: Protocol, measurements: dict[str, Measurement], body_part_source: str = "tags") -> QCResult:
    results = []
    for check in protocol.checks:
        m = measurements.get(check.measure)
        if m is None or m.value != m.value:  # not measurable here: neutral, and said so
            results.append(CheckResult(check.id, check.label, check.dimension, check.measure, None, check.pass_,
                                       check.fail, check.direction, 100.0, True, None,
                                       f"not measured ({m.note})" if m is not None and m.note else "not measured"))
            continue
        s = check_score(check, m.value)
        passed = (m.value <= check.pass_) if check.direction == "max" else (m.value >= check.pass_)
        results.append(CheckResult(check.id, check.label, check.dimension, check.measure, float(m.value), check.pass_,
                                   check.fail, check.direction, round(s, 2), bool(passed), m.where,
                                   "" if passed else _explain(check, m)))
    dims = {}
    for dim in DIMENSIONS:
        rs = [(r, c.weight) for r, c in zip(results, protocol.checks) if c.dimension == dim]
        mean = sum(r.score * w for r, w in rs) / sum(w for _, w in rs)
        worst = min(r.score for r, _ in rs)
        # the worst check dominates (one severe fault spoils the dimension), the mean keeps the score graded
        dims[dim] = round(0.5 * worst + 0.5 * mean, 2)
    total = round(sum(protocol.dimension_weights[d] * dims[d] for d in DIMENSIONS), 2)
    grade = REJECT_GRADE
    for name, cut in protocol.grades.items():
        if total >= cut:
            grade = name
            break
    if min(dims.values()) < protocol.reject_below:
        grade = REJECT_GRADE
    return QCResult(protocol.id, protocol.version, protocol.id, body_part_source, dims, total, grade, results)


def summary_zh(result: QCResult) -> str:
    parts = [f"{DIMENSION_LABELS[d]} {result.dimensions[d]:.0f}" for d in DIMENSIONS]
    return f"{result.protocol} v{result.protocol_version}: 总分 {result.total:.0f}，等级 {result.grade}（{'，'.join(parts)}）"
