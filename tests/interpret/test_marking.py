"""Marking: longest match, clause-scoped negation and uncertainty, sections."""
from interpret.marking import mark
from interpret.sections import clauses


def _by_term(text):
    return {s.term: s for s in mark(text)}


def test_negation_stays_in_its_clause():
    spans = _by_term("未见明显骨折，右肺结节")
    assert spans["骨折"].negated and not spans["肺结节"].negated


def test_longest_match_wins():
    assert [s.term for s in mark("右肺上叶磨玻璃结节")] == ["磨玻璃结节"]
    assert [s.canonical for s in mark("多发腔隙性脑梗死")] == ["腔隙性脑梗死"]


def test_negation_reaches_a_list_but_not_past_a_new_statement():
    spans = _by_term("未见骨折、脱位及骨质破坏")
    assert all(spans[t].negated for t in ("骨折", "脱位", "骨质破坏"))
    spans = _by_term("左肾未见积水右肾见结石")
    assert spans["积水"].negated and not spans["结石"].negated


def test_comparison_with_prior_is_not_negation():
    assert not mark("右肺结节较前未见明显增大")[0].negated
    assert mark("骨折征象未见。")[0].negated
    assert mark("胸腔积液（-）")[0].negated


def test_uncertainty_before_and_after():
    assert mark("考虑肝血管瘤")[0].uncertain
    assert mark("肝血管瘤可能")[0].uncertain
    assert mark("肺癌？")[0].uncertain
    assert mark("不除外转移瘤")[0].uncertain and not mark("不除外转移瘤")[0].negated
    spans = _by_term("右肺上叶磨玻璃结节考虑腺癌可能")
    assert not spans["磨玻璃结节"].uncertain and spans["腺癌"].uncertain


def test_pseudo_negations_and_shapes():
    assert not mark("肝内见无回声区")[0].negated
    assert [s.term for s in mark("肝脏大小正常，动脉期边缘结节状强化")] == []


def test_sections_and_offsets():
    text = "检查部位：胸部CT\n检查所见：\n右肺结节。\n诊断意见：\n1.肺结节，建议复查。"
    spans = mark(text)
    assert [(s.term, s.section) for s in spans] == [("肺结节", "检查所见"), ("肺结节", "诊断意见")]
    assert all(text[s.start:s.end] == s.term for s in spans)


def test_full_width_and_spacing_variants_match():
    spans = mark("TI－RADS　4a类；ｔｉｒａｄｓ 3 类")
    assert [s.canonical for s in spans] == ["TI-RADS 4A类", "TI-RADS 3类"]


def test_clauses_split_on_punctuation_and_list_numbers_but_not_inside_numbers():
    text = "结节大小约1.5cm，未见钙化。\n2.肝囊肿,直径1,200μm；3、脾大"
    parts = [text[c.start:c.end] for c in clauses(text)]
    assert parts == ["结节大小约1.5cm，", "未见钙化。", "\n", "2.", "肝囊肿,", "直径1,200μm；", "3、", "脾大"]
