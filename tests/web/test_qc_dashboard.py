"""The regulator's QC dashboard in headless chromium against the real API over the demo world (scale 0.2) after the
live QC worker scored it: the charts show every scored series, the worst series drills down to its image with the
failed checks listed, and CSV and Excel exports download with one row per series."""
from __future__ import annotations

import csv
import io
import json

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from qc.worker import worker_for
from streams.processors.qc_views import qc_latest
from tests.web.conftest import ARTIFACTS
from wanying.demo import load_demo

pytestmark = pytest.mark.slow
SHOTS = ARTIFACTS / "qc"


def test_dashboard_charts_drill_down_and_export(live_api, desk, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    platform = live_api.platform
    load_demo(platform, scale=0.2)
    stats = worker_for(platform).run_until_idle()
    platform.runner().run_until_caught_up()
    with platform.views_engine.connect() as conn:
        latest = [dict(r) for r in conn.execute(sa.select(qc_latest).order_by(qc_latest.c.total,
                                                                               qc_latest.c.series_uid)).mappings()]
    assert stats.scored == len(latest) > 0

    page = desk
    page.goto(f"{live_api.base_url}/app/qc.html#token={live_api.tokens['regulator']}")
    expect(page.locator("body[data-ready='1']")).to_be_attached()
    expect(page.locator("#kpi-series")).to_have_text(str(len(latest)))
    for chart in ("chart-hospital", "chart-body-part", "chart-month"):
        assert page.locator(f"#{chart}").get_attribute("data-points") == str(len(latest)), chart
    months = {r["month"] for r in latest}
    assert page.locator("#chart-trend").get_attribute("data-points") == str(len(months))
    failing = {(r["protocol"], c) for r in latest for c in r["failed"].split(",") if c}
    assert page.locator("#chart-checks").get_attribute("data-points") == str(min(10, len(failing)))
    rows = page.locator("#series-body tr")
    expect(rows).to_have_count(min(100, len(latest)))
    page.screenshot(path=SHOTS / "qc-1-dashboard.png", full_page=True)

    # Drill-down: the worst series with a located failure, its image with the failures boxed and listed.
    def located(row):
        return [c for c in json.loads(row["failed_checks"]) if c.get("sop_uid") == row["sop_uid"]
                and c.get("where") and ("bbox" in c["where"] or "edge" in c["where"])]

    worst = next(r for r in latest if located(r))
    page.locator(f"#series-body tr[data-series='{worst['series_uid']}'] button").click()
    dialog = page.locator("#detail")
    expect(dialog).to_be_visible()
    expect(page.locator("#detail-image[data-loaded='1']")).to_be_attached()
    failed = json.loads(worst["failed_checks"])
    expect(page.locator("#detail-checks li[data-check]")).to_have_count(len(failed))
    for check in failed:
        expect(page.locator(f"#detail-checks li[data-check='{check['id']}']")).to_contain_text(check["label"])
    expect(page.locator("#detail-summary")).to_contain_text(worst["grade"])
    size = page.evaluate("() => [document.querySelector('#detail-image').naturalWidth, "
                         "document.querySelector('#detail-image').naturalHeight]")
    assert min(size) > 32
    expect(page.locator("#detail-caption")).to_contain_text(f"红框标出 {len(located(worst))} 处")
    red = page.evaluate("""() => {
        const img = document.querySelector('#detail-image'), c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 90 && d[i + 2] < 90) n++;
        return n; }""")
    assert red > 20, "no marked box on the image"
    dialog.screenshot(path=SHOTS / "qc-2-drill-down.png")
    page.locator("#detail-close").click()
    expect(dialog).to_be_hidden()

    # Exports: the same rows as the view, worst first.
    with page.expect_download() as got:
        page.get_by_role("button", name="导出 CSV").click()
    text = open(got.value.path(), encoding="utf-8-sig").read()
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][:4] == ["医院", "月份", "检查日期", "设备类型"] and len(table) == len(latest) + 1
    assert [r[-2] for r in table[1:]] == [r["series_uid"] for r in latest]
    with page.expect_download() as got:
        page.get_by_role("button", name="导出 Excel").click()
    from openpyxl import load_workbook

    assert got.value.suggested_filename.endswith(".xlsx")
    saved = tmp_path / got.value.suggested_filename
    got.value.save_as(saved)
    sheet = load_workbook(saved).active
    assert sheet.max_row == len(latest) + 1 and sheet.cell(1, 12).value == "总分"
    assert sorted(sheet.cell(r, 13).value for r in range(2, sheet.max_row + 1)) == sorted(r["grade"] for r in latest)
    page.screenshot(path=SHOTS / "qc-3-exported.png")

    # A doctor is not a regulator: the page says so instead of showing figures.
    page.goto(f"{live_api.base_url}/app/qc.html?as=doctor#token={live_api.tokens['doctor']}")
    expect(page.locator("#status")).to_contain_text("无权限")
