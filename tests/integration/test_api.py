"""The HTTP API on a temporary embedded platform: health, roles on every route, intake, dead letters, audit."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import ROLES, Principal, TokenStore, issue_token
from pipelines.intake import MAX_EVENT_BYTES
from streams.log.port import LogRecord
from tests.unit.exam_stream import HF, StreamBuilder, realistic_stream
from wanying.settings import Settings
from wanying.wiring import Platform

REPO = Path(__file__).resolve().parents[2]
WANYING = REPO / ".venv" / "bin" / "wanying"
PUBLIC = {"/health", "/ready", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc",
          "/app"}  # /app: the static web pages; they hold no data, their API calls carry the token
PROBLEM = "application/problem+json"
#: Routes a browser opens without headers (EventSource): authenticated by a ticket that only a role-checked route
#: issues. They must refuse anything without a valid ticket.
TICKET_ROUTES = {"/api/v1/doctor/stream"}


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def platform(data_dir):
    platform = Platform(Settings(data_dir=data_dir, log_fsync="off"))
    yield platform
    platform.close()


@pytest.fixture
def tokens(data_dir) -> dict[str, str]:
    tokens = TokenStore.create_dev(data_dir / "api-tokens.json")
    tokens["share"] = issue_token(data_dir / "api-tokens.json", Principal(
        "share-1", "share", studies=frozenset({"1.2.840.99.1"}), expires_at=time.time() + 3600))
    return tokens


@pytest.fixture
def client(platform, tokens, data_dir) -> TestClient:
    app = create_app(platform, TokenStore.load(data_dir / "api-tokens.json"))
    with TestClient(app) as client:
        yield client


def auth(tokens, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def _stream(platform) -> tuple[StreamBuilder, dict[str, str]]:
    b = StreamBuilder(keys=platform.keys)
    return b, realistic_stream(b)


def _records(platform, topic: str = "person") -> list[LogRecord]:
    return [r for p in range(platform.log.partitions(topic)) for r in platform.log.read(topic, p, 0, 10_000)]


# ------------------------------------------------------------------ liveness and readiness


def test_health_needs_no_token(client):
    r = client.get("/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_ready_reports_the_views_lag(client, platform, tokens):
    assert client.get("/ready").json() == {"status": "ready", "views_lag": 0, "qc_lag": 0}
    b, _ = _stream(platform)
    body = "[" + ",".join(e.model_dump_json() for e in b.events) + "]"
    assert client.post("/api/v1/events", content=body, headers=auth(tokens, "system")).status_code == 202
    assert client.get("/ready").json() == {"status": "ready", "views_lag": len(b.events),
                                           "qc_lag": platform.log.count("person")}  # no QC worker runs here
    platform.runner().run_until_caught_up()
    assert client.get("/ready").json()["views_lag"] == 0


def test_ready_fails_with_a_reason_when_the_views_database_is_broken(client, platform):
    import sqlalchemy as sa

    assert client.get("/ready").status_code == 200
    with platform.projector.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE view_positions"))
    r = client.get("/ready")
    assert r.status_code == 503
    assert r.json()["status"] == "not ready" and "view_positions" in r.json()["reason"]


# ------------------------------------------------------------------ every route names its roles


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def _protected_routes(app):
    for route in app.routes:
        path = getattr(route, "path", None)
        if path in PUBLIC or path in TICKET_ROUTES:
            continue
        yield route


def _roles_of(route) -> tuple[str, ...] | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if hasattr(dep.call, "roles"):
            return dep.call.roles
        stack.extend(dep.dependencies)
    return None


def test_ticket_routes_refuse_without_a_valid_ticket(client, tokens):
    for path in TICKET_ROUTES:
        for params in ({}, {"ticket": "made-up.ticket"}):
            refused = client.get(path, params=params, headers={"Authorization": f"Bearer {tokens['doctor']}"})
            assert refused.status_code == 401, (path, params, refused.status_code)
            assert refused.headers["content-type"] == PROBLEM


def test_every_route_but_health_and_docs_requires_a_role(client, tokens):
    routes = list(_protected_routes(client.app))
    assert len(routes) >= 6
    for route in routes:
        assert isinstance(route, APIRoute), f"{route!r} is not an API route with role checks; list it as public"
        roles = _roles_of(route)
        assert roles, f"{route.path} has no role check"
        for method in route.methods - {"HEAD", "OPTIONS"}:
            url = _concrete(route.path)
            anonymous = client.request(method, url)
            assert anonymous.status_code == 401, (method, url, anonymous.status_code)
            assert anonymous.headers["content-type"] == PROBLEM
            assert anonymous.headers["www-authenticate"] == "Bearer"
            bad = client.request(method, url, headers={"Authorization": "Bearer wy_made_up"})
            assert bad.status_code == 401
            for other in set(ROLES) - set(roles):
                denied = client.request(method, url, headers=auth(tokens, other))
                assert denied.status_code == 403, (method, url, other)
                assert "may not do this" in denied.json()["detail"]
            for allowed in roles:
                assert client.request(method, url, headers=auth(tokens, allowed)).status_code not in (401, 403)


def test_public_routes_really_are_public(client):
    for path in ("/health", "/ready", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path


# ------------------------------------------------------------------ event intake


def test_a_valid_envelope_is_accepted_with_its_position(client, platform, tokens):
    b, _ = _stream(platform)
    first = b.events[0]
    r = client.post("/api/v1/events", content=first.to_bytes(), headers=auth(tokens, "system"))
    assert r.status_code == 202
    assert r.json()["accepted"] == 1
    [[topic, partition, offset]] = r.json()["positions"]
    [stored] = platform.log.read(topic, partition, offset, 1)
    assert stored.event_id == str(first.event_id)
    again = client.post("/api/v1/events", content=first.to_bytes(), headers=auth(tokens, "system"))
    assert again.json()["positions"] == r.json()["positions"]  # a retry is not appended twice
    assert platform.log.count("person") == 1


def _bad_bodies(platform) -> dict[str, tuple[bytes, str]]:
    b, _ = _stream(platform)
    good = json.loads(b.events[1].model_dump_json())
    unknown = {**good, "type": "ExamOrderedd"}
    bad_payload = {**good, "payload": {**good["payload"], "hospital": "合肥一院"}}
    big = {**good, "payload": {**good["payload"], "local_item_name": "x" * MAX_EVENT_BYTES}}
    return {
        "invalid json": (b'{"type": "ExamOrdered", ', "not valid UTF-8 JSON"),
        "unknown type": (json.dumps(unknown).encode(), "unknown event type 'ExamOrderedd'"),
        "bad payload": (json.dumps(bad_payload, ensure_ascii=False).encode(), "ExamOrdered payload invalid: hospital"),
        "too big": (json.dumps(big).encode(), f"the limit is {MAX_EVENT_BYTES}"),
        "bad item of a batch": (json.dumps([good, bad_payload]).encode(), "event #1: ExamOrdered payload invalid"),
    }


def test_bad_input_is_refused_with_a_reason_and_kept_byte_for_byte(client, platform, tokens):
    bodies = _bad_bodies(platform)
    for name, (body, reason) in bodies.items():
        r = client.post("/api/v1/events", content=body, headers=auth(tokens, "system"))
        assert r.status_code == 422, name
        assert r.headers["content-type"] == PROBLEM
        problem = r.json()
        assert reason in problem["detail"], (name, problem["detail"])
        letter = platform.dead_letters.get(problem["dead_letter_id"])
        assert letter.body == body, name
        assert (letter.channel, letter.source, letter.status) == ("event-json", HF, "open")
    assert platform.log.count("person") == 0  # the good first half of the bad batch was not appended either
    stats = client.get("/api/v1/stats", headers=auth(tokens, "operator")).json()
    assert stats["dead_letters"] == {"event-json": {"open": len(bodies)}}
    listed = client.get("/api/v1/deadletters", headers=auth(tokens, "operator")).json()
    assert len(listed) == len(bodies) and "body" not in listed[0]


def test_a_fixed_dead_letter_is_replayed_by_the_cli(client, platform, tokens, data_dir, tmp_path):
    b, _ = _stream(platform)
    event = b.events[2]
    # Refused earlier for a cause fixed since (a hospital registered, a code mapped): the bytes are fine now.
    fixed = platform.dead_letters.put(channel="event-json", source=HF, reason="hospital not registered",
                                      body=event.to_bytes())
    broken = client.post("/api/v1/events", content=b"{oops", headers=auth(tokens, "system")).json()["dead_letter_id"]
    env = {**os.environ, "WANYING_DATA_DIR": str(data_dir)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(WANYING), "deadletters", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60)

    listed = [json.loads(line) for line in cli("list").stdout.splitlines()]
    assert {d["id"] for d in listed} == {fixed, broken}

    done = cli("replay", fixed)
    assert done.returncode == 0, done.stderr
    assert "1 event(s) appended" in done.stdout
    assert [r.event_id for r in _records(platform)] == [str(event.event_id)]
    assert platform.dead_letters.get(fixed).status == "replayed"

    still = cli("replay", broken)
    assert still.returncode == 1 and "still rejected" in still.stderr and "not valid UTF-8 JSON" in still.stderr
    assert platform.dead_letters.get(broken).status == "open"
    assert platform.dead_letters.counts() == {"event-json": {"open": 1, "replayed": 1}}  # no second letter filed

    again = cli("replay", fixed)
    assert again.returncode == 2 and "no open dead letter" in again.stderr


def test_a_body_far_too_big_is_refused_before_it_is_read(client, platform, tokens):
    from api.app import MAX_REQUEST_BYTES

    r = client.post("/api/v1/events", content=b"[" + b" " * MAX_REQUEST_BYTES + b"]", headers=auth(tokens, "system"))
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    assert "send smaller batches" in r.json()["detail"]
    assert platform.dead_letters.counts() == {}


def test_dead_letter_listing_limits_are_checked(client, tokens):
    for limit in (0, -1, 5000):
        r = client.get(f"/api/v1/deadletters?limit={limit}", headers=auth(tokens, "operator"))
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM and "limit" in r.json()["detail"]


def test_path_parameters_are_checked_before_anything_is_logged(client, platform, tokens):
    r = client.get("/api/v1/patients/not-a-key/exams", headers=auth(tokens, "doctor"))
    assert r.status_code == 422 and "person_key" in r.json()["detail"]
    assert client.get("/api/v1/hospitals/bad code/daily-counts", headers=auth(tokens, "operator")).status_code == 422
    assert platform.log.count("person") == 0  # no audit event for a refused read


# ------------------------------------------------------------------ reading views, with an audit trail


def test_patient_exams_include_linked_records_and_are_audited(client, platform, tokens):
    b, people = _stream(platform)
    client.post("/api/v1/events", content="[" + ",".join(e.model_dump_json() for e in b.events) + "]",
                headers=auth(tokens, "system"))
    platform.runner().run_until_caught_up()

    r = client.get(f"/api/v1/patients/{people['a']}/exams", headers=auth(tokens, "doctor"))
    assert r.status_code == 200
    assert r.json()["count"] == 3
    # Newest first on every backend; an exam not imaged yet has no study date and leads.
    assert [e["exam_id"] for e in r.json()["exams"]] == [f"{HF}:O2", f"{HF}:O1", "AH-WH-002:1.2.840.2.9"]
    assert [e["status"] for e in r.json()["exams"]] == ["cancelled", "reported", "reported"]
    linked = client.get(f"/api/v1/patients/{people['c']}/exams", headers=auth(tokens, "doctor")).json()
    assert [e["order_id"] for e in linked["exams"]] == ["O9"]

    audits = [r.envelope() for r in _records(platform) if r.envelope().type == "RecordAccessed"]
    assert [(a.key, a.payload["person_key"], a.payload["actor"], a.payload["role"], a.payload["resource"])
            for a in sorted(audits, key=lambda a: a.event_id)] == [
        (people["a"], people["a"], "demo-doctor", "doctor", "exam_history"),
        (people["c"], people["c"], "demo-doctor", "doctor", "exam_history"),
    ]
    assert all(a.source == HF for a in audits)


def test_daily_counts_for_the_regulator(client, platform, tokens):
    b, _ = _stream(platform)
    client.post("/api/v1/events", content="[" + ",".join(e.model_dump_json() for e in b.events) + "]",
                headers=auth(tokens, "system"))
    platform.runner().run_until_caught_up()
    rows = client.get(f"/api/v1/hospitals/{HF}/daily-counts", headers=auth(tokens, "regulator")).json()
    assert {(r["day"], r["event_type"]): r["count"] for r in rows}[("2026-11-27", "ExamOrdered")] == 2


# ------------------------------------------------------------------ a person's key from what a hospital sends


def test_person_key_from_an_id_number(client, platform, tokens):
    number = "11010519491231002X"
    expected = platform.keys.person_key(number)
    for form in (number, number.lower(), " 110105 19491231 002x ", "".join(chr(ord(c) + 0xFEE0) for c in number)):
        r = client.post("/api/v1/persons/key", json={"hospital": HF, "id_number": form}, headers=auth(tokens, "system"))
        assert r.status_code == 200, r.text
        assert r.json() == {"person_key": expected, "scope": "national"}


def test_person_key_from_the_hospital_patient_id(client, platform, tokens):
    r = client.post("/api/v1/persons/key", json={"hospital": HF, "hospital_patient_id": "MRN-1"},
                    headers=auth(tokens, "system"))
    assert r.json() == {"person_key": platform.keys.hospital_person_key(HF, "MRN-1"), "scope": "hospital"}


@pytest.mark.parametrize(
    "id_number, reason",
    [
        ("110105194912310021", "check digit (GB 11643) does not match"),
        ("110105194902300026", "birth date (characters 7-14) is not a real date"),
        ("1101051949123100", "must have 18 characters"),
        ("11010519491231002X" * 3, "id_number: String should have at most 40 characters"),
    ],
)
def test_a_malformed_id_number_is_refused_without_echo(client, tokens, id_number, reason):
    r = client.post("/api/v1/persons/key", json={"hospital": HF, "id_number": id_number},
                    headers=auth(tokens, "system"))
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert reason in r.json()["detail"]
    assert id_number[:10] not in r.text and id_number[-8:] not in r.text


def test_person_key_needs_an_identifier_and_the_callers_own_hospital(client, tokens):
    r = client.post("/api/v1/persons/key", json={"hospital": HF}, headers=auth(tokens, "system"))
    assert r.status_code == 422 and "ID number or the hospital's patient ID" in r.json()["detail"]
    r = client.post("/api/v1/persons/key", json={"hospital": "AH-WH-002", "hospital_patient_id": "M"},
                    headers=auth(tokens, "system"))
    assert r.status_code == 403 and "AH-HF-001" in r.json()["detail"]
