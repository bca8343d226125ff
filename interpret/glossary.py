"""The patient glossary: terms found in imaging reports, with plain-language explanations.

The data file is JSON Lines: a header line (format, version, licence) then one entry per line.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

LEVELS = ("normal_variant", "follow_up", "see_doctor", "urgent")
DEFAULT_PATH = Path(__file__).parent / "data" / "glossary.jsonl"
_SPACES = re.compile(r"[^\S\n]+")


def fold(text: str) -> str:
    """The matching form of a term: NFKC (full-width to half-width), upper case, no spaces."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text)).upper()


@dataclass(frozen=True)
class Entry:
    term: str
    aliases: tuple[str, ...]
    explanation: str
    department: str
    level: str
    source: str
    patterns: tuple[str, ...] = ()  # regular expressions for phrasings with words inside the term
    not_followed_by: str = ""  # a match followed by this is not the term ("结节状强化" describes a shape)

    @property
    def surfaces(self) -> tuple[str, ...]:
        return (self.term, *self.aliases)


@dataclass(frozen=True)
class Glossary:
    version: str
    entries: tuple[Entry, ...]

    def by_term(self, term: str) -> Entry | None:
        return self._index().get(fold(term))

    def _index(self) -> dict[str, Entry]:
        index = self.__dict__.get("_surface_index")
        if index is None:
            index = {fold(s): e for e in self.entries for s in e.surfaces}
            object.__setattr__(self, "_surface_index", index)
        return index


def parse(lines) -> Glossary:
    """Parse the JSON Lines text; raises ValueError naming the line on a bad entry."""
    header: dict | None = None
    entries: list[Entry] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record = json.loads(line)
        if "_header" in record:
            header = record["_header"]
            continue
        try:
            entry = Entry(
                term=record["term"],
                aliases=tuple(record.get("aliases", ())),
                explanation=record["explanation"],
                department=record["department"],
                level=record["level"],
                source=record["source"],
                patterns=tuple(record.get("patterns", ())),
                not_followed_by=record.get("not_followed_by", ""),
            )
            for pattern in (*entry.patterns, entry.not_followed_by):
                re.compile(pattern)
        except KeyError as missing:
            raise ValueError(f"glossary line {number}: missing field {missing}") from None
        except re.error as bad:
            raise ValueError(f"glossary line {number}: bad pattern: {bad}") from None
        if entry.level not in LEVELS:
            raise ValueError(f"glossary line {number}: level {entry.level!r} is not one of {LEVELS}")
        entries.append(entry)
    if header is None:
        raise ValueError("glossary: no header line")
    return Glossary(version=str(header["version"]), entries=tuple(entries))


@lru_cache(maxsize=4)
def load(path: Path = DEFAULT_PATH) -> Glossary:
    with open(path, encoding="utf-8") as handle:
        return parse(handle)
