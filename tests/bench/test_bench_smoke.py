"""The benchmarks run and print their lines in the agreed format (speed itself is never asserted)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ("append_eps", "consume_eps", "ceiling_append_eps")
LINE = re.compile(r"^log_throughput backend=(?P<backend>sqlite|kafka)(?P<fields>( [a-z_]+=\d+)+)$")


def _bench(script: str, *args: str, timeout: float = 300) -> str:
    """Run ``bench/<script>`` with ``args``; its standard output, once it has exited with status 0."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.kafka
@pytest.mark.slow
def test_log_throughput_prints_one_line_per_backend():
    out = _bench("log_throughput.py", "--events", "2000", "--repeat", "1")
    lines = out.strip().splitlines()
    assert [LINE.match(line)["backend"] for line in lines] == ["sqlite", "kafka"], out
    for line in lines:
        m = LINE.match(line)
        names = [f.split("=")[0] for f in m["fields"].split()]
        values = [int(f.split("=")[1]) for f in m["fields"].split()]
        assert tuple(names[:3]) == REQUIRED
        assert all(v > 0 for v in values)
        extra = ["ceiling_consume_eps"] if m["backend"] == "kafka" else []
        assert names[3:] == extra


@pytest.mark.kafka
@pytest.mark.slow
def test_broker_scaling_prints_one_line_per_history_size():
    out = _bench("broker_scaling.py", "--records", "0,3000", "--seconds", "2")
    line = re.compile(r"^broker_scaling records=(\d+) appends_per_s=(\d+) events_per_s=(\d+) broker_cpu=(\d+)%$")
    rows = [line.match(x) for x in out.strip().splitlines()]
    assert all(rows) and [int(m[1]) for m in rows] == [0, 3000], out
    assert all(abs(int(m[3]) - 3 * int(m[2])) <= 2 for m in rows)  # three events per append, rounded


@pytest.mark.kafka
@pytest.mark.slow
def test_reminder_latency_prints_its_line_on_both_runtimes():
    out = _bench("reminder_latency.py", "--runtime", "both", "--exams", "2000", "--seconds", "2", "--rate", "50",
                 timeout=600)
    line = re.compile(r"^reminder_latency runtime=(embedded|kafka) p50_ms=(\d+) p99_ms=(\d+) orders=(\d+)$")
    rows = [m for x in out.splitlines() if (m := line.match(x))]
    assert [m[1] for m in rows] == ["embedded", "kafka"], out
    for m in rows:
        assert int(m[4]) > 50  # most of the 100 orders find a recent exam elsewhere
        assert int(m[2]) <= int(m[3])
    live = [x for x in out.splitlines() if x.startswith("live runtime=kafka")]
    assert len(live) == 1 and re.search(r" cpu=broker:\d+%,worker:\d+%,bench:\d+% ", live[0]), out
