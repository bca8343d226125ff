"""``wanying run`` as an operator starts it: a real process, real port, Ctrl-C, restart on the same data."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from infra.services import free_port
from tests.unit.exam_stream import HF, StreamBuilder

REPO = Path(__file__).resolve().parents[2]
WANYING = REPO / ".venv" / "bin" / "wanying"


class RunningPlatform:
    """One ``wanying run`` process; its output is collected by a thread so the pipe never fills."""

    def __init__(self, data_dir: Path, port: int, *args: str) -> None:
        env = {**os.environ, "WANYING_DATA_DIR": str(data_dir), "WANYING_API_PORT": str(port),
               "WANYING_LOG_FSYNC": "normal", "PYTHONUNBUFFERED": "1"}
        env.pop("WANYING_VIEWS_URL", None)
        self.base = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen([str(WANYING), "run", *args], cwd=data_dir.parent, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"wanying run exited with {self.proc.returncode}:\n{self.output}"
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"no /health after {timeout}s:\n{self.output}")

    def wait_caught_up(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = httpx.get(f"{self.base}/ready", timeout=2).json()
            if ready.get("views_lag") == 0 and ready.get("qc_lag") == 0:
                return
            time.sleep(0.1)
        raise AssertionError("views did not catch up")

    def interrupt(self, sig: int = signal.SIGINT, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        finally:
            self.kill()
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.mark.slow
def test_run_serves_stops_cleanly_and_restarts_on_the_same_data(data_dir):
    b = StreamBuilder()
    pk = b.person("11010519491231002")
    order = b.order(pk, HF, "O1", accession="ACC1").to_bytes()

    port = free_port()
    first = RunningPlatform(data_dir, port, "--no-demo")
    try:
        first.wait_healthy()
        base = f"http://127.0.0.1:{port}"
        for url in (f"{base}/health", f"{base}/ready", f"{base}/docs", f"{base}/api/v1/stats"):
            assert url in first.output, first.output
        assert str(data_dir.resolve()) in first.output
        tokens = json.loads((data_dir / "dev-tokens.json").read_text())
        assert tokens["operator"] in first.output  # the stats line shows how to call it
        system = {"Authorization": f"Bearer {tokens['system']}"}
        r = httpx.post(f"{base}/api/v1/events", content=order, headers=system, timeout=10)
        assert r.status_code == 202, r.text
        position = r.json()["positions"]
        first.wait_caught_up()
        assert first.interrupt() == 0, first.output
    finally:
        first.kill()
    assert "stopped cleanly" in first.output
    assert "Traceback" not in first.output, first.output

    (data_dir / "dev-tokens.json").unlink()  # an operator who stored the demo tokens elsewhere, as advised
    second = RunningPlatform(data_dir, port, "--no-demo")
    try:
        second.wait_healthy()
        assert not (data_dir / "dev-tokens.json").exists()  # the hashed tokens stay; no new plaintext copy
        assert tokens["operator"] not in second.output
        r = httpx.post(f"{base}/api/v1/events", content=order, headers=system, timeout=10)
        assert (r.status_code, r.json()["positions"]) == (202, position)
        second.wait_caught_up()
        operator = {"Authorization": f"Bearer {tokens['operator']}"}
        stats = httpx.get(f"{base}/api/v1/stats", headers=operator, timeout=10).json()
        assert stats["events"]["person"] == 1
        assert stats["views"]["exam_history"] == 1
        counts = httpx.get(f"{base}/api/v1/hospitals/{HF}/daily-counts", headers=operator, timeout=10).json()
        assert [(c["event_type"], c["count"]) for c in counts] == [("ExamOrdered", 1)]
        assert second.interrupt(signal.SIGTERM) == 0, second.output  # as systemd or docker stop it
    finally:
        second.kill()
    assert "stopped cleanly" in second.output


def test_run_on_a_busy_port_says_so_and_fails(data_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = RunningPlatform(data_dir, port, "--no-demo")
        try:
            code = proc.proc.wait(60)
        finally:
            proc.kill()
        proc._reader.join(5)
    assert code != 0, proc.output
    assert f"could not serve on 127.0.0.1:{port}" in proc.output
    assert "is running" not in proc.output and "stopped cleanly" not in proc.output


@pytest.mark.slow
def test_run_with_the_demo_twice_adds_nothing_the_second_time(data_dir):
    port = free_port()
    seen = []
    for attempt in range(2):
        platform = RunningPlatform(data_dir, port, "--scale", "0.2")
        try:
            platform.wait_healthy(timeout=240)
            platform.wait_caught_up(timeout=60)
            tokens = json.loads((data_dir / "dev-tokens.json").read_text())
            stats = httpx.get(f"{platform.base}/api/v1/stats", timeout=10,
                              headers={"Authorization": f"Bearer {tokens['operator']}"}).json()
            assert platform.interrupt() == 0, platform.output
        finally:
            platform.kill()
        summary = json.loads(next(line for line in platform.lines if line.startswith("demo world: "))[12:])
        seen.append((stats["events"], stats["views"], stats["dead_letters"], summary))
    (events1, views1, dead1, first), (events2, views2, dead2, second) = seen
    assert first["events_appended"] == first["events"] > 0
    assert second["events_appended"] == 0 and second["events_already_present"] == first["events"]
    assert events2 == events1 and sum(events1.values()) >= first["events"]
    assert views2 == views1 and views1["exam_history"] > 0
    assert dead1 == dead2 == {}
