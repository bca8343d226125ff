"""QC protocols: versioned data files in qc/protocols/, loaded and validated here."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

PROTOCOL_DIR = Path(__file__).parent / "protocols"
DIMENSIONS = ("coverage", "positioning", "artefact", "clarity")
DIMENSION_LABELS = {"coverage": "检查范围", "positioning": "摄片体位", "artefact": "伪影", "clarity": "清晰度"}
GRADE_ORDER = ("甲", "乙", "丙")
REJECT_GRADE = "废片"
BODY_PARTS = ("chest_pa", "abdomen_erect", "lumbar_ap", "lumbar_lat", "knee_ap", "knee_lat", "ct_head", "ct_chest",
              "ct_upper_abdomen", "mr_head", "mr_lumbar", "mr_upper_abdomen")
KINDS = {"radiograph", "ct", "mr"}


class ProtocolError(ValueError):
    pass


@dataclass(frozen=True)
class Check:
    id: str
    dimension: str
    measure: str
    label: str
    direction: str  # "max": value must stay at or below pass; "min": at or above
    pass_: float
    fail: float
    weight: float
    source: str = ""  # where this check's threshold comes from, when it differs from the protocol's source


@dataclass(frozen=True)
class Protocol:
    id: str
    version: str
    title: str
    kind: str
    modality: tuple[str, ...]
    source: str
    tags: dict
    params: dict  # anatomy / organ settings for the analysis
    dimension_weights: dict[str, float]
    grades: dict[str, float]
    reject_below: float
    checks: tuple[Check, ...]


def _require(doc: dict, key: str, where: str):
    if key not in doc:
        raise ProtocolError(f"{where}: missing '{key}'")
    return doc[key]


def parse(doc: dict, where: str = "protocol") -> Protocol:
    pid = _require(doc, "id", where)
    kind = _require(doc, "kind", where)
    if kind not in KINDS:
        raise ProtocolError(f"{where}: kind '{kind}' not in {sorted(KINDS)}")
    weights = _require(doc, "dimension_weights", where)
    if set(weights) != set(DIMENSIONS) or abs(sum(weights.values()) - 1) > 1e-6:
        raise ProtocolError(f"{where}: dimension_weights must name {DIMENSIONS} and sum to 1")
    grades = _require(doc, "grades", where)
    cuts = list(grades.values())
    if list(grades) != list(GRADE_ORDER) or not all(a > b for a, b in zip(cuts, cuts[1:])):
        raise ProtocolError(f"{where}: grades must be 甲 > 乙 > 丙 cut-offs, in that order")
    checks = []
    for i, c in enumerate(_require(doc, "checks", where)):
        cw = f"{where} check {i}"
        check = Check(_require(c, "id", cw), _require(c, "dimension", cw), _require(c, "measure", cw),
                      _require(c, "label", cw), _require(c, "direction", cw), float(_require(c, "pass", cw)),
                      float(_require(c, "fail", cw)), float(c.get("weight", 1.0)), str(c.get("source", "")))
        if check.dimension not in DIMENSIONS:
            raise ProtocolError(f"{cw}: dimension '{check.dimension}' not in {DIMENSIONS}")
        if check.direction not in ("max", "min"):
            raise ProtocolError(f"{cw}: direction must be 'max' or 'min'")
        wrong_side = check.fail <= check.pass_ if check.direction == "max" else check.fail >= check.pass_
        if wrong_side:
            raise ProtocolError(f"{cw}: 'fail' must lie beyond 'pass' in the check's direction")
        checks.append(check)
    missing = set(DIMENSIONS) - {c.dimension for c in checks}
    if missing:
        raise ProtocolError(f"{where}: no check feeds {sorted(missing)}")
    if len({c.id for c in checks}) != len(checks):
        raise ProtocolError(f"{where}: duplicate check ids")
    if not str(_require(doc, "source", where)).strip():
        raise ProtocolError(f"{where}: empty source")
    return Protocol(pid, str(_require(doc, "version", where)), _require(doc, "title", where), kind,
                    tuple(_require(doc, "modality", where)), doc["source"], _require(doc, "tags", where),
                    doc.get("anatomy") or doc.get("organ") or {}, weights, grades,
                    float(doc.get("reject_if_any_dimension_below", 0)), tuple(checks))


@lru_cache(maxsize=4)
def load_all(folder: Path | None = None) -> dict[str, Protocol]:
    """The protocols in ``folder``, else in ``WANYING_QC_PROTOCOL_DIR`` (an operator's edited set), else the
    packaged ones."""
    folder = folder or os.environ.get("WANYING_QC_PROTOCOL_DIR") or PROTOCOL_DIR
    out = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        proto = parse(yaml.safe_load(path.read_text(encoding="utf-8")), path.name)
        if proto.id != path.stem:
            raise ProtocolError(f"{path.name}: id '{proto.id}' differs from the file name")
        out[proto.id] = proto
    return out


def get(protocol_id: str) -> Protocol:
    protocols = load_all()
    if protocol_id not in protocols:
        raise ProtocolError(f"unknown protocol '{protocol_id}'; known: {sorted(protocols)}")
    return protocols[protocol_id]
