"""Which hospital an HL7 sending facility (MSH-4) belongs to: ``pipelines/data/his_senders.yaml``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

SENDERS_FILE = Path(__file__).resolve().parents[1] / "data" / "his_senders.yaml"


@dataclass(frozen=True)
class HisSenders:
    by_facility: dict[str, str]

    @classmethod
    def load(cls, path: Path = SENDERS_FILE) -> "HisSenders":
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        mapping: dict[str, str] = {}
        for hospital, entry in (doc.get("hospitals") or {}).items():
            for facility in (entry or {}).get("hl7_facilities", []):
                mapping[str(facility).upper()] = str(hospital)
        return cls(mapping)

    def hospital_of(self, facility: str) -> str | None:
        return self.by_facility.get(facility.strip().upper())
