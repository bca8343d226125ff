"""The viewer's fast path: on our server a series comes in one streamed bundle request (no per-frame WADO-RS), with
exactly the modality values (HU) of the standard WADO-RS path; on any other DICOMweb server (the Orthanc run) the
bundle request fails and the viewer reads WADO-RS frames."""
from __future__ import annotations

import pytest

from tests.viewer.conftest import GEOMETRY, open_viewer
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


def test_mpr_volume_fills_from_the_bundle(desktop, exams):
    page = desktop.new_page()
    try:
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
    finally:
        page.close()
