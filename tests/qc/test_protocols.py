import pytest
import yaml

from qc.protocol import BODY_PARTS, DIMENSIONS, PROTOCOL_DIR, ProtocolError, load_all, parse


def test_every_body_part_has_a_valid_versioned_protocol():
    protocols = load_all()
    assert sorted(protocols) == sorted(BODY_PARTS)
    for p in protocols.values():
        assert p.version and p.source.strip()
        assert {c.dimension for c in p.checks} == set(DIMENSIONS)
        assert list(p.grades) == ["甲", "乙", "丙"]
        for c in p.checks:
            assert c.label and c.measure


def _doc(name="chest_pa"):
    return yaml.safe_load((PROTOCOL_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d.__setitem__("checks", [c for c in d["checks"] if c["dimension"] != "clarity"]), "no check feeds"),
    (lambda d: d["checks"][0].__setitem__("direction", "up"), "direction"),
    (lambda d: d["checks"][0].__setitem__("fail", d["checks"][0]["pass"]), "beyond"),
    (lambda d: d["dimension_weights"].__setitem__("coverage", 0.9), "sum to 1"),
    (lambda d: d.__setitem__("grades", {"甲": 50, "乙": 70, "丙": 60}), "甲 > 乙 > 丙"),
    (lambda d: d.pop("source"), "source"),
])
def test_broken_protocols_are_rejected_with_a_reason(breakage, message):
    doc = _doc()
    breakage(doc)
    with pytest.raises(ProtocolError, match=message):
        parse(doc, "broken.yaml")
