"""The registry of DICOM peers: calling AE title -> hospital, from the hospital directory
(``schemas/catalogs/hospitals.yaml``, field ``dicom_aes``). Data, not code."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from schemas.hospitals import HOSPITALS_FILE, load_hospitals

DEFAULT_PEERS_FILE = HOSPITALS_FILE
_HOSPITAL = re.compile(r"^[A-Z0-9_-]{2,32}$")


@dataclass(frozen=True)
class PeerRegistry:
    by_ae: dict[str, str] = field(default_factory=dict)  # calling AE title -> hospital code
    names: dict[str, str] = field(default_factory=dict)

    def hospital_of(self, calling_ae: str) -> str | None:
        return self.by_ae.get(calling_ae.strip())

    @classmethod
    def from_mapping(cls, hospitals: dict[str, dict]) -> "PeerRegistry":
        by_ae: dict[str, str] = {}
        names: dict[str, str] = {}
        for code, entry in hospitals.items():
            if not _HOSPITAL.match(code):
                raise ValueError(f"hospital code {code!r} must be 2-32 of A-Z 0-9 _ -")
            names[code] = entry.get("name", code)
            for ae in entry.get("calling_aes", []):
                ae = ae.strip()
                if not 0 < len(ae) <= 16:
                    raise ValueError(f"AE title {ae!r} of {code} must be 1-16 characters")
                if by_ae.get(ae, code) != code:
                    raise ValueError(f"AE title {ae} is listed for both {by_ae[ae]} and {code}")
                by_ae[ae] = code
        return cls(by_ae, names)

    @classmethod
    def load(cls, path: Path = DEFAULT_PEERS_FILE) -> "PeerRegistry":
        directory = load_hospitals(Path(path))
        return cls.from_mapping({h.code: {"name": h.name, "calling_aes": list(h.dicom_aes)}
                                 for h in directory.hospitals.values()})
