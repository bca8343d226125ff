"""Parse a hospital's Chinese exam-item name into attributes, and split combined orders into single targets.

Pure functions, no I/O. The vocabulary of body parts comes from the catalog (its synonyms); the vocabulary of
modalities, contrast phases, views and laterality is here, because it is language, not policy.

Rules that are conventions rather than facts are listed in :data:`DEFAULT_RULES` and reported in
``ParsedName.defaults`` whenever they were used, so a reviewer can see what was assumed.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from pipelines.mapping.catalog import Catalog

# (text, value) pairs; matching is longest-first across every table, so "平扫+增强" wins over "平扫" and "+".
MODALITY_WORDS: dict[str, str] = {
    "X线计算机体层": "CT", "计算机体层": "CT", "HRCT": "CT", "CTA": "CT", "CT": "CT",
    "PET-CT": "PT", "PET/CT": "PT", "PET": "PT",
    "核磁共振": "MR", "磁共振": "MR", "核磁": "MR", "MRI": "MR", "MRA": "MR", "MR": "MR",
    "彩色多普勒": "US", "多普勒": "US", "彩超": "US", "B超": "US", "超声": "US", "阴超": "US",
    "钼靶": "MG", "MG": "MG",
    "DR": "DR", "CR": "DR", "DX": "DR", "X线": "DR", "X光": "DR", "平片": "DR", "摄片": "DR", "拍片": "DR",
    "摄影": "DR", "片": "DR",
}
#: modality words that also say the phase. MRA (angiography) has no catalog item of its own yet, so it goes to
#: review instead of passing as a plain MR; CTA is taken as enhanced (the coronary CTA item is CT-CORONARY-E).
IMPLIED_CONTRAST = {"CTA": "E", "MRA": "ANGIO"}
CONTRAST_WORDS: dict[str, str] = {
    **{f"平扫{sep}增强": "PE" for sep in ("", "+", "加", "及", "和", "与", "、", "/")},
    **{f"增强{sep}平扫": "PE" for sep in ("", "+", "加", "及", "和", "、", "/")},
    "平+增": "PE", "平扫": "P", "非增强": "P", "增强": "E", "强化": "E", "造影": "E",
}
VIEW_WORDS: dict[str, str] = {
    "正侧位": "AP_LAT", "正位+侧位": "AP_LAT", "正+侧位": "AP_LAT", "正侧": "AP_LAT", "正斜位": "AP_OBL",
    "双斜位": "OBL", "斜位": "OBL", "后前位": "PA", "前后位": "AP", "正位": "AP", "侧位": "LAT",
    "立位": "ERECT", "卧位": "SUPINE", "轴位": "AXIAL", "张口位": "OPEN_MOUTH", "华氏位": "WATERS",
    "过伸过屈位": "FLEX_EXT", "功能位": "FLEX_EXT",
}
LATERALITY_WORDS: dict[str, str] = {
    "双侧": "B", "两侧": "B", "左右": "B", "双": "B", "左侧": "L", "左": "L", "右侧": "R", "右": "R",
}
SEPARATORS = ("+", "、", ",", ";", "/", "及", "和", "与", "加", "&", "|")

DEFAULT_RULES = {
    "contrast_plain": "CT/MR without a phase word is taken as 平扫 (plain)",
    "modality_from_view": "a view word (正位, 侧位 …) without a modality means DR",
    "modality_from_contrast": "a phase word (平扫/增强) without a modality means CT",
    "breast_xray_is_mg": "乳腺 + X-ray means mammography (MG)",
}

_SPINE_RUN = re.compile(r"([颈胸腰骶])((?:[、,]?[颈胸腰骶])+)椎")


@dataclass(frozen=True)
class Target:
    """One single exam as far as the name says it; ``None`` means the name did not say."""

    modality: str | None
    body_part: str
    contrast: str | None = None
    laterality: str | None = None
    view: str | None = None


@dataclass(frozen=True)
class ParsedName:
    original: str
    normalized: str
    targets: tuple[Target, ...]
    defaults: tuple[str, ...] = ()
    unknown: str = ""


@dataclass
class _Segment:
    modality: str | None = None
    contrast: str | None = None
    views: list[str] = field(default_factory=list)
    parts: list[list] = field(default_factory=list)  # [body part code, laterality or None]
    trailing_lat: str | None = None

    def empty(self) -> bool:
        return not (self.modality or self.contrast or self.views or self.parts)


def normalize(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).upper()
    text = re.sub(r"\s+", "", text)
    return _SPINE_RUN.sub(_expand_spine, text)


def _expand_spine(m: re.Match) -> str:
    letters = [c for c in m.group(1) + m.group(2) if c not in "、,"]
    if "".join(letters) == "腰骶":  # 腰骶椎 is one exam (lumbosacral spine)
        return m.group(0)
    return "+".join(c + "椎" for c in letters)


class NameParser:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        vocab: dict[str, tuple[str, str]] = {}
        for part in catalog.body_parts.values():
            for syn in part.synonyms:
                vocab.setdefault(syn.upper(), ("part", part.code))
        # Language words win over body-part synonyms of the same text.
        for table, kind in ((LATERALITY_WORDS, "lat"), (VIEW_WORDS, "view"), (CONTRAST_WORDS, "contrast"),
                            (MODALITY_WORDS, "modality")):
            for text, value in table.items():
                vocab[text] = (kind, value)
        for sep in SEPARATORS:
            vocab.setdefault(sep, ("sep", sep))
        self._vocab = vocab
        self._longest = max(len(k) for k in vocab)

    def tokens(self, text: str) -> tuple[list[tuple[str, str, str]], str]:
        out, unknown, i = [], [], 0
        while i < len(text):
            for size in range(min(self._longest, len(text) - i), 0, -1):
                hit = self._vocab.get(text[i:i + size])
                if hit:
                    out.append((hit[0], hit[1], text[i:i + size]))
                    i += size
                    break
            else:
                unknown.append(text[i])
                i += 1
        return out, "".join(unknown)

    def parse(self, name: str) -> ParsedName:
        text = normalize(name)
        toks, unknown = self.tokens(text)
        segments = _segments(toks)
        defaults: list[str] = []
        _inherit(segments, defaults)
        targets: list[Target] = []
        for seg in segments:
            for code, lat in seg.parts:
                modality = seg.modality
                if modality == "DR" and code == "BREAST":
                    modality = "MG"
                    defaults.append("breast_xray_is_mg")
                for view in seg.views or [None]:
                    targets.append(Target(modality, code, seg.contrast, lat, view))
        unique = tuple(dict.fromkeys(targets))
        return ParsedName(name, text, unique, tuple(dict.fromkeys(defaults)), unknown)


def _segments(toks: list[tuple[str, str, str]]) -> list[_Segment]:
    segments: list[_Segment] = [_Segment()]
    pending_lat: str | None = None
    for kind, value, text in toks:
        seg = segments[-1]
        if kind == "sep":
            _close(seg, pending_lat)
            pending_lat = None
            segments.append(_Segment())
        elif kind == "modality":
            if seg.modality is None or seg.modality == "DR":  # "X线 … (CT)": the specific word wins
                seg.modality = value
            if text in IMPLIED_CONTRAST and seg.contrast is None:
                seg.contrast = IMPLIED_CONTRAST[text]
        elif kind == "contrast":
            seg.contrast = value
        elif kind == "view":
            if value not in seg.views:
                seg.views.append(value)
        elif kind == "lat":
            pending_lat = value
        elif kind == "part":
            if not any(p[0] == value for p in seg.parts):
                seg.parts.append([value, pending_lat])
            pending_lat = None
    _close(segments[-1], pending_lat)
    return [s for s in segments if not s.empty()]


def _close(seg: _Segment, pending_lat: str | None) -> None:
    """A laterality word after the body parts ("膝关节(正侧位)-双侧") applies to the parts that have none."""
    if pending_lat:
        for p in seg.parts:
            if p[1] is None:
                p[1] = pending_lat


def _inherit(segments: list[_Segment], defaults: list[str]) -> None:
    """Fill what a segment of a combined order leaves out from its neighbours ("胸部+上腹部CT平扫")."""
    for i, seg in enumerate(segments):
        if not seg.parts and i > 0:  # "正侧位+双斜位": the second view belongs to the same body part
            seg.parts = [list(p) for p in segments[i - 1].parts]
        order = segments[i + 1:] + segments[:i][::-1]
        if seg.modality is None:
            seg.modality = next((s.modality for s in order if s.modality), None)
        if seg.contrast is None:
            seg.contrast = next((s.contrast for s in order if s.contrast and s.modality == seg.modality), None)
        if not seg.views:
            seg.views = list(next((s.views for s in order if s.views and s.modality == seg.modality), []))
    for seg in segments:
        if seg.modality is None and seg.views:
            seg.modality = "DR"
            defaults.append("modality_from_view")
        elif seg.modality is None and seg.contrast:
            seg.modality = "CT"
            defaults.append("modality_from_contrast")
