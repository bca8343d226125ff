"""The regulator's mutual-recognition page in headless chromium against the real API: after doctors at two
hospitals accepted and declined earlier exams, the page shows found / accepted / declined and the rate, the
refusal reasons, a per-hospital filter, and a CSV export with the same figures. Screenshots in tests/artifacts/."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import httpx
import pytest
from playwright.sync_api import expect

from streams.topics import publish
from tests.doctor.stream import CT_CHEST, HF1, HF2, WH1, WH2, DoctorStream, local
from tests.web.conftest import ARTIFACTS

pytestmark = pytest.mark.slow
DAY = date(2026, 9, 1)
HF1_NAME, HF2_NAME = "合肥市第一人民医院", "合肥市第二人民医院"


@pytest.fixture
def decided(live_api):
    """Three ordered chest CTs with earlier exams: HF1 accepts one and declines one (image quality), HF2 declines
    one (other, with a text)."""
    platform = live_api.platform
    b = DoctorStream(keys=platform.keys)
    for n, (orderer, decision, reason) in enumerate([(HF1, "accepted", None), (HF1, "declined", "image_quality"),
                                                     (HF2, "declined", "other")]):
        pk = b.person(f"3401041985061{n:03d}0"[:17])
        earlier = b.exam(pk, WH1 if n % 2 else WH2, DAY, CT_CHEST)
        b.checked_order(pk, orderer, f"O{n}", local(DAY + timedelta(days=10)), CT_CHEST)
        b.decision(pk, orderer, f"O{n}", CT_CHEST, earlier, decision, reason, "患者要求" if reason == "other" else None)
    publish(platform.log, b.events)
    platform.runner().run_until_caught_up()
    return live_api


def test_recognition_figures_filter_and_export(decided, desk):
    api = decided
    stats = httpx.get(f"{api.base_url}/api/v1/doctor/statistics", timeout=10,
                      headers={"Authorization": f"Bearer {api.tokens['regulator']}"}).json()
    assert stats["totals"] | {"recognition_rate": None} == {
        "duplicates_found": 3, "candidates": 3, "decided": 3, "accepted": 1, "declined": 2, "recognition_rate": None}
    assert stats["names"]["hospitals"] == {HF1: HF1_NAME, HF2: HF2_NAME}

    page = desk
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not m.text.startswith(
        "Failed to load resource") else None)
    failed: list[str] = []  # failed loads, by their responses (the browser's own favicon request aside)
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400
            and not r.url.endswith("/favicon.ico") else None)
    page.goto(f"{api.base_url}/app/recognition.html#token={api.tokens['regulator']}")
    expect(page.locator("body[data-ready='1']")).to_be_attached()
    expect(page.locator("#kpi-found")).to_have_text("3")
    expect(page.locator("#kpi-accepted")).to_have_text("1")
    expect(page.locator("#kpi-declined")).to_have_text("2")
    expect(page.locator("#kpi-rate")).to_have_text("33.3%")
    assert page.locator("#chart-hospital").get_attribute("data-points") == "2"
    assert page.locator("#chart-reasons").get_attribute("data-points") == "2"  # image_quality, other
    assert page.locator("#chart-month").get_attribute("data-points") == "1"
    expect(page.locator("#rows tr")).to_have_count(2)  # (HF1, chest CT, 2026-09), (HF2, chest CT, 2026-09)
    page.screenshot(path=ARTIFACTS / "recognition-1-all.png", full_page=True)

    page.locator("#f-hospital").select_option(HF1)
    expect(page.locator("#kpi-rate")).to_have_text("50.0%")
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator("#rows tr")).to_contain_text(HF1_NAME)
    page.screenshot(path=ARTIFACTS / "recognition-2-hf1.png", full_page=True)

    with page.expect_download() as download:
        page.locator("#export-csv").click()
    text = download.value.path().read_bytes().decode("utf-8-sig")
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert (row["医院"], row["月份"], row["已互认"], row["不予互认"], row["互认率"]) == (HF1_NAME, "2026-09", "1", "1",
                                                                                   "50.0%")
    assert (errors, failed) == ([], [])
