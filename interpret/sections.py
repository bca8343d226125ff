"""Report structure: sections (检查所见 / 诊断意见 / 临床资料) and clauses, as offsets into the original text."""
from __future__ import annotations

import re
from dataclasses import dataclass

FINDINGS = "检查所见"
IMPRESSION = "诊断意见"
HISTORY = "临床资料"
OTHER = "其他"

_HEADERS = {
    FINDINGS: "检查所见|影像所见|影像表现|影像学表现|超声所见|检查描述|CT所见|MRI?所见|DR所见|X线所见|检查表现|所见|描述",
    IMPRESSION: "诊断意见|影像诊断|影像学诊断|超声诊断|超声提示|检查结论|检查提示|诊断结论|印象|结论|诊断|意见|提示",
    HISTORY: "临床诊断|临床资料|临床病史|临床表现|病史摘要|病史|检查目的|申请目的|主诉",
}
_HEADER = re.compile(
    r"^[ \t\u3000]*[【\[]?(?P<name>"
    + "|".join(f"(?P<{key}>{pattern})" for key, pattern in zip(("f", "i", "h"), _HEADERS.values()))
    + r")[】\]]?[ \t\u3000]*(?:[:：]|$)",
    re.MULTILINE,
)
_OTHER_KEY = re.compile(r"^[ \t\u3000]*[\u4e00-\u9fff]{2,6}[ \t\u3000]*[:：]", re.MULTILINE)

# Clause ends: sentence punctuation and line breaks; '.' and ',' only when not inside a number; "1、" list numbers.
_CLAUSE_END = re.compile(r"[。；;，！!？?：:\n]|(?<!\d)[.,]|(?<=\d)[.,](?!\d)|(?:^|(?<=[\s。；;，,：:]))\d{1,2}[、.．](?!\d)")


@dataclass(frozen=True)
class Section:
    name: str
    start: int
    end: int


@dataclass(frozen=True)
class Clause:
    start: int
    end: int  # includes the closing punctuation, so "肺癌？" keeps its question mark


def sections(text: str) -> list[Section]:
    """Split the report at its section headers; text before the first header is OTHER."""
    marks: dict[int, str] = {}
    for match in _OTHER_KEY.finditer(text):  # "检查部位：" and the like end the previous section
        marks[match.start()] = OTHER
    for match in _HEADER.finditer(text):
        key = "f" if match.group("f") else "i" if match.group("i") else "h"
        marks[match.start()] = {"f": FINDINGS, "i": IMPRESSION, "h": HISTORY}[key]
    marks.setdefault(0, OTHER)
    ordered = sorted(marks.items())
    result = []
    for (start, name), (end, _) in zip(ordered, [*ordered[1:], (len(text), OTHER)]):
        if end > start:
            result.append(Section(name, start, end))
    return result


def section_at(parts: list[Section], offset: int) -> str:
    for part in parts:
        if part.start <= offset < part.end:
            return part.name
    return OTHER


def clauses(text: str) -> list[Clause]:
    result, start = [], 0
    for match in _CLAUSE_END.finditer(text):
        if match.end() > start:
            result.append(Clause(start, match.end()))
        start = match.end()
    if start < len(text):
        result.append(Clause(start, len(text)))
    return result
