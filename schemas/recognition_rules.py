"""Mutual-recognition rules (``schemas/catalogs/recognition_rules.yaml``): versions in force from a date, validity
windows, hospital levels, QC grades, report statuses, exceptions and refusal reasons. Plain data and pure checks."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from schemas.hospitals import Hospital

RULES_FILE = Path(__file__).resolve().parent / "catalogs" / "recognition_rules.yaml"
EFFECTS = ("skip", "window_days")


@dataclass(frozen=True)
class Reason:
    code: str
    name: str
    needs_text: bool
    list: str  # "national" or "local"


@dataclass(frozen=True)
class RuleException:
    code: str
    name: str
    effect: str
    source: str
    patient_class: str | None = None
    max_age_years: int | None = None
    days: int | None = None

    def applies(self, patient_class: str | None, age_years: int | None) -> bool:
        if self.patient_class is not None:
            return patient_class == self.patient_class
        if self.max_age_years is not None:
            return age_years is not None and age_years < self.max_age_years
        return False


@dataclass(frozen=True)
class RuleVersion:
    version: str
    effective_from: date
    source: str
    default_days: int
    by_modality: dict[str, int]
    by_body_part: dict[str, int]  # "MODALITY-BODYPART" -> days
    by_item: dict[str, int]
    same_level_and_upward: bool
    alliance_any_level: bool
    grades_accepted: tuple[str, ...]
    unscored_accepted: bool
    statuses_accepted: tuple[str, ...]
    exceptions: tuple[RuleException, ...]
    tiers: dict[str, int]

    def window_days(self, item: str, patient_class: str | None = None, age_years: int | None = None) -> int:
        """Days an earlier result of ``item`` stays valid: day 0 is the day it was taken, day N is the last day."""
        for exc in self.exceptions:
            if exc.effect == "window_days" and exc.applies(patient_class, age_years):
                return int(exc.days or 0)
        if item in self.by_item:
            return self.by_item[item]
        modality, _, rest = item.partition("-")
        body_part = rest.split("-")[0] if rest else ""
        if f"{modality}-{body_part}" in self.by_body_part:
            return self.by_body_part[f"{modality}-{body_part}"]
        return self.by_modality.get(modality, self.default_days)

    def skipped_by(self, patient_class: str | None, age_years: int | None) -> RuleException | None:
        """The exception under which no duplicate check is run for this order, if any."""
        return next((e for e in self.exceptions if e.effect == "skip" and e.applies(patient_class, age_years)), None)

    def level_accepted(self, producer: Hospital | None, orderer: Hospital | None) -> bool:
        """Whether ``orderer`` accepts a result made at ``producer`` (same hospital always does)."""
        if producer is not None and orderer is not None and producer.code == orderer.code:
            return True
        if producer is None or orderer is None:
            return False  # a hospital missing from the directory: its level cannot be checked
        if self.alliance_any_level and producer.alliances & orderer.alliances:
            return True
        if self.same_level_and_upward:
            return self.tiers.get(producer.level, 0) >= self.tiers.get(orderer.level, 99)
        return True

    def qc_accepted(self, grade: str | None) -> bool:
        return self.unscored_accepted if grade is None else grade in self.grades_accepted

    def report_accepted(self, status: str) -> bool:
        return status in self.statuses_accepted


@dataclass(frozen=True)
class RuleSet:
    versions: tuple[RuleVersion, ...]  # sorted by effective_from
    reasons: dict[str, Reason]
    reasons_source: str

    def at(self, day: date) -> RuleVersion | None:
        """The version in force on ``day`` (a local date), or ``None`` before the first one."""
        current = None
        for v in self.versions:
            if v.effective_from <= day:
                current = v
        return current

    def decision_problem(self, decision: str, reason_code: str | None, reason_text: str | None) -> str | None:
        """Why a recognition decision is invalid, or ``None`` when it is valid."""
        if decision == "accepted":
            return "an accepted result takes no reason code" if reason_code else None
        if decision != "declined":
            return f"decision must be 'accepted' or 'declined', not {decision!r}"
        if not reason_code:
            return "declining needs a reason_code: one of " + ", ".join(self.reasons)
        reason = self.reasons.get(reason_code)
        if reason is None:
            return f"unknown reason_code {reason_code!r}; use one of " + ", ".join(self.reasons)
        if reason.needs_text and not (reason_text or "").strip():
            return f"reason {reason_code!r} ({reason.name}) needs reason_text saying why"
        return None


def _version(raw: dict[str, Any], tiers: dict[str, int], where: str) -> RuleVersion:
    for field in ("version", "effective_from", "source", "windows"):
        if field not in raw:
            raise ValueError(f"{where}: missing {field}")
    w, level, qc, report = raw["windows"], raw.get("hospital_level", {}), raw.get("qc", {}), raw.get("report", {})
    exceptions = []
    for e in raw.get("exceptions") or ():
        if e.get("effect") not in EFFECTS:
            raise ValueError(f"{where}: exception {e.get('code')} has effect {e.get('effect')!r}, not one of {EFFECTS}")
        if not e.get("source"):
            raise ValueError(f"{where}: exception {e.get('code')} has no source")
        exceptions.append(RuleException(e["code"], e.get("name", e["code"]), e["effect"], e["source"],
                                        e.get("patient_class"),
                                     e.get("max_age_years"), e.get("days")))
    effective = raw["effective_from"]
    if not isinstance(effective, date):
        effective = date.fromisoformat(str(effective))
    return RuleVersion(
        version=str(raw["version"]), effective_from=effective, source=str(raw["source"]),
        default_days=int(w["default_days"]), by_modality={k: int(v) for k, v in (w.get("by_modality") or {}).items()},
        by_body_part={k: int(v) for k, v in (w.get("by_body_part") or {}).items()},
        by_item={k: int(v) for k, v in (w.get("by_item") or {}).items()},
        same_level_and_upward=bool(level.get("same_level_and_upward", True)),
        alliance_any_level=bool(level.get("alliance_any_level", True)),
        grades_accepted=tuple(qc.get("grades_accepted") or ("甲", "乙")),
        unscored_accepted=qc.get("unscored", "accept") == "accept",
        statuses_accepted=tuple(report.get("statuses_accepted") or ("final", "amended")),
        exceptions=tuple(exceptions), tiers=tiers,
    )


def load_rules(path: Path = RULES_FILE) -> RuleSet:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    tiers = {k: int(v) for k, v in doc["hospital_levels"]["tiers"].items()}
    versions = sorted((_version(v, tiers, f"{path}: version {v.get('version')}") for v in doc["versions"]),
                      key=lambda v: v.effective_from)
    if len({v.version for v in versions}) != len(versions):
        raise ValueError(f"{path}: two rule versions share a name")
    reasons: dict[str, Reason] = {}
    for list_name in ("national", "local"):
        for r in doc["reasons"][list_name]:
            if r["code"] in reasons:
                raise ValueError(f"{path}: reason {r['code']} appears twice")
            reasons[r["code"]] = Reason(r["code"], r["name"], bool(r.get("needs_text")), list_name)
    return RuleSet(tuple(versions), reasons, str(doc["reasons"].get("source", "")))


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    return load_rules()
