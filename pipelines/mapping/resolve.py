"""Turn parsed targets into standard catalog items, or say exactly what is missing."""
from __future__ import annotations

from dataclasses import dataclass

from pipelines.mapping.catalog import Catalog
from pipelines.mapping.parse import NameParser, ParsedName, Target

_CHEST_VIEWS = {"AP": "PA", "AP_LAT": "PA_LAT"}  # a chest film is taken PA; hospitals still write 正位


@dataclass(frozen=True)
class Resolution:
    parsed: ParsedName
    items: tuple[str, ...]
    problems: tuple[str, ...]
    defaults: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Every part of the name became a standard item and nothing was left unexplained."""
        return bool(self.items) and not self.problems


def resolve_target(target: Target, catalog: Catalog) -> tuple[list[str], list[str], list[str]]:
    """Items, problems, defaults used for one target."""
    part = catalog.body_parts[target.body_part]
    if target.modality is None:
        return [], [f"{part.name}: no modality recognised (CT, MR/磁共振, DR/X线, 超声, 钼靶)"], []
    if not any(i.modality == target.modality and i.body_part == part.code for i in catalog.items.values()):
        return [], [f"{part.name}: no standard {target.modality} item for this body part"], []
    defaults: list[str] = []
    contrast, view, lat = target.contrast, target.view, target.laterality
    if target.modality in ("CT", "MR"):
        view = None
        if contrast is None:
            contrast = "P"
            defaults.append("contrast_plain")
    elif target.modality == "DR":
        if view is None:
            view = part.dr_default_view
            defaults.append("dr_default_view")
        if part.code == "CHEST":
            view = _CHEST_VIEWS.get(view, view)
    elif target.modality == "MG":
        view = view if view == "CC_MLO" else "CC_MLO"
    else:
        view = None
    if not part.paired:
        lats = [None]
    elif lat is None:
        if not catalog.has_laterality(target.modality, part.code, "B"):
            return [], [f"{part.name}: laterality missing (左/右/双) for a paired body part"], defaults
        lats = ["B"]
        defaults.append("bilateral_default")
    elif lat == "B" and not catalog.has_laterality(target.modality, part.code, "B"):
        lats = ["L", "R"]
    else:
        lats = [lat]
    items, problems = [], []
    for side in lats:
        item = catalog.find(target.modality, part.code, contrast, side, view)
        if item is None:
            problems.append(f"{part.name}: no standard item for modality={target.modality} contrast={contrast} "
                            f"laterality={side} view={view}")
        else:
            items.append(item.code)
    return items, problems, defaults


class ItemResolver:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.parser = NameParser(catalog)

    def resolve(self, name: str) -> Resolution:
        parsed = self.parser.parse(name)
        items: list[str] = []
        problems: list[str] = []
        defaults = list(parsed.defaults)
        if not parsed.targets:
            problems.append("no body part recognised")
        for target in parsed.targets:
            got, bad, used = resolve_target(target, self.catalog)
            items += got
            problems += bad
            defaults += used
        return Resolution(parsed, tuple(dict.fromkeys(items)), tuple(problems), tuple(dict.fromkeys(defaults)))
