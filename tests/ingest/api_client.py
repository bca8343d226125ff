"""A test client on a temporary embedded platform with the dev tokens (one per role)."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import TokenStore
from wanying.settings import Settings
from wanying.wiring import Platform

PROBLEM = "application/problem+json"


@pytest.fixture
def platform(tmp_path):
    platform = Platform(Settings(data_dir=tmp_path / "data", log_fsync="off"))
    yield platform
    platform.close()


@pytest.fixture
def api(platform, tmp_path):
    tokens = TokenStore.create_dev(tmp_path / "data" / "api-tokens.json")
    app = create_app(platform, TokenStore.load(tmp_path / "data" / "api-tokens.json"))
    with TestClient(app) as client:
        client.headers_for = lambda role: {"Authorization": f"Bearer {tokens[role]}"}
        yield client


def platform_events(platform) -> list:
    out = []
    for topic in platform.topics():
        for partition in range(platform.log.partitions(topic)):
            out += [r.envelope() for r in platform.log.read(topic, partition, 0, 100_000)]
    return out
