"""QC speed: score a 2000x2000 radiograph and a 300-slice 512x512 CT series, reading the DICOM files included.

Prints `qc_speed radiograph_s=<n> ct_series_s=<n>` (median of 5 runs each, one core).
Run: .venv/bin/python bench/qc_speed.py
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one core, as the target says

import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qc.engine import score_path  # noqa: E402
from qc.synth import dicomio, radiographs, volumes  # noqa: E402
from qc.synth.generate import tags_for  # noqa: E402


def make_radiograph(folder: Path) -> Path:
    rng = np.random.default_rng(1)
    small = radiographs.render("chest_pa", rng)
    big = ndi.zoom(small, 2000 / small.shape[0], order=1)[:2000, :2000]
    values = radiographs.expose(big, rng)
    path = folder / "chest_2000.dcm"
    dicomio.write_radiograph(path, values, 0.7 * 512 / 2000, tags_for("chest_pa"), "BENCH0001")
    return path


def make_ct(folder: Path, slices: int = 300) -> Path:
    """A 512x512 chest series: 60 rendered slices at 1 mm, repeated along z to 300 slices (positions kept
    regular), which is what the analysis sees of a real 300-slice series."""
    rng = np.random.default_rng(2)
    spec = volumes.SPECS["ct_chest"]
    volumes.SPECS["bench"] = volumes.SeriesSpec(512, spec.fov, 5.0, -145, 150)
    volumes.SHAPES["bench"] = volumes.chest
    block, grid = volumes.render("bench", rng)
    block = volumes.finish_ct(block, rng, 12.0)
    vol = np.concatenate([block] * (slices // block.shape[0] + 1))[:slices]
    positions = [-150.0 + i * 1.0 for i in range(slices)]
    out = folder / "ct"
    dicomio.write_series(out, vol, positions, (1.0, grid.spacing[1], grid.spacing[2]), "CT", tags_for("ct_chest"),
                         "BENCH0002")
    return out


def median_time(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        xr, ct = make_radiograph(tmp), make_ct(tmp)
        score_path(xr)  # warm-up: imports, protocol cache
        radiograph_s = median_time(lambda: score_path(xr))
        ct_s = median_time(lambda: score_path(ct))
    print(f"qc_speed radiograph_s={radiograph_s:.3f} ct_series_s={ct_s:.3f}")


if __name__ == "__main__":
    main()
