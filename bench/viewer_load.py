"""Viewer load time: a 300-slice 512x512 CT opened in the web viewer (headless Debian chromium, WebGL through
SwiftShader) from our DICOMweb API (``api/dicomweb.py``) on loopback.

    .venv/bin/python bench/viewer_load.py [--runs 3] [--slices 300] [--size 512] [--server wanying|orthanc]
                                          [--no-bundle]

Prints ``viewer_load first_image_ms=<n> mpr_ready_ms=<n>``: medians over ``--runs`` fresh browser profiles, both
measured from navigation start (``performance.now()`` in the page): the first stack image drawn, and the three MPR
viewports drawn from the fully loaded volume (page opened with ``mode=mpr``). A second line names the server and
the path the frames took (our series bundle, or WADO-RS frames: Orthanc, or ``--no-bundle``).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.viewer.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.viewer.harness import orthanc_backend, wanying_backend  # noqa: E402
from tests.viewer.synthetic import Geometry, make_study  # noqa: E402


def measure(pw, url: str, wanted: str, workdir: Path, paths: list[dict]) -> int:
    profile = Path(tempfile.mkdtemp(prefix="viewer-bench-", dir=workdir))
    context = pw.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(url)
        try:
            page.wait_for_function(f"window.__viewer && window.__viewer.timings().{wanted} !== null",
                                   timeout=120_000)
        except Exception:
            raise SystemExit(f"viewer_load: no {wanted} after 120 s; status bar: "
                             f"{page.locator('#statusbar').inner_text()!r}") from None
        paths.append(page.evaluate("window.__viewer.frameSources()"))
        return int(page.evaluate(f"window.__viewer.timings().{wanted}"))
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--server", choices=("wanying", "orthanc"), default="wanying")
    parser.add_argument("--no-bundle", dest="bundle", action="store_false",
                        help="WADO-RS frames only (the viewer's ?bundle=0), for comparison")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    study = make_study(Geometry(size=args.size, slices=args.slices, pixel_mm=0.7, slice_mm=1.0, z0=-150.0))
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="viewer-bench-")))
        if args.server == "orthanc":
            base, token = stack.enter_context(orthanc_backend(workdir, [study])), "no-auth"
            server = "server=orthanc (Debian Orthanc 1.10 + DICOMweb plugin 1.7, behind a same-origin forwarder)"
        else:
            base, token = stack.enter_context(wanying_backend(workdir, [study]))
            server = "server=wanying (api/dicomweb.py under uvicorn)"
        pw = stack.enter_context(sync_playwright())
        url = f"{base}/app/viewer.html?study={study.study_uid}" + ("" if args.bundle else "&bundle=0")
        paths: list[dict] = []
        first = [measure(pw, f"{url}#token={token}", "firstImageMs", workdir, paths) for _ in range(args.runs)]
        mpr = [measure(pw, f"{url}&mode=mpr#token={token}", "mprReadyMs", workdir, paths) for _ in range(args.runs)]
    print(f"viewer_load first_image_ms={round(statistics.median(first))} mpr_ready_ms={round(statistics.median(mpr))}")
    bundle, wadors = sum(p["bundle"] for p in paths), sum(p["wadors"] for p in paths)
    path = "series bundle" if bundle and not wadors else "WADO-RS frames" if not bundle else "mixed"
    print(f"{server}; path={path} (frames: bundle={bundle} wadors={wadors}); runs first={first} mpr={mpr}")


if __name__ == "__main__":
    main()
