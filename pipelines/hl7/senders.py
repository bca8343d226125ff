"""Which hospital an HL7 sending facility (MSH-4) belongs to, from the hospital directory
(``schemas/catalogs/hospitals.yaml``, field ``hl7_facilities``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from schemas.hospitals import HOSPITALS_FILE, load_hospitals

SENDERS_FILE = HOSPITALS_FILE


@dataclass(frozen=True)
class HisSenders:
    by_facility: dict[str, str]

    @classmethod
    def load(cls, path: Path = SENDERS_FILE) -> "HisSenders":
        directory = load_hospitals(Path(path))
        return cls({facility: h.code for h in directory.hospitals.values() for facility in h.hl7_facilities})

    def hospital_of(self, facility: str) -> str | None:
        return self.by_facility.get(facility.strip().upper())
