"""Browser-test fixtures: the API under uvicorn on a free loopback port over a temporary platform, and the Debian
chromium driven by playwright (never `playwright install`: the browser is the system's)."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import uvicorn

from api.app import create_app
from api.auth import TokenStore
from api.interpret import WEB_DIST
from wanying.settings import Settings
from wanying.wiring import Platform

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveApi:
    def __init__(self, platform: Platform, tokens: dict[str, str], port: int):
        self.platform, self.tokens, self.port = platform, tokens, port
        self.base_url = f"http://127.0.0.1:{port}"


@pytest.fixture
def live_api(tmp_path):
    if not (WEB_DIST / "interpret.html").is_file():
        pytest.fail(f"{WEB_DIST} has no build: run `bash infra/setup.sh` (it runs npm ci && npm run build in web/)")
    data = tmp_path / "data"
    platform = Platform(Settings(data_dir=data, log_fsync="off"))
    tokens = TokenStore.create_dev(data / "api-tokens.json")
    app = create_app(platform, TokenStore.load(data / "api-tokens.json"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the API did not start under uvicorn")
        time.sleep(0.05)
    yield LiveApi(platform, tokens, port)
    server.should_exit = True
    thread.join(timeout=10)
    platform.close()


@contextmanager
def chromium_page(driver, profile: Path, *, timeout_ms: int = 15_000, **options) -> Iterator:
    """One page in a fresh headless chromium profile (the system's browser), closed afterwards."""
    ARTIFACTS.mkdir(exist_ok=True)
    context = driver.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, locale="zh-CN", **options)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(timeout_ms)
        yield page
    finally:
        context.close()


@pytest.fixture
def phone(tmp_path, playwright_driver):
    """A phone-sized (375x667, touch) page."""
    with chromium_page(playwright_driver, tmp_path / "chromium-profile", viewport={"width": 375, "height": 667},
                       device_scale_factor=2, is_mobile=True, has_touch=True) as page:
        yield page


@pytest.fixture
def desk(tmp_path, playwright_driver):
    """A regulator's desktop page (1366x900) that accepts downloads."""
    with chromium_page(playwright_driver, tmp_path / "chromium-profile", timeout_ms=20_000,
                       viewport={"width": 1366, "height": 900}, accept_downloads=True) as page:
        yield page
