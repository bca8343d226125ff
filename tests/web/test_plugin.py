"""The HIS plugin in headless chromium at side-panel size, against the real API with the embedded runner: the HIS
posts sign-in, patient opened and an order; the plugin wakes, pops up the history and the duplicates; the doctor
declines one candidate with a reason and accepts the other, and 已互认 appears. Screenshots in tests/artifacts/."""
from __future__ import annotations

import json
import re
import threading
import time
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest
from playwright.sync_api import expect

from pipelines.identity import check_digit
from streams.doctor_feed import DoctorFeed
from streams.topics import publish
from tests.doctor.stream import CT_CHEST, WH1, WH2, DoctorStream
from tests.web.conftest import ARTIFACTS, chromium_page

pytestmark = pytest.mark.slow
FIRST17 = "34010419850612123"
CST = timezone(timedelta(hours=8))
WH1_NAME, WH2_NAME = "芜湖市第二人民医院", "芜湖市中医医院"  # schemas/catalogs/hospitals.yaml


@pytest.fixture
def world(live_api):
    """Two earlier chest CTs of one person at two other hospitals, and the projector running."""
    platform = live_api.platform
    b = DoctorStream(keys=platform.keys)
    pk = b.person(FIRST17)
    today = date.today()
    studies = {WH1: b.exam(pk, WH1, today - timedelta(days=20), CT_CHEST),
               WH2: b.exam(pk, WH2, today - timedelta(days=5), CT_CHEST)}
    publish(platform.log, b.events)
    stop = threading.Event()
    runner = threading.Thread(target=platform.runner().run, args=(stop,), daemon=True)
    runner.start()
    yield live_api, pk, studies
    stop.set()
    runner.join(timeout=10)
    for feed in DoctorFeed.running():
        if feed.event_log is platform.log:
            feed.stop()


@pytest.fixture
def panel(tmp_path, playwright_driver):
    """A 400 x 860 side panel."""
    with chromium_page(playwright_driver, tmp_path / "chromium-profile", timeout_ms=10_000,
                       viewport={"width": 400, "height": 860}) as page:
        yield page


def his(api, *events: dict) -> None:
    now = datetime.now(CST).isoformat()
    body = json.dumps([{"occurred_at": now, **e} for e in events], ensure_ascii=False).encode()
    r = httpx.post(f"{api.base_url}/api/v1/his/events", content=body, timeout=10,
                   headers={"Authorization": f"Bearer {api.tokens['system']}", "Content-Type": "application/json"})
    assert r.status_code == 202, r.text


def test_plugin_reminds_flags_duplicates_and_records_decisions(world, panel):
    api, pk, studies = world
    page = panel
    errors: list[str] = []
    # Console errors include CSP violations; failed loads are checked by their responses below.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not m.text.startswith(
        "Failed to load resource") else None)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{api.base_url}/app/plugin.html#token={api.tokens['doctor']}")
    expect(page).to_have_url(re.compile(r"/app/plugin\.html$"))  # the token left the address bar
    expect(page.locator("#conn")).to_have_text("已连接")
    expect(page.locator("#doctor-status")).to_have_text("等待医生在 HIS 中登录…")

    # The HIS says the doctor signed in: the plugin wakes.
    doctor = "demo-doctor"  # the doctor token's name is the HIS doctor id
    his(api, {"kind": "doctor_sign_in", "doctor_id": doctor, "department": "呼吸内科", "workstation": "门诊3"})
    expect(page.locator("#doctor-status")).to_contain_text(f"{doctor} 医生已登录")
    page.screenshot(path=ARTIFACTS / "plugin-1-signed-in.png")

    # Patient opened: the history popup with the count and the list.
    patient = {"id_number": FIRST17 + check_digit(FIRST17), "name": "王小明", "patient_id": "M0012345"}
    started = time.monotonic()
    his(api, {"kind": "patient_opened", "doctor_id": doctor, "patient": patient})
    history = page.locator("#history-dialog")
    expect(history).to_be_visible()
    expect(history.locator("#history-count")).to_have_text("该患者在其他医院有 2 项检查")
    print(f"history popup after {time.monotonic() - started:.2f} s")
    rows = history.locator("li.exam")
    expect(rows).to_have_count(2)
    newest = rows.nth(0)
    expect(newest).to_contain_text(WH2_NAME)
    expect(newest).to_contain_text("已出终审报告")
    expect(newest).to_contain_text("可互认")
    # Links open new tabs, which do not share this tab's session: the token rides in the fragment.
    expect(newest.get_by_role("link", name="看影像")).to_have_attribute(
        "href", f"/app/viewer.html?study={studies[WH2]}#token={api.tokens['doctor']}")
    page.screenshot(path=ARTIFACTS / "plugin-2-history.png")

    # One click to the report: the other hospital's signed text, and the way on to the images.
    with page.context.expect_page() as opened:
        newest.get_by_role("link", name="看报告").click()
    report = opened.value
    report.set_default_timeout(10_000)
    expect(report.locator("#report-hospital")).to_have_text(WH2_NAME)
    expect(report.locator("#report-findings")).to_have_text("两肺纹理清晰")
    expect(report.locator("#report-impression")).to_have_text("胸部CT未见明显异常")
    expect(report.locator("#report-status")).to_have_text("终审报告")
    expect(report.locator("#report-critical")).to_be_hidden()
    expect(report).to_have_url(re.compile(r"/app/report\.html\?hospital=[^#]+$"))  # the token left the address
    expect(report.get_by_role("link", name="查看影像")).to_have_attribute(
        "href", re.compile(rf"^/app/viewer\.html\?study={re.escape(studies[WH2])}#token="))
    report.screenshot(path=ARTIFACTS / "plugin-2b-report.png")
    report.close()
    history.get_by_role("button", name="知道了").click()
    expect(history).to_be_hidden()
    expect(page.locator("#recent li")).to_have_count(1)

    # The doctor orders a chest CT: the duplicate popup lists both earlier exams.
    his(api, {"kind": "order", "doctor_id": doctor, "patient": patient, "order_id": "SQ100", "item_code": "CT01",
              "item_name": "胸部CT平扫", "modality": "CT"})
    dup = page.locator("#duplicate-dialog")
    expect(dup).to_be_visible()
    expect(dup).to_contain_text("SQ100")
    candidates = dup.locator("li.candidate")
    expect(candidates).to_have_count(2)
    page.screenshot(path=ARTIFACTS / "plugin-3-duplicates.png")

    # Decline the newer one: a reason is required, and "other" needs a text.
    candidates.filter(has_text=WH2_NAME).get_by_role("button", name="不予互认").click()
    decline = page.locator("#decline-dialog")
    expect(decline).to_be_visible()
    decline.get_by_role("button", name="确认不予互认").click()
    expect(decline.locator("#decline-error")).to_have_text("请选择不予互认的理由。")
    decline.get_by_label("理由（国家规定或本地规定）").select_option("other")
    expect(decline.get_by_label("请说明理由")).to_be_visible()
    decline.get_by_role("button", name="确认不予互认").click()
    expect(decline.locator("#decline-error")).to_have_text("选择“其他”时请填写说明。")
    decline.get_by_label("请说明理由").fill("患者术后复查需对比")
    page.screenshot(path=ARTIFACTS / "plugin-4-decline.png")
    decline.get_by_role("button", name="确认不予互认").click()
    expect(decline).to_be_hidden()
    expect(candidates.filter(has_text=WH2_NAME)).to_contain_text("已不予互认")

    # Accept the other: 已互认 on the item, in the popup and in the order list.
    candidates.filter(has_text=WH1_NAME).get_by_role("button", name="接受互认").click()
    expect(dup.locator(".dup-item h3 .tag.hr")).to_have_text("已互认")
    page.screenshot(path=ARTIFACTS / "plugin-5-accepted.png")
    dup.get_by_role("button", name="关闭").click()
    item = page.locator("#orders li[data-order='SQ100']")
    expect(item.locator(".tag.hr")).to_have_text("已互认")
    page.screenshot(path=ARTIFACTS / "plugin-6-order-hr.png")

    # What the views and the log hold: the decisions with who and why, the item marked HR.
    r = httpx.get(f"{api.base_url}/api/v1/doctor/orders/SQ100/items", timeout=10,
                  headers={"Authorization": f"Bearer {api.tokens['doctor']}"}).json()
    [chest] = r["items"]
    assert (chest["mark"], chest["label"], chest["status"]) == ("HR", "已互认", "accepted")
    decided = [(d["candidate_study_uid"], d["decision"], d["reason_code"], d["reason_text"], d["doctor_id"])
               for d in chest["decisions"]]
    assert decided == [(studies[WH2], "declined", "other", "患者术后复查需对比", doctor),
                       (studies[WH1], "accepted", None, None, doctor)]
    assert errors == []
    assert [f for f in failed if not f.endswith("/favicon.ico")] == []
