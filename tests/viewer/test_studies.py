"""The study list page (a patient's studies by QIDO-RS, series thumbnails that open the viewer) on a desktop and a
phone, and the viewer freeing a series' memory when another takes its place."""
from __future__ import annotations

from datetime import date

import pytest

from tests.viewer.conftest import ARTIFACTS, open_viewer
from tests.viewer.harness import wanying_backend
from tests.viewer.synthetic import BONE, WATER, Geometry, another_series, make_study

pytestmark = pytest.mark.slow
PATIENT = "SYN0002"
SMALL = Geometry(size=64, slices=20)
V = "window.__viewer"


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    """Two studies of one patient; the newer has two series."""
    newer = make_study(SMALL, patient_id=PATIENT, study_date=date(2026, 10, 9), description="胸部CT平扫")
    second = another_series(newer)
    # RescaleSlope 0.5: the MPR volume of this one holds floating-point HU
    older = make_study(SMALL, patient_id=PATIENT, study_date=date(2024, 3, 1), description="头颅CT平扫", slope=0.5)
    with wanying_backend(tmp_path_factory.mktemp("studies"), [newer, second, older]) as (base, token):
        yield base, token, newer, second, older


def _open_list(context, base: str, token: str):
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/app/studies.html?patient={PATIENT}#token={token}")
    page.wait_for_function("document.body.dataset.ready === '1'")
    page.wait_for_function("[...document.querySelectorAll('.series-link img')].every(i => i.naturalWidth > 0)")
    return page


def test_study_list_newest_first_with_thumbnails_opens_the_viewer_on_a_series(desktop, patient):
    base, token, newer, second, older = patient
    page = _open_list(desktop, base, token)
    try:
        studies = page.locator(".study")
        assert studies.count() == 2
        assert studies.nth(0).get_attribute("data-study") == newer.study_uid  # newest first
        assert studies.nth(1).get_attribute("data-study") == older.study_uid
        assert "2026-10-09" in studies.nth(0).inner_text() and "胸部CT平扫" in studies.nth(0).inner_text()
        assert "CT" in studies.nth(0).locator(".facts").inner_text()
        assert studies.nth(0).locator(".series-link").count() == 2
        assert studies.nth(1).locator(".series-link").count() == 1
        assert page.locator("#status").inner_text() == "共 2 次检查"
        page.screenshot(path=str(ARTIFACTS / "studies-desktop.png"), full_page=True)
        page.locator(f".series-link[data-series='{second.series_uid}']").click()  # the second series, not the first
        page.wait_for_url("**/viewer.html?**")
        page.wait_for_function(f"document.body.dataset.ready === '1' && {V}.timings().firstImageMs !== null")
        label = page.locator(".overlay").first.inner_text()
        assert "骨算法" in label and page.evaluate(f"{V}.sliceCount(0)") == SMALL.slices
    finally:
        page.close()


def test_study_list_on_a_phone_and_an_unknown_patient(phone, patient):
    base, token, newer, _, _ = patient
    page = _open_list(phone, base, token)
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375  # nothing wider than the phone
        box = page.locator(".study").first.bounding_box()
        assert box["width"] <= 375 and box["x"] >= 0
        page.screenshot(path=str(ARTIFACTS / "studies-phone.png"), full_page=True)
        page.fill("#patient", "NOBODY-HERE")
        page.evaluate("delete document.body.dataset.ready")
        page.locator("#search button").tap()
        page.wait_for_function("document.body.dataset.ready === '1'")
        assert page.locator(".study").count() == 0
        assert page.locator("#status").inner_text() == "没有找到该患者的检查"
        page.locator(".app-bar").wait_for()
    finally:
        page.close()


def test_switching_series_repeatedly_frees_the_closed_series(desktop, patient):
    base, token, newer, second, _ = patient
    page = open_viewer(desktop, f"{base}/app/viewer.html?study={newer.study_uid}#token={token}")
    try:
        page.wait_for_function(f"{V}.frameSources().bundle > 0")
        frame_bytes = SMALL.size ** 2 * 2
        thumbs = page.locator(".thumb")
        assert thumbs.count() == 2
        peaks = []
        for round_ in range(4):
            index = (round_ + 1) % 2
            page.locator(f".thumb[data-series='{index}']").click()
            page.wait_for_function(f"{V}.sliceCount(0) === {SMALL.slices} && "
                                   f"document.querySelector('.overlay').textContent.includes("
                                   f"'{'骨算法' if index == 1 else 'Axial 2.5mm'}')")
            page.get_by_role("button", name="下一张").click()  # load another image of the series shown
            page.wait_for_timeout(300)
            memory = page.evaluate(f"{V}.memory()")
            peaks.append(memory)
            # only the series on screen is held: its bundle frames at most, and its decoded images at most
            assert memory["bundleBytes"] <= SMALL.slices * frame_bytes, memory
            assert memory["cacheBytes"] <= SMALL.slices * SMALL.size ** 2 * 4, memory
        assert peaks[-1]["cacheBytes"] <= peaks[1]["cacheBytes"] * 1.01  # no growth round after round
        assert page.errors == []
    finally:
        page.close()


def test_mpr_volume_of_a_fractional_slope_series_holds_exact_hu(desktop, patient):
    """HU = stored x 0.5 - 1024 are not integers in general: the volume built from the bundle is then 32-bit float."""
    base, token, _, _, older = patient
    page = desktop.new_page()
    try:
        page.goto(f"{base}/app/viewer.html?study={older.study_uid}&mode=mpr#token={token}")
        page.wait_for_function(f"window.__viewer && {V}.timings().mprReadyMs !== null", timeout=60_000)
        assert page.evaluate(f"{V}.frameSources()") == {"bundle": SMALL.slices, "wadors": 0}
        for (row, column), hu in (((SMALL.rod[0], SMALL.rod[1]), BONE), ((SMALL.centre, SMALL.centre), WATER)):
            point = page.evaluate(f"(w) => {V}.worldToClient(0, w)", list(SMALL.world(row, column, SMALL.slices // 2)))
            assert page.evaluate(f"(p) => {V}.huAt(...p)", point) == hu
        assert page.evaluate(f"{V}.memory().cacheBytes") >= 4 * SMALL.size ** 2 * SMALL.slices  # float32 voxels
    finally:
        page.close()
