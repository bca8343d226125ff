"""Ranked suggestions for a local item name that could not be mapped on its own."""
from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

from pipelines.mapping.catalog import Catalog, ExamItem
from pipelines.mapping.parse import NameParser, normalize

# How much each agreement counts; the fuzzy text similarity takes the rest.
WEIGHTS = {"modality": 0.30, "body_part": 0.30, "contrast": 0.08, "laterality": 0.08, "view": 0.06, "text": 0.18}


@dataclass(frozen=True)
class Suggestion:
    code: str
    name: str
    score: float
    why: str


def _attribute_score(item: ExamItem, target) -> tuple[float, list[str]]:
    score, why = 0.0, []
    if target.modality == item.modality:
        score += WEIGHTS["modality"]
        why.append("modality")
    if target.body_part == item.body_part:
        score += WEIGHTS["body_part"]
        why.append("body part")
    if target.contrast == item.contrast or (target.contrast is None and item.contrast in (None, "P")):
        score += WEIGHTS["contrast"]
        why.append("contrast")
    if target.laterality == item.laterality or (target.laterality is None and item.laterality is None):
        score += WEIGHTS["laterality"]
        why.append("laterality")
    if target.view is not None and target.view == item.view:
        score += WEIGHTS["view"]
        why.append("view")
    return score, why


_PREPARED: dict[int, tuple[Catalog, NameParser, dict[str, str]]] = {}


def _prepared(catalog: Catalog) -> tuple[NameParser, dict[str, str]]:
    """The parser and normalised item names of a catalog, built once per catalog object."""
    hit = _PREPARED.get(id(catalog))
    if hit is None or hit[0] is not catalog:
        hit = (catalog, NameParser(catalog), {c: normalize(i.name) for c, i in catalog.items.items()})
        _PREPARED[id(catalog)] = hit
    return hit[1], hit[2]


def suggest(name: str, catalog: Catalog, *, limit: int = 5) -> list[Suggestion]:
    """Catalog items ranked by agreement with the parsed attributes plus fuzzy similarity of the names."""
    parser, item_texts = _prepared(catalog)
    parsed = parser.parse(name)
    text = normalize(name)
    ranked: list[Suggestion] = []
    for item in catalog.items.values():
        best, why = 0.0, []
        for target in parsed.targets or ():
            s, w = _attribute_score(item, target)
            if s > best:
                best, why = s, w
        similarity = SequenceMatcher(None, text, item_texts[item.code]).ratio()
        score = best + WEIGHTS["text"] * similarity
        ranked.append(Suggestion(item.code, item.name, round(score, 3),
                                 ", ".join(why + [f"text {similarity:.2f}"])))
    ranked.sort(key=lambda s: (-s.score, s.code))
    return ranked[:limit]
