"""Shared fixtures. Real services are started here, on loopback, and stopped at the end of the session."""
from __future__ import annotations


import pytest

from infra import services


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> services.Broker:
    """A real Kafka-protocol broker (Tansu) for the whole test session."""
    broker = services.start_tansu(tmp_path_factory.mktemp("tansu"))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def postgres_server() -> services.Postgres:
    # Not under tmp_path: pytest's base directory is private to root, and the server runs as user postgres.
    with services.postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """A fresh database per test on the session's PostgreSQL server."""
    import sqlalchemy as sa

    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    admin = sa.create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return postgres_server.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def playwright_driver():
    """One Playwright driver for the whole run: its sync API keeps an event loop alive, so a second driver
    started while one is open fails ("Sync API inside the asyncio loop"). Every browser test uses this one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw
