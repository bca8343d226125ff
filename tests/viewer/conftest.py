"""Viewer browser-test fixtures: one DICOMweb backend with a current and a prior synthetic CT per session, and the
Debian chromium (WebGL through SwiftShader) driven by playwright; never `playwright install`.

The backend is our API (`api/dicomweb.py`); `WANYING_VIEWER_BACKEND=orthanc` runs the same tests against Orthanc's
DICOMweb plugin instead (the viewer reads nothing but standard DICOMweb)."""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from tests.viewer.harness import orthanc_backend, wanying_backend
from tests.viewer.synthetic import Geometry, make_study

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "viewer"
GEOMETRY = Geometry()  # 40 slices of 128x128: small, SwiftShader is slow
PRIOR_GEOMETRY = Geometry(z0=250.0)  # a different frame of reference, 300 mm away


class Exams:
    def __init__(self, base_url: str, token: str, current, prior):
        self.base_url, self.token, self.current, self.prior = base_url, token, current, prior

    def viewer_url(self, **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"study": self.current.study_uid, **params}.items())
        return f"{self.base_url}/app/viewer.html?{query}#token={self.token}"


@pytest.fixture(scope="session")
def exams(tmp_path_factory) -> Exams:
    current = make_study(GEOMETRY, study_date=date(2026, 11, 20))
    prior = make_study(PRIOR_GEOMETRY, study_date=date(2025, 11, 3), description="胸部CT平扫（前次）")
    workdir = tmp_path_factory.mktemp("viewer-backend")
    if os.environ.get("WANYING_VIEWER_BACKEND") == "orthanc":
        with orthanc_backend(workdir, [current, prior]) as base_url:
            yield Exams(base_url, "no-auth", current, prior)
    else:
        with wanying_backend(workdir, [current, prior]) as (base_url, token):
            yield Exams(base_url, token, current, prior)


@pytest.fixture(scope="session")
def our_exams(exams, tmp_path_factory) -> Exams:
    """The exams on our server even when the run targets Orthanc: token handling only exists on ours (Orthanc runs
    here without authentication)."""
    if exams.token != "no-auth":
        yield exams
        return
    with wanying_backend(tmp_path_factory.mktemp("viewer-ours"), [exams.current, exams.prior]) as (base_url, token):
        yield Exams(base_url, token, exams.current, exams.prior)


@pytest.fixture(scope="session")
def _playwright(playwright_driver):
    return playwright_driver


def _context(pw, profile: Path, **options):
    return pw.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, locale="zh-CN", **options)


@pytest.fixture(scope="module")
def desktop(_playwright, tmp_path_factory):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = _context(_playwright, tmp_path_factory.mktemp("chromium-desktop"), viewport={"width": 1280, "height": 800})
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def phone(_playwright, tmp_path_factory):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = _context(_playwright, tmp_path_factory.mktemp("chromium-phone"), viewport={"width": 375, "height": 667},
                       device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        yield context
    finally:
        context.close()


def open_viewer(context, url: str):
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    try:
        page.wait_for_function("document.body.dataset.ready === '1' && window.__viewer.timings().firstImageMs !== null")
    except Exception:
        status = page.locator("#statusbar").inner_text()
        raise AssertionError(f"viewer not ready; status bar: {status!r}; page errors: {errors}") from None
    page.errors = errors  # type: ignore[attr-defined]
    return page
