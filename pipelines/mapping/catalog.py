"""The standard exam-item catalog (``schemas/catalogs/exam_items.yaml``), loaded into plain data."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

CATALOG_FILE = Path(__file__).resolve().parents[2] / "schemas" / "catalogs" / "exam_items.yaml"


@dataclass(frozen=True)
class BodyPart:
    code: str
    name: str
    synonyms: tuple[str, ...]
    paired: bool
    dr_default_view: str | None = None


@dataclass(frozen=True)
class ExamItem:
    code: str
    name: str
    modality: str
    body_part: str
    contrast: str | None
    laterality: str | None
    view: str | None
    qc_body_part: str | None
    source: str
    default: bool


@dataclass(frozen=True)
class Catalog:
    version: str
    body_parts: dict[str, BodyPart]
    items: dict[str, ExamItem]

    def find(self, modality: str, body_part: str, contrast: str | None, laterality: str | None,
             view: str | None) -> ExamItem | None:
        for item in self.items.values():
            if (item.modality, item.body_part, item.contrast, item.laterality, item.view) == (
                    modality, body_part, contrast, laterality, view):
                return item
        return None

    def has_laterality(self, modality: str, body_part: str, laterality: str) -> bool:
        return any(i.modality == modality and i.body_part == body_part and i.laterality == laterality
                   for i in self.items.values())


def load_catalog(path: Path = CATALOG_FILE) -> Catalog:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    parts = {
        b["code"]: BodyPart(b["code"], b["name"], tuple(b["synonyms"]), bool(b["paired"]), b.get("dr_default_view"))
        for b in doc["body_parts"]
    }
    items: dict[str, ExamItem] = {}
    for raw in doc["items"]:
        if raw["code"] in items:
            raise ValueError(f"{path}: item code {raw['code']} appears twice")
        if raw["body_part"] not in parts:
            raise ValueError(f"{path}: item {raw['code']} names unknown body part {raw['body_part']}")
        if not raw.get("source"):
            raise ValueError(f"{path}: item {raw['code']} has no source")
        items[raw["code"]] = ExamItem(
            code=raw["code"], name=raw["name"], modality=raw["modality"], body_part=raw["body_part"],
            contrast=raw.get("contrast"), laterality=raw.get("laterality"), view=raw.get("view"),
            qc_body_part=raw.get("qc_body_part"), source=raw["source"], default=bool(raw.get("default")),
        )
    return Catalog(version=str(doc["version"]), body_parts=parts, items=items)


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    return load_catalog()
