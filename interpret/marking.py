"""Term marking: longest, non-overlapping glossary matches, with clause-scoped negation and uncertainty.

Cues are found per clause. A negation cue before a term negates it up to the end of the clause or a word that
starts a new statement ("但", "见"); a negation cue after a term ("骨折征象未见") counts only when it ends the
clause, so "结节较前未见增大" does not negate the nodule. Uncertainty cues before a term reach to the clause end;
cues after a term ("肝血管瘤可能", "肺癌？") reach back to the clause start or the nearest stop word ("考虑", "伴").
"""
from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache

import ahocorasick

from interpret import glossary as glossary_module
from interpret import sections as sections_module
from interpret.glossary import Entry, Glossary, fold

# cue -> (kind, direction); kind "neg" or "unc"; direction "pre", "post" or "both".
CUES: dict[str, tuple[str, str]] = {
    **{c: ("neg", "pre") for c in (
        "未示", "未探及", "未及", "未触及", "未出现", "未伴", "无", "没有", "不伴", "排除", "否认", "并无",
        "未见明确", "未见确切")},
    **{c: ("neg", "both") for c in ("未见", "未发现", "未显示", "可排除", "已排除", "可除外", "已除外")},
    **{c: ("neg", "post") for c in ("阴性", "(-)", "（-）", "消失", "已吸收")},
    **{c: ("unc", "pre") for c in (
        "考虑", "考虑为", "多考虑", "首先考虑", "疑似", "可疑", "怀疑", "疑为", "倾向", "倾向于", "拟诊", "拟为",
        "可能为", "可能是", "似见", "似为", "似有", "有无", "请除外", "需除外", "除外", "难以除外", "难除外")},
    **{c: ("unc", "post") for c in ("？", "?", "待查", "待定", "待除外", "待鉴别", "需鉴别", "鉴别")},
    **{c: ("unc", "both") for c in (
        "可能", "可能性大", "可能性较大", "可能性小", "不除外", "不能除外", "不排除", "不能排除", "无法排除",
        "无法除外", "待排", "待排除")},
}
# Look like cues but are not: "无回声" describes echo, "无明显变化" compares with a prior exam.
PSEUDO_CUES = ("无回声", "无明显变化", "无变化", "无明显改变", "无著变", "无力", "无明显增大", "无明显缩小")
# Words that end a negation's forward reach, or an after-term uncertainty's backward reach.
_NEG_STOPS = re.compile(r"但是|但|然而|而|另见|并见|可见|(?<![未似])见|提示|示")
_BACK_STOPS = re.compile(r"伴有|伴|合并|并|(?<!未)见|示")
# What may sit between a trailing negation cue and the clause end.
_TAIL_FILLER = re.compile(r"^[明显显示确切异常征象\s。；;，,：:！!？?\n]*$")
_CUE_PATTERN = re.compile("|".join(re.escape(c) for c in sorted([*CUES, *PSEUDO_CUES], key=len, reverse=True)))


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    term: str
    level: str
    negated: bool
    uncertain: bool
    canonical: str
    explanation: str
    department: str
    section: str
    source: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Cue:
    start: int
    end: int
    kind: str
    direction: str


def _folded_with_map(text: str) -> tuple[str, list[int]]:
    """The folded text and, for each folded character, the offset of the original character it came from."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char in " \t\u3000\u00a0":
            continue
        for folded in unicodedata.normalize("NFKC", char).upper():
            if folded.isspace() and folded != "\n":
                continue
            chars.append(folded)
            origin.append(index)
    return "".join(chars), origin


def _is_ascii_word(char: str) -> bool:
    return char.isascii() and char.isalnum()


class Marker:
    def __init__(self, terms: Glossary):
        self.glossary = terms
        self._automaton = ahocorasick.Automaton()
        for entry in terms.entries:
            for surface in entry.surfaces:
                key = fold(surface)
                if key:
                    self._automaton.add_word(key, (len(key), entry))
        self._automaton.make_automaton()
        self._patterns = [(re.compile(p), entry) for entry in terms.entries for p in entry.patterns]

    def _matches(self, text: str) -> list[tuple[int, int, Entry]]:
        folded, origin = _folded_with_map(text)
        found = []
        for last, (length, entry) in self._automaton.iter(folded):
            first = last - length + 1
            if _is_ascii_word(folded[first]) and first > 0 and _is_ascii_word(folded[first - 1]):
                continue
            if _is_ascii_word(folded[last]) and last + 1 < len(folded) and _is_ascii_word(folded[last + 1]):
                continue
            if folded[last] == "大" and folded[last + 1:last + 2] == "小":  # "肝大小正常" is not 肝大
                continue
            end = origin[last] + 1
            if entry.not_followed_by and re.match(entry.not_followed_by, text[end:end + 4]):
                continue
            found.append((origin[first], end, entry))
        for pattern, entry in self._patterns:
            found.extend((m.start(), m.end(), entry) for m in pattern.finditer(text))
        # leftmost-longest, non-overlapping
        found.sort(key=lambda m: (m[0], -(m[1] - m[0])))
        chosen, reach = [], 0
        for start, end, entry in found:
            if start >= reach:
                chosen.append((start, end, entry))
                reach = end
        return chosen

    def mark(self, text: str) -> list[Span]:
        matches = self._matches(text)
        parts = sections_module.sections(text)
        spans: list[Span] = []
        starts = [m[0] for m in matches]
        for clause in sections_module.clauses(text):
            inside = matches[bisect.bisect_left(starts, clause.start):bisect.bisect_left(starts, clause.end)]
            if not inside:
                continue
            cues = _cues(text, clause, inside)
            for start, end, entry in inside:
                negated, uncertain = _scope(text, clause, cues, start, end)
                spans.append(Span(
                    start=start, end=end, term=text[start:end], level=entry.level, negated=negated,
                    uncertain=uncertain, canonical=entry.term, explanation=entry.explanation,
                    department=entry.department, section=sections_module.section_at(parts, start),
                    source=entry.source,
                ))
        return spans


def _cues(text: str, clause, terms) -> list[_Cue]:
    body = text[clause.start:clause.end]
    cues = []
    for match in _CUE_PATTERN.finditer(body):
        start, end = clause.start + match.start(), clause.start + match.end()
        if match.group() in PSEUDO_CUES or any(s < end and start < e for s, e, _ in terms):
            continue
        kind, direction = CUES[match.group()]
        cues.append(_Cue(start, end, kind, direction))
    return cues


def _scope(text: str, clause, cues: list[_Cue], start: int, end: int) -> tuple[bool, bool]:
    negated = uncertain = False
    for cue in cues:
        if cue.end <= start and cue.direction in ("pre", "both"):
            between = text[cue.end:start]
            if cue.kind == "neg" and not _NEG_STOPS.search(between):
                negated = True
            elif cue.kind == "unc":
                uncertain = True
        elif cue.start >= end and cue.direction in ("post", "both"):
            between = text[end:cue.start]
            if cue.kind == "neg":
                if _TAIL_FILLER.match(text[cue.end:clause.end]) and _TAIL_FILLER.match(between):
                    negated = True
            elif not _BACK_STOPS.search(between) and not any(
                c.kind == "unc" and end <= c.start and c.end <= cue.start and c.direction == "pre" for c in cues
            ):
                uncertain = True
    return negated, uncertain


@lru_cache(maxsize=1)
def default_marker() -> Marker:
    return Marker(glossary_module.load())


def mark(text: str) -> list[Span]:
    return default_marker().mark(text)
