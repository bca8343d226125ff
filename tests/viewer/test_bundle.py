"""The viewer's fast path: on our server a series comes in one streamed bundle request (no per-frame WADO-RS), with
exactly the modality values (HU) of the standard WADO-RS path; on any other DICOMweb server (the Orthanc run) the
bundle request fails and the viewer reads WADO-RS frames."""
from __future__ import annotations

import numpy as np
import pytest

from tests.viewer.conftest import ARTIFACTS, GEOMETRY, open_viewer
from tests.viewer.synthetic import BONE

pytestmark = pytest.mark.slow
V = "window.__viewer"


def sources(page) -> dict:
    return page.evaluate(f"{V}.frameSources()")


def values_of_slices(page, steps: int) -> list[list[float]]:
    """The HU of every pixel of the middle slice and of ``steps`` slices after it (paging with 下一张)."""
    shown = [page.evaluate(f"{V}.imageValues(0)")]
    for _ in range(steps):
        index = page.evaluate(f"{V}.sliceIndex(0)")
        page.get_by_role("button", name="下一张").click()
        page.wait_for_function(f"{V}.sliceIndex(0) === {index + 1} && {V}.imageValues(0) !== null")
        shown.append(page.evaluate(f"{V}.imageValues(0)"))
    return shown


def test_bundle_path_is_used_and_gives_the_wado_rs_values(desktop, exams):
    ours = exams.token != "no-auth"
    requests: list[str] = []
    # the stream (the first image may also come ahead of it by a Range request): only whole-bundle reads count
    record = lambda request: "range" in request.headers or requests.append(request.url)  # noqa: E731
    desktop.on("request", record)
    try:
        fast = open_viewer(desktop, exams.viewer_url())
        fast_values = values_of_slices(fast, 3)
        fast_sources = sources(fast)
        fast.close()
        fast_requests, requests[:] = list(requests), []

        standard = open_viewer(desktop, exams.viewer_url(bundle="0"))
        standard_values = values_of_slices(standard, 3)
        standard_sources = sources(standard)
        standard.close()
        standard_requests = list(requests)
    finally:
        desktop.remove_listener("request", record)

    bundle_requests = [u for u in fast_requests if "/bundle?" in u]
    frame_requests = [u for u in fast_requests if "/frames/" in u]
    assert len(bundle_requests) == 1, bundle_requests  # one series, one streamed request
    if ours:
        assert frame_requests == []
        assert fast_sources["wadors"] == 0 and fast_sources["bundle"] >= 4
    else:  # Orthanc has no bundle: WADO-RS frames
        assert frame_requests and fast_sources["bundle"] == 0
    assert not [u for u in standard_requests if "/bundle?" in u]
    assert [u for u in standard_requests if "/frames/" in u] and standard_sources["bundle"] == 0

    assert len(fast_values) == 4 and all(v is not None and len(v) == GEOMETRY.size ** 2 for v in fast_values)
    assert fast_values == standard_values  # every pixel's HU, bit for bit
    assert min(fast_values[0]) < max(fast_values[0])  # an image, not a blank


LOW_MEMORY = "Object.defineProperty(Navigator.prototype, 'deviceMemory', { get: () => 2 })"


@pytest.mark.parametrize("device", ["desktop", "low-memory"])
def test_mpr_volume_fills_from_the_bundle(desktop, exams, device):
    """Float voxels on a desktop; 16-bit voxels (half the memory) on a device with under 4 GB; HU exact in both."""
    page = desktop.new_page()
    try:
        if device == "low-memory":
            page.add_init_script(LOW_MEMORY)
        page.goto(exams.viewer_url(mode="mpr"))
        page.wait_for_function(f"window.__viewer && {V}.timings().mprReadyMs !== null", timeout=60_000)
        counted = sources(page)
        if exams.token != "no-auth":
            assert counted["wadors"] == 0 and counted["bundle"] >= GEOMETRY.slices
        else:
            assert counted["bundle"] == 0 and counted["wadors"] >= GEOMETRY.slices
        rod = GEOMETRY.world(GEOMETRY.rod[0], GEOMETRY.rod[1], GEOMETRY.slices // 2)
        point = page.evaluate(f"(w) => {V}.worldToClient(0, w)", list(rod))
        assert page.evaluate(f"(p) => {V}.huAt(...p)", point) == BONE
        if exams.token != "no-auth":  # our volume, built from the bundle: its voxel type
            voxels = GEOMETRY.size ** 2 * GEOMETRY.slices
            held = page.evaluate(f"{V}.memory().cacheBytes")
            assert held == (2 if device == "low-memory" else 4) * voxels
    finally:
        page.close()


def _landmarks(grey):
    """Where the phantom's body (left, top, right, bottom) and bone rod (centre) are on screen, and water's grey."""
    rows, cols = np.nonzero(grey > 60)
    body = (cols.min(), rows.min(), cols.max(), rows.max())
    rod_rows, rod_cols = np.nonzero(grey > 230)
    centre = grey[rows.min() + (rows.max() - rows.min()) // 2 + np.arange(-5, 5)][:, (cols.min() + cols.max()) // 2]
    return body, (rod_cols.mean(), rod_rows.mean()), float(np.median(centre))


def test_first_image_is_drawn_before_cornerstone_and_matches_its_render(desktop, our_exams):
    """The first paint (raw frame from the bundle, on a plain canvas) shows the image Cornerstone then shows: same
    slice, window and fit. Checked with Cornerstone's chunk blocked, then against Cornerstone's own render."""
    import io

    from PIL import Image, ImageStat

    def centre_crop(page) -> Image.Image:
        box = page.locator(".cell").first.bounding_box()
        shot = Image.open(io.BytesIO(page.screenshot())).convert("L")
        # the middle of the cell: the image, away from the overlay text in the corner
        cx, cy, half = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, min(box["width"], box["height"]) / 3
        return shot.crop((int(cx - half), int(cy - half), int(cx + half), int(cy + half)))

    early = desktop.new_page()
    try:
        early.route("**/assets/app-*.js", lambda route: route.abort())
        early.goto(our_exams.viewer_url())
        early.wait_for_selector(".first-paint", state="attached", timeout=30_000)
        early.wait_for_timeout(300)
        assert early.evaluate("window.__viewer === undefined")  # Cornerstone never ran
        first = centre_crop(early)
    finally:
        early.close()
    page = open_viewer(desktop, our_exams.viewer_url())
    try:
        page.wait_for_timeout(300)
        assert page.locator(".first-paint").count() == 0  # handed over
        later = centre_crop(page)
    finally:
        page.close()
    first.save(ARTIFACTS / "first-paint.png")
    later.save(ARTIFACTS / "first-paint-cornerstone.png")
    assert ImageStat.Stat(first).stddev[0] > 20  # an image, not a blank canvas
    drawn = [_landmarks(np.asarray(image, dtype=float)) for image in (first, later)]
    (body0, rod0, water0), (body1, rod1, water1) = drawn
    size = body1[2] - body1[0]
    assert np.allclose(body0, body1, atol=0.03 * size), drawn  # the same fit: the body's edges within 3 %
    assert np.allclose(rod0, rod1, atol=0.03 * size), drawn  # the bone rod at the same place
    assert abs(water0 - water1) <= 3, drawn  # the same window: water's grey level
