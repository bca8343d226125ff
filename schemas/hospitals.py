"""The hospital directory (``schemas/catalogs/hospitals.yaml``): code, name, city, level, medical alliances."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from schemas.types import HOSPITAL_CODE_PATTERN

HOSPITALS_FILE = Path(__file__).resolve().parent / "catalogs" / "hospitals.yaml"
LEVELS = ("三级甲等", "三级乙等", "三级", "二级甲等", "二级乙等", "二级", "一级")


@dataclass(frozen=True)
class Hospital:
    code: str
    name: str
    city: str
    level: str
    alliances: frozenset[str]
    dicom_aes: tuple[str, ...] = ()
    hl7_facilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class HospitalDirectory:
    version: str
    hospitals: dict[str, Hospital]

    def get(self, code: str) -> Hospital | None:
        return self.hospitals.get(code)

    def name(self, code: str) -> str:
        hospital = self.hospitals.get(code)
        return hospital.name if hospital else code


def load_hospitals(path: Path = HOSPITALS_FILE) -> HospitalDirectory:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: dict[str, Hospital] = {}
    for raw in doc["hospitals"]:
        code = str(raw["code"])
        where = f"{path}: hospital {code}"
        if not re.fullmatch(HOSPITAL_CODE_PATTERN, code):
            raise ValueError(f"{where}: code must match {HOSPITAL_CODE_PATTERN}")
        if code in out:
            raise ValueError(f"{where} appears twice")
        if raw.get("level") not in LEVELS:
            raise ValueError(f"{where}: level {raw.get('level')!r} is not one of {', '.join(LEVELS)}")
        aes = tuple(str(ae).strip() for ae in raw.get("dicom_aes") or ())
        if any(not 0 < len(ae) <= 16 for ae in aes):
            raise ValueError(f"{where}: a DICOM AE title must have 1-16 characters")
        out[code] = Hospital(code, str(raw["name"]), str(raw.get("city") or ""), raw["level"],
                             frozenset(raw.get("alliances") or ()), aes,
                             tuple(str(f).strip().upper() for f in raw.get("hl7_facilities") or ()))
    return HospitalDirectory(str(doc["version"]), out)


@lru_cache(maxsize=1)
def default_hospitals() -> HospitalDirectory:
    return load_hospitals()
