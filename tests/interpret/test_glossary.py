"""The glossary data file is complete and consistent."""
import json
import re

from interpret import glossary
from interpret.glossary import LEVELS, fold

FIELDS = ("term", "aliases", "explanation", "department", "level", "source")


def _records():
    with open(glossary.DEFAULT_PATH, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_header_is_first_and_versioned():
    header = _records()[0]["_header"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", header["version"])
    assert header["entries"] == len(_records()) - 1
    assert tuple(header["levels"]) == LEVELS


def test_every_entry_has_every_field_filled():
    for record in _records()[1:]:
        for name in FIELDS:
            assert name in record, f"{record.get('term')}: no {name}"
        for name in ("term", "explanation", "department", "source"):
            assert isinstance(record[name], str) and record[name].strip(), f"{record['term']}: empty {name}"
        assert isinstance(record["aliases"], list)
        assert record["level"] in LEVELS, f"{record['term']}: level {record['level']}"
        assert 10 <= len(record["explanation"]) <= 160, f"{record['term']}: explanation length"


def test_at_least_400_entries():
    assert len(glossary.load().entries) >= 400


def test_terms_and_aliases_are_unique_once_folded():
    seen: dict[str, str] = {}
    for entry in glossary.load().entries:
        for surface in entry.surfaces:
            key = fold(surface)
            assert key, f"{entry.term}: empty surface"
            assert key not in seen, f"{surface!r} of {entry.term} already belongs to {seen.get(key)}"
            seen[key] = entry.term


def test_patterns_compile_and_levels_cover_all_kinds():
    terms = glossary.load()
    for entry in terms.entries:
        for pattern in (*entry.patterns, entry.not_followed_by):
            re.compile(pattern)
    assert {e.level for e in terms.entries} == set(LEVELS)


def test_core_report_terms_are_present():
    terms = glossary.load()
    for word in ("磨玻璃结节", "腔隙性脑梗死", "椎间盘突出", "钙化灶", "肺大疱", "胆囊结石", "肝囊肿", "甲状腺结节",
                 "TI-RADS 3类", "脂肪肝", "骨质增生", "胸腔积液", "气胸", "肺气肿", "主动脉硬化"):
        assert terms.by_term(word) is not None, word
    assert terms.by_term("气胸").level == "urgent"
    assert terms.by_term("tirads 4a类").term == "TI-RADS 4A类"


def test_a_bad_entry_is_rejected_with_its_line():
    header = json.dumps({"_header": {"version": "1.0.0"}})
    bad = json.dumps({"term": "x", "aliases": [], "explanation": "y", "department": "z", "level": "scary",
                      "source": "s"})
    try:
        glossary.parse([header, bad])
    except ValueError as error:
        assert "line 2" in str(error) and "scary" in str(error)
    else:
        raise AssertionError("bad level accepted")
