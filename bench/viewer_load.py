"""Viewer load time: a 300-slice 512x512 CT opened in the web viewer (headless Debian chromium, WebGL through
SwiftShader) from our DICOMweb API (``api/dicomweb.py``) on loopback.

    .venv/bin/python bench/viewer_load.py [--runs 3] [--slices 300] [--size 512] [--server wanying|orthanc]
                                          [--no-bundle]
    VIEWER_MARKS=1 ...   also prints each run's page marks and request timings on stderr

Prints ``viewer_load first_image_ms=<n> mpr_ready_ms=<n>``: medians over ``--runs`` runs, each in a fresh browser
profile (cold HTTP and code caches: a first visit), both in ms from the page's navigation start
(``performance.now()``):

- ``first_image_ms`` (page opened in stack mode): until the pixels of the series' first shown image (its middle
  slice, windowed) have been drawn onto a visible canvas and the browser has reached the next animation frame, the
  one that presents them. On our server that canvas is the viewer's first paint (``web/src/viewer/firstPaint.ts``:
  the raw frame from the series bundle, drawn before Cornerstone3D is evaluated; Cornerstone's own render of the
  same image replaces it 0.5-1 s later here); without a bundle (Orthanc, ``--no-bundle``) it is
  Cornerstone's first IMAGE_RENDERED of the stack. It spans: HTML and entry script, QIDO-RS series search, the
  bundle request until the header, the first frame by a Range request, decoding and drawing it.
- ``mpr_ready_ms`` (page opened with ``mode=mpr``): until the axial, sagittal and coronal viewports have been
  rendered from the complete volume (every slice in it) and the next animation frame is reached. It spans: the same
  start, Cornerstone's loading and start-up, the whole series streamed (in a worker that writes every raw frame,
  rescaled to HU, into one volume array: ``web/src/viewer/volume.ts``), the volume handed to Cornerstone, and the
  first render of the three views (texture upload included).

The series' bundles are built before the runs, as the platform builds them when a study completes
(``pipelines/dicomweb/prebuild.py``); otherwise run one would also wait for the build (``bench/series_load.py``
reports that cold case).
A second line names the server and the path the frames took (our series bundle, or WADO-RS frames: Orthanc, or
``--no-bundle``), and every run's figures.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.viewer.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.viewer.harness import orthanc_backend, wanying_backend  # noqa: E402
from tests.viewer.synthetic import Geometry, make_study  # noqa: E402

MARKS = bool(os.environ.get("VIEWER_MARKS"))  # diagnostics on stderr: the page's marks and requests
MARKS_JS = """[...performance.getEntriesByType('mark').map(m => m.name + '=' + Math.round(m.startTime)),
  ...performance.getEntriesByType('resource').map(r => r.name.split('/').pop().slice(0, 30) + ' ' +
     Math.round(r.startTime) + '/' + Math.round(r.responseStart) + '/' + Math.round(r.responseEnd))].join('\\n  ')"""


def measure(pw, url: str, wanted: str, workdir: Path, paths: list[dict]) -> int:
    profile = Path(tempfile.mkdtemp(prefix="viewer-bench-", dir=workdir))
    context = pw.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(url)
        try:
            page.wait_for_function(f"window.__viewer && window.__viewer.timings().{wanted} !== null",
                                   timeout=120_000)
        except Exception:
            raise SystemExit(f"viewer_load: no {wanted} after 120 s; status bar: "
                             f"{page.locator('#statusbar').inner_text()!r}; console: {problems}") from None
        paths.append(page.evaluate("window.__viewer.frameSources()"))
        if MARKS:
            print(wanted, page.evaluate(MARKS_JS), file=sys.stderr)
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
