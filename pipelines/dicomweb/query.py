"""QIDO-RS query parameters and matching (PS3.18 8.3.4, PS3.4 C.2.2.2), as pure functions.

Matching kinds: single value (exact; ``*`` and ``?`` wildcards), UID lists (``a,b`` or ``a\\b`` or the key
repeated), date/time ranges (``A-B``, ``-B``, ``A-``), and person names (case-insensitive; with
``fuzzymatching=true`` every word of the query must begin a word of the name, in any component group).
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from pipelines.dicomweb.metadata import tag_key

LEVELS = ("study", "series", "instance")
RESERVED = {"limit", "offset", "fuzzymatching", "includefield", "orderby"}
UID_KEYS = {"0020000D", "0020000E", "00080018", "00080016"}
RANGE_KEYS = {"00080020", "00080030", "00080021", "00080031"}
PN_KEYS = {"00100010", "00080090"}
MAX_LIMIT = 1000
DEFAULT_LIMIT = {"study": 100, "series": 1000, "instance": 1000}


class QueryError(ValueError):
    """A query we cannot answer as asked (400 with this reason)."""


@dataclass
class Query:
    level: str
    filters: dict[str, list[str]] = field(default_factory=dict)  # tag key -> values (several: a list match)
    includefield: set[str] | None = None  # None: defaults only; {"all"}: everything
    limit: int = 100
    offset: int = 0
    fuzzy: bool = False


def parse_query(level: str, params: list[tuple[str, str]]) -> Query:
    if level not in LEVELS:
        raise QueryError(f"unknown query level {level!r}")
    q = Query(level, limit=DEFAULT_LIMIT[level])
    for name, value in params:
        lname = name.lower()
        if lname == "limit":
            q.limit = _int(name, value, 1, MAX_LIMIT)
        elif lname == "offset":
            q.offset = _int(name, value, 0, 10**9)
        elif lname == "fuzzymatching":
            q.fuzzy = value.strip().lower() == "true"
        elif lname == "includefield":
            q.includefield = q.includefield or set()
            for item in value.split(","):
                if item.strip().lower() == "all":
                    q.includefield.add("all")
                elif item.strip():
                    key = tag_key(item.split(".")[0])
                    if key is None:
                        raise QueryError(f"includefield {item.strip()!r} is not a DICOM keyword or tag")
                    q.includefield.add(key)
        elif lname in RESERVED:
            continue
        else:
            key = tag_key(name.split(".")[0])
            if key is None:
                raise QueryError(f"query key {name!r} is not a DICOM keyword or tag (e.g. PatientID or 00100020)")
            values = _split_list(value) if key in UID_KEYS else [value]
            q.filters.setdefault(key, []).extend(v for v in values if v != "")
            if not q.filters[key]:
                del q.filters[key]  # an empty value is a return key, not a filter
                q.includefield = (q.includefield or set()) | {key}
    for key in RANGE_KEYS & q.filters.keys():
        for value in q.filters[key]:
            date_range(value)  # refuse a malformed range before doing any work
    return q


def _int(name: str, value: str, lo: int, hi: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise QueryError(f"{name} must be an integer, not {value[:20]!r}") from None
    if not lo <= n <= hi:
        raise QueryError(f"{name} must be between {lo} and {hi}")
    return n


def _split_list(value: str) -> list[str]:
    return [v.strip() for v in re.split(r"[,\\]", value) if v.strip()]


def has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def date_range(value: str) -> tuple[str | None, str | None]:
    """``20260101-20260131`` -> (lo, hi); a single value gives (v, v); open ends are None."""
    v = value.strip().replace(".", "")
    if not re.fullmatch(r"\d{0,14}(\.\d+)?(-\d{0,14})?", v) or v in ("", "-"):
        raise QueryError(f"{value[:30]!r} is not a date/time or a range (YYYYMMDD, A-B, -B or A-)")
    if "-" not in v:
        return v, v
    lo, hi = v.split("-", 1)
    return lo or None, hi or None


def in_range(value: str | None, lo: str | None, hi: str | None) -> bool:
    """Prefix-aware comparison, so a time range 0800-1000 matches 083000."""
    if not value:
        return False
    if lo is not None and value[:len(lo)] < lo:
        return False
    if hi is not None and value[:len(hi)] > hi:
        return False
    return True


def like_pattern(value: str) -> str:
    """A DICOM wildcard value as an SQL LIKE pattern (escape character ``\\``)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def matches(pattern: str, value: str | None) -> bool:
    """Single value matching with wildcards (case-sensitive, as PS3.4 asks for most VRs)."""
    if value is None:
        return False
    return fnmatch.fnmatchcase(value.strip(), pattern.strip()) if has_wildcard(pattern) else \
        value.strip() == pattern.strip()


# ------------------------------------------------------------------ person names

def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().upper()


def name_words(pn: str) -> list[str]:
    """Every word of every component of every group (alphabetic, ideographic, phonetic)."""
    out = []
    for group in pn.split("="):
        for component in group.split("^"):
            out += [w for w in _norm(component).split(" ") if w]
    return out


def _groups(pn: str) -> list[str]:
    return [_norm(g).rstrip("^") for g in pn.split("=") if g.strip("^ ")]


def pn_matches(pattern: str, pn: str | None, fuzzy: bool) -> bool:
    """Case-insensitive person-name matching against each component group of the name."""
    if not pn:
        return False
    pattern = _norm(pattern)
    if fuzzy and not has_wildcard(pattern):
        words = name_words(pn)
        return all(any(w.startswith(q) for w in words) for q in re.split(r"[\s^=,]+", pattern) if q)
    for group in _groups(pn):
        candidates = {group, group.replace("^", " "), re.sub(r"\^+", "^", group)}
        if any(fnmatch.fnmatchcase(c, pattern) if has_wildcard(pattern) else c == pattern.rstrip("^")
               for c in candidates):
            return True
    return False


MAX_PREFIX = 12


def name_terms(pn: str) -> set[str]:
    """What the catalog keeps (as HMAC tokens) so a name can be found without storing it: each whole group, and
    each word's prefixes up to 12 characters."""
    terms = {f"full|{g}" for g in _groups(pn)}
    for word in name_words(pn):
        terms |= {f"pre|{word[:n]}" for n in range(1, min(len(word), MAX_PREFIX) + 1)}
    return terms


def query_terms(pattern: str, fuzzy: bool) -> list[str] | None:
    """Terms a matching name must all have, or None when the pattern cannot be narrowed by terms (e.g. ``*OE``).

    Terms only narrow the candidates; every candidate is then checked with :func:`pn_matches` on the original."""
    p = _norm(pattern)
    if not p:
        return None
    if not has_wildcard(p):
        if fuzzy:
            return [f"pre|{w[:MAX_PREFIX]}" for w in re.split(r"[\s^=,]+", p) if w]
        return [f"full|{p.rstrip('^')}"] if "=" not in p else None
    head = re.split(r"[*?]", p, 1)[0]
    words = [w for w in re.split(r"[\s^]+", head) if w]
    if not words:
        return None
    return [f"pre|{w[:MAX_PREFIX]}" for w in words]
