from __future__ import annotations

import pytest

from pipelines.mapping.catalog import default_catalog, load_catalog, CATALOG_FILE
from pipelines.mapping.parse import NameParser
from pipelines.mapping.resolve import ItemResolver
from pipelines.mapping.suggest import suggest

CATALOG = default_catalog()
RESOLVER = ItemResolver(CATALOG)


def test_catalog_covers_the_ten_qc_body_parts_and_marks_defaults():
    cat = load_catalog(CATALOG_FILE)
    assert len(cat.items) >= 120
    qc = {i.qc_body_part for i in cat.items.values() if i.qc_body_part}
    assert qc == {"DR-CHEST", "DR-ABDOMEN", "DR-L_SPINE", "DR-KNEE", "CT-HEAD", "CT-CHEST", "CT-UPPER_ABD",
                  "MR-HEAD", "MR-L_SPINE", "MR-UPPER_ABD"}
    assert all(i.source and i.default for i in cat.items.values())
    assert {i.modality for i in cat.items.values()} >= {"CT", "MR", "DR", "US", "MG"}
    assert {i.contrast for i in cat.items.values() if i.modality == "CT"} == {"P", "E", "PE"}


@pytest.mark.parametrize("name, expected", [
    ("胸部+上腹部CT平扫", {"CT-CHEST-P", "CT-UPPER_ABD-P"}),
    ("双膝关节正侧位", {"DR-KNEE-L-AP_LAT", "DR-KNEE-R-AP_LAT"}),
    ("头颅+胸部CT", {"CT-HEAD-P", "CT-CHEST-P"}),
    ("颈胸腰椎MR平扫", {"MR-C_SPINE-P", "MR-T_SPINE-P", "MR-L_SPINE-P"}),
    ("腰骶椎MRI", {"MR-L_SPINE-P"}),
])
def test_split_examples(name, expected):
    res = RESOLVER.resolve(name)
    assert res.complete and set(res.items) == expected


def test_parser_reads_each_attribute():
    t = NameParser(CATALOG).parse("右肩关节磁共振平扫+增强").targets
    assert [(x.modality, x.body_part, x.contrast, x.laterality) for x in t] == [("MR", "SHOULDER", "PE", "R")]
    t = NameParser(CATALOG).parse("左腕关节X线侧位").targets
    assert [(x.modality, x.body_part, x.laterality, x.view) for x in t] == [("DR", "WRIST", "L", "LAT")]


def test_missing_laterality_goes_to_review_with_suggestions():
    res = RESOLVER.resolve("膝关节正侧位")
    assert not res.complete and "laterality" in res.problems[0]
    ranked = suggest("膝关节正侧位", CATALOG)
    assert {ranked[0].code, ranked[1].code} == {"DR-KNEE-L-AP_LAT", "DR-KNEE-R-AP_LAT"}
    assert ranked[0].score >= ranked[-1].score


def test_defaults_are_reported():
    res = RESOLVER.resolve("头颅CT")
    assert res.items == ("CT-HEAD-P",) and "contrast_plain" in res.defaults


def test_parser_never_fails_on_random_names():
    import random

    rng = random.Random(7)
    alphabet = "胸部上腹头颅双左右膝关节正侧位平扫增强+、及CTMRIDR彩超钼靶()（）-/ 0123456789ABCXYZ骨盆颈腰椎"
    for n in range(3000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        res = RESOLVER.resolve(name)
        assert set(res.items) <= set(CATALOG.items)
        assert res.complete or res.problems or not res.items
        if n % 10 == 0:
            assert all(s.code in CATALOG.items for s in suggest(name, CATALOG, limit=3))
