"""The image viewer in headless chromium against a DICOMweb server holding synthetic CTs of known geometry: every
tool's result is checked against what the phantom was built with (see tests/viewer/synthetic.py)."""
from __future__ import annotations

import io
import math
import time

import pytest
from PIL import Image

from tests.viewer.conftest import ARTIFACTS, GEOMETRY, PRIOR_GEOMETRY, open_viewer
from tests.viewer.synthetic import AIR, BONE, CHECKER_HIGH, CHECKER_LOW, WATER

pytestmark = pytest.mark.slow
G = GEOMETRY
V = "window.__viewer"


def hook(page, call: str, *args):
    return page.evaluate(f"(args) => {V}.{call}(...args)", list(args))


def pixel(page, viewport: int, row: float, column: float) -> tuple[float, float]:
    """Page point of the centre of image pixel (row, column) on the slice a stack viewport shows."""
    return tuple(hook(page, "imageToClient", viewport, column, row))


def drag(page, start, end, steps: int = 8) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()
    page.wait_for_timeout(300)  # tools compute their statistics on the next render


def measurement(page, tool: str, key: str) -> dict:
    """The newest measurement once its tool has computed ``key`` (tools compute statistics on a later render)."""
    page.wait_for_function(
        f"(m => m !== null && m.tool === '{tool}' && typeof m.{key} === 'number')({V}.lastMeasurement())")
    return hook(page, "lastMeasurement")


def wheel(page, at, steps: int, delta: int = 100) -> None:
    page.mouse.move(*at)
    for _ in range(steps):
        page.mouse.wheel(0, delta)
        page.wait_for_timeout(60)


def viewport_centre(page, index: int = 0) -> tuple[float, float]:
    box = page.locator(".vp").nth(index).bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def shot(page, name: str) -> Image.Image:
    data = page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    return Image.open(io.BytesIO(data)).convert("L")


def choose_tool(page, label: str) -> None:
    page.get_by_role("button", name=label, exact=True).click()


@pytest.fixture
def viewer(desktop, exams):
    page = open_viewer(desktop, exams.viewer_url())
    yield page
    assert page.errors == []  # no uncaught error in the page
    page.close()


def test_series_list_thumbnails_stack_paging_and_wheel(viewer):
    page = viewer
    page.wait_for_function("[...document.querySelectorAll('.thumb img')].every(i => i.naturalWidth > 0)")
    assert page.locator(".thumb").count() == 1
    assert hook(page, "sliceCount", 0) == G.slices
    start = hook(page, "sliceIndex", 0)
    assert start == G.slices // 2
    wheel(page, viewport_centre(page), 5)
    page.wait_for_function(f"{V}.sliceIndex(0) !== {start}")
    after = hook(page, "sliceIndex", 0)
    assert abs(after - start) == 5
    wheel(page, viewport_centre(page), 5, delta=-100)
    page.wait_for_function(f"{V}.sliceIndex(0) === {start}")
    page.get_by_role("button", name="下一张").click()
    page.wait_for_function(f"{V}.sliceIndex(0) === {start + 1}")
    page.get_by_role("button", name="上一张").click()
    page.wait_for_function(f"{V}.sliceIndex(0) === {start}")
    page.get_by_role("button", name="上一张").click()
    page.wait_for_function(f"{V}.sliceIndex(0) === {start - 1}")
    page.wait_for_function(f"document.querySelector('.overlay').textContent.includes('第 {start}/{G.slices} 张')")
    shot(page, "stack")


def test_window_presets_invert_and_drag(viewer):
    page = viewer
    expected = {"肺窗": (1500, -600), "纵隔窗": (350, 40), "骨窗": (2000, 500), "脑窗": (80, 40), "腹部": (400, 50)}
    for name, (width, centre) in expected.items():
        page.select_option("#preset", name)
        assert hook(page, "windowLevel", 0) == {"width": width, "center": centre}
    assert hook(page, "inverted", 0) is False
    page.get_by_role("button", name="反相").click()
    assert hook(page, "inverted", 0) is True
    shot(page, "inverted")
    page.get_by_role("button", name="反相").click()
    before = hook(page, "windowLevel", 0)
    x, y = viewport_centre(page)
    drag(page, (x, y), (x + 80, y + 60))
    after = hook(page, "windowLevel", 0)
    assert after["width"] != before["width"] and after["center"] != before["center"]


def test_hu_under_cursor_and_probe_on_a_later_slice(viewer):
    page = viewer
    start = hook(page, "sliceIndex", 0)
    page.get_by_role("button", name="下一张").click()
    page.wait_for_function(f"{V}.sliceIndex(0) === {start + 1}")
    page.get_by_role("button", name="下一张").click()
    page.wait_for_function(f"{V}.sliceIndex(0) === {start + 2}")
    page.wait_for_timeout(200)
    rod_row, rod_col, _ = G.rod
    r0, _, c0, _ = G.checker
    assert hook(page, "huAt", *pixel(page, 0, rod_row, rod_col)) == BONE
    assert hook(page, "huAt", *pixel(page, 0, G.centre + 5, G.centre - 5)) == WATER
    assert hook(page, "huAt", *pixel(page, 0, 3, 3)) == AIR
    assert hook(page, "huAt", *pixel(page, 0, r0, c0)) == CHECKER_LOW  # even row+column: the low squares
    page.mouse.move(*pixel(page, 0, rod_row, rod_col))
    assert page.locator("#statusbar").inner_text() == f"CT值 {BONE} HU"
    choose_tool(page, "CT值")
    page.mouse.click(*pixel(page, 0, rod_row, rod_col))
    assert measurement(page, "probe", "hu")["hu"] == BONE


def test_length_and_angle_in_millimetres_and_degrees(viewer):
    page = viewer
    choose_tool(page, "测距")
    row = G.centre
    drag(page, pixel(page, 0, row, 20), pixel(page, 0, row, 100))
    length = measurement(page, "length", "length")
    assert length["length"] == pytest.approx(80 * G.pixel_mm, abs=0.5)
    assert "长度" in page.locator("#statusbar").inner_text()
    choose_tool(page, "角度")
    a, vertex, b = (40, 40), (64, 64), (40, 88)  # (row, column): a right angle at the vertex
    page.mouse.click(*pixel(page, 0, *a))
    page.mouse.click(*pixel(page, 0, *vertex))
    page.mouse.click(*pixel(page, 0, *b))
    angle = measurement(page, "angle", "angle")
    assert angle["angle"] == pytest.approx(90, abs=1)
    shot(page, "length-angle")


def test_roi_mean_sd_and_area(viewer):
    page = viewer
    choose_tool(page, "区域统计")
    r0, r1, c0, c1 = G.checker  # a 20/60 HU checkerboard: mean 40, SD 20
    centre = ((r0 + r1) // 2, (c0 + c1) // 2)
    semi_axes = (min(r1 - r0, c1 - c0) // 2 - 3, min(r1 - r0, c1 - c0) // 2 - 4)
    # the ellipse is drawn from its centre to the corner of its bounding box
    drag(page, pixel(page, 0, *centre), pixel(page, 0, centre[0] + semi_axes[0], centre[1] + semi_axes[1]))
    roi = measurement(page, "roi", "stdDev")
    assert (roi["min"], roi["max"]) == (CHECKER_LOW, CHECKER_HIGH)  # wholly inside the checkerboard
    assert roi["mean"] == pytest.approx(40, abs=2)
    assert roi["stdDev"] == pytest.approx(20, abs=1.5)
    expected_area = math.pi * semi_axes[0] * semi_axes[1] * G.pixel_mm**2
    assert roi["area"] == pytest.approx(expected_area, rel=0.1)
    assert page.locator("#statusbar").inner_text().startswith("均值 ")
    shot(page, "roi")


def test_cine_with_speed_control(viewer):
    page = viewer
    page.eval_on_selector("#fps", "e => { e.value = '20'; e.dispatchEvent(new Event('input')); }")
    assert page.locator("#fps-value").inner_text() == "20 帧/秒"
    start = hook(page, "sliceIndex", 0)
    page.get_by_role("button", name="播放").click()
    page.wait_for_timeout(1200)
    assert hook(page, "cinePlaying") is True
    assert hook(page, "sliceIndex", 0) != start
    page.get_by_role("button", name="停止").click()
    page.wait_for_timeout(300)  # a frame already requested may still arrive
    stopped = hook(page, "sliceIndex", 0)
    page.wait_for_timeout(500)
    assert hook(page, "sliceIndex", 0) == stopped and hook(page, "cinePlaying") is False


def test_zoom_pan_and_layouts(viewer):
    page = viewer
    zoom = hook(page, "zoom", 0)
    choose_tool(page, "缩放")
    x, y = viewport_centre(page)
    drag(page, (x, y), (x, y - 120))
    zoomed = hook(page, "zoom", 0)
    assert zoomed != pytest.approx(zoom, rel=0.05)
    choose_tool(page, "平移")
    rod = pixel(page, 0, G.rod[0], G.rod[1])
    drag(page, (x, y), (x + 50, y + 30))
    moved = pixel(page, 0, G.rod[0], G.rod[1])
    assert moved[0] - rod[0] == pytest.approx(50, abs=3) and moved[1] - rod[1] == pytest.approx(30, abs=3)
    for layout, count in (("1×2", 2), ("2×2", 4), ("1×1", 1)):
        page.get_by_role("button", name=layout).click()
        page.wait_for_function(f"{V}.viewportCount() === {count} && {V}.layout() === '{layout.replace('×', 'x')}'")
        if count == 4:
            shot(page, "layout-2x2")


def test_prior_comparison_follows_scroll_window_zoom_and_pan(viewer, exams):
    page = viewer
    page.get_by_role("button", name="对比前次").click()
    page.wait_for_function(f"{V}.mode() === 'compare' && {V}.viewportCount() === 2 && {V}.comparisonOffsetMm() !== null")
    # different frames of reference, 300 mm apart: the registered offset is between the two stacks' positions
    assert hook(page, "comparisonOffsetMm") == pytest.approx(PRIOR_GEOMETRY.z0 - G.z0, abs=0.01)
    current, prior = hook(page, "sliceIndex", 0), hook(page, "sliceIndex", 1)
    wheel(page, viewport_centre(page, 0), 4)
    page.wait_for_function(f"{V}.sliceIndex(1) !== {prior}")
    moved = hook(page, "sliceIndex", 0) - current
    assert abs(moved) == 4
    page.wait_for_function(f"{V}.sliceIndex(1) === {prior + moved}")
    page.mouse.click(*viewport_centre(page, 0))
    page.select_option("#preset", "肺窗")
    page.wait_for_timeout(200)
    assert hook(page, "windowLevel", 1) == {"width": 1500, "center": -600}
    choose_tool(page, "缩放")
    x, y = viewport_centre(page, 0)
    drag(page, (x, y), (x, y - 100))
    page.wait_for_timeout(200)
    assert hook(page, "zoom", 1) == pytest.approx(hook(page, "zoom", 0), rel=1e-3)
    assert hook(page, "zoom", 0) != pytest.approx(1, rel=0.05)
    # pan: dragging the current exam moves the prior's image by the same screen distance (same phantom layout)
    choose_tool(page, "平移")
    before = [pixel(page, i, G.rod[0], G.rod[1]) for i in (0, 1)]
    drag(page, (x, y), (x + 40, y + 25))
    page.wait_for_timeout(200)
    after = [pixel(page, i, G.rod[0], G.rod[1]) for i in (0, 1)]
    for i in (0, 1):
        assert after[i][0] - before[i][0] == pytest.approx(40, abs=3)
        assert after[i][1] - before[i][1] == pytest.approx(25, abs=3)
    shot(page, "comparison")


def test_mpr_mip_slab_and_volume_rendering(viewer):
    page = viewer
    page.get_by_role("button", name="多平面重建").click()
    page.wait_for_function(f"{V}.timings().mprReadyMs !== null", timeout=60_000)
    assert hook(page, "viewportCount") == 3
    rod_world = G.world(G.rod[0], G.rod[1], G.slices // 2)
    for index in range(3):  # axial, sagittal, coronal all cross the rod there
        point = hook(page, "worldToClient", index, list(rod_world))
        if index == 0:
            assert hook(page, "huAt", *point) == BONE
    bead_world = G.world(G.bead[0], G.bead[1], G.bead_slice)
    bead_point = hook(page, "worldToClient", 0, list(bead_world))
    assert hook(page, "huAt", *bead_point) == WATER  # the axial slice shown is not the bead's
    page.mouse.click(*viewport_centre(page, 0))
    page.select_option("#preset", "腹部")
    page.wait_for_timeout(300)
    x, y = round(bead_point[0]), round(bead_point[1])
    before = shot(page, "mpr").getpixel((x, y))
    page.fill("#slab", "30")
    page.get_by_role("button", name="MIP").click()
    page.wait_for_function(f"{V}.slab(0) >= 29")
    page.wait_for_timeout(500)
    after = shot(page, "mip").getpixel((x, y))
    assert before < 160 and after > 240  # water grey without the slab, the bead's white inside it
    started = time.monotonic()
    page.get_by_role("button", name="三维").click()
    page.wait_for_function(f"{V}.timings().vrReadyMs !== null", timeout=90_000)
    page.wait_for_timeout(1000)
    box = page.locator(".vp").nth(3).bounding_box()
    top = int(box["y"] + 40)  # below the label
    rendering = shot(page, "volume-rendering").crop(
        (int(box["x"]), top, int(box["x"] + box["width"]), int(box["y"] + box["height"])))
    background = rendering.getpixel((2, 2))
    drawn = sum(1 for value in rendering.tobytes() if abs(value - background) > 40)
    # the bone rod, seen from the front, is drawn: a bar well above a few stray pixels
    assert drawn > 0.01 * rendering.width * rendering.height, f"3D looks empty ({time.monotonic() - started:.1f}s)"


def test_phone_size_touch(phone, exams):
    page = open_viewer(phone, exams.viewer_url())
    try:
        box = page.locator(".vp").first.bounding_box()
        assert box["width"] >= 360 and box["height"] >= 250
        assert page.locator("#series .thumb").first.is_visible()
        start = hook(page, "sliceIndex", 0)
        page.get_by_role("button", name="下一张").tap()
        page.wait_for_function(f"{V}.sliceIndex(0) === {start + 1}")
        before = hook(page, "windowLevel", 0)
        cdp = page.context.new_cdp_session(page)
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        for step in range(1, 9):
            cdp.send("Input.dispatchTouchEvent",
                     {"type": "touchMove", "touchPoints": [{"x": x + 8 * step, "y": y + 6 * step}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        page.wait_for_timeout(200)
        assert hook(page, "windowLevel", 0) != before  # one finger adjusts the window
        shot(page, "phone")
        assert page.errors == []
    finally:
        page.close()


def test_rejected_token_is_explained(desktop, our_exams):
    page = desktop.new_page()
    try:
        page.goto(our_exams.viewer_url().replace(our_exams.token, "wy_doctor_not-a-token"))
        page.wait_for_function("document.querySelector('#statusbar').classList.contains('error')")
        assert page.locator("#statusbar").inner_text() == "影像加载失败：登录已过期，请重新从链接打开本页。"
    finally:
        page.close()
