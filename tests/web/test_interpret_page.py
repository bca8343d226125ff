"""The report interpretation page in headless chromium on a phone-sized screen, against the real API (no model, so
the chat answers from the offline fallback): marked terms, the term sheet, chat, the red-flag banner, photo OCR."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from interpret.marking import mark
from tests.interpret.photos import photograph, render
from tests.web.conftest import ARTIFACTS

REPORT = ("检查所见：右肺上叶见一磨玻璃结节，大小约6mm。未见胸腔积液。肝右叶见低密度灶，考虑肝血管瘤可能。\n"
          "诊断意见：1. 右肺上叶磨玻璃结节，建议定期复查。2. 肝血管瘤可能。3. 脂肪肝。")
PHOTO_TEXT = "诊断意见：\n1. 胆囊结石。\n2. 肝囊肿。"

pytestmark = pytest.mark.slow


def test_patient_reads_asks_and_photographs_a_report(live_api, phone):
    page = phone
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_api.base_url) else None)
    page.goto(f"{live_api.base_url}/app/interpret.html#token={live_api.tokens['patient']}")
    expect(page).to_have_url(re.compile(r"/app/interpret\.html$"))  # the token left the address bar
    disclaimer = page.locator("#disclaimer")
    expect(disclaimer).to_be_visible()
    expect(disclaimer).to_contain_text("不能代替医生")

    # The report, marked: levels as classes, "未见胸腔积液" ruled out.
    page.get_by_label("报告文字").fill(REPORT)
    page.get_by_role("button", name="解读报告").tap()
    spans = mark(REPORT)
    expected = {s.term: s for s in spans}
    nodule = page.locator("#marked-report button.term", has_text="磨玻璃结节").first
    expect(nodule).to_have_class(re.compile(f"level-{expected['磨玻璃结节'].level}"))
    effusion = page.locator("#marked-report button.term", has_text="胸腔积液")
    expect(effusion).to_have_class(re.compile(r"\bnegated\b"))
    expect(page.locator("#marked-report button.term", has_text="肝血管瘤").first).to_have_class(
        re.compile(r"\buncertain\b"))
    expect(nodule).not_to_have_class(re.compile(r"negated|uncertain"))
    expect(page.locator("#marked-report button.term")).to_have_count(len(spans))
    expect(disclaimer).to_be_in_viewport()
    nameless = page.evaluate("""() => [
        ...[...document.querySelectorAll('input, textarea, select')].filter(e => !e.labels.length).map(e => e.id),
        ...[...document.querySelectorAll('button')].filter(b => !(b.getAttribute('aria-label') || b.textContent.trim()))
            .map(b => b.outerHTML)]""")
    assert nameless == [], f"controls without an accessible name: {nameless}"
    page.screenshot(path=ARTIFACTS / "interpret-1-page.png")
    page.locator("#marked-card").screenshot(path=ARTIFACTS / "interpret-1-marked.png")

    # Tapping a term opens its plain explanation, department and level.
    nodule.tap()
    sheet = page.get_by_role("dialog")
    expect(sheet).to_be_visible()
    expect(sheet.locator("#term-explanation")).to_have_text(expected["磨玻璃结节"].explanation)
    expect(sheet.locator("#term-department")).to_have_text(expected["磨玻璃结节"].department)
    expect(sheet.locator("#term-level")).to_contain_text("定期复查")
    page.screenshot(path=ARTIFACTS / "interpret-2-term.png")
    sheet.get_by_role("button", name="知道了").tap()
    expect(sheet).to_be_hidden()
    effusion.tap()
    expect(sheet.locator("#term-status")).to_contain_text("未见")
    sheet.get_by_role("button", name="知道了").tap()

    # Chat: with no model configured the glossary fallback answers; turns are on the log.
    page.get_by_label("输入您的问题").fill("我该挂什么科？")
    page.get_by_role("button", name="发送").tap()
    answer = page.locator(".msg.assistant.fallback").last
    expect(answer).to_contain_text(expected["磨玻璃结节"].department)
    expect(page.locator("#urgent")).to_be_hidden()

    # A red flag: the urgent banner with 120 and the emergency department, whatever the report says.
    page.get_by_label("输入您的问题").fill("我现在胸口痛，喘不上气")
    page.get_by_role("button", name="发送").tap()
    banner = page.get_by_role("alert")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("120")
    expect(banner).to_contain_text("急诊")
    expect(banner.get_by_role("link", name="拨打 120")).to_have_attribute("href", "tel:120")
    expect(page.locator(".msg.assistant.red_flag")).to_have_count(1)
    page.screenshot(path=ARTIFACTS / "interpret-3-red-flag.png")
    banner.get_by_role("button", name="我已知晓").tap()

    # A photographed paper report: OCR text in the editable box, then "重新解读" marks it.
    photo = photograph(render(PHOTO_TEXT, size=36, width=640)[0], angle=-2.5, seed=11)
    page.locator("#photo-input").set_input_files(
        files=[{"name": "report.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    box = page.get_by_label("报告文字")
    expect(box).to_have_value(re.compile("胆囊结石"), timeout=60_000)
    expect(page.locator("#ocr-hint")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "interpret-4-ocr.png")
    box.fill(box.input_value().replace("肝囊肿", "肝囊肿，肾结石"))  # the patient corrects the text
    page.get_by_role("button", name="重新解读").tap()
    expect(page.locator("#marked-report button.term", has_text="胆囊结石")).to_be_visible()
    expect(page.locator("#marked-report button.term", has_text="肾结石")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "interpret-5-reinterpreted.png", full_page=True)

    log = live_api.platform.log
    records = [r.envelope() for p in range(log.partitions("person")) for r in log.read("person", p, 0, 10_000)]
    turns = [e for e in records if e.type == "ConversationTurnRecorded"]
    assert sorted(e.payload["turn_index"] for e in turns) == [0, 1, 2, 3]
    assert [e.payload["source"] for e in turns if e.payload["role"] == "assistant"] == ["fallback", "red_flag"]
    assert outside == [], f"the page fetched from outside the API: {outside}"
