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


@pytest.mark.kafka
@pytest.mark.slow
def test_log_throughput_prints_one_line_per_backend():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "log_throughput.py"), "--events", "2000", "--repeat", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [LINE.match(line)["backend"] for line in lines] == ["sqlite", "kafka"], done.stdout
    for line in lines:
        m = LINE.match(line)
        names = [f.split("=")[0] for f in m["fields"].split()]
        values = [int(f.split("=")[1]) for f in m["fields"].split()]
        assert tuple(names[:3]) == REQUIRED
        assert all(v > 0 for v in values)
        extra = ["ceiling_consume_eps"] if m["backend"] == "kafka" else []
        assert names[3:] == extra
