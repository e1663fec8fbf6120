"""Front end and golden model speed on the fixture models: compile time and samples/s.

    python benchmarks/bench_frontend.py

Prints, per model: load + import + passes time, and golden interpreter throughput on the
450-sample digits test split (batch of 450).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelgen import golden  # noqa: E402
from accelgen.pipeline import compile_model  # noqa: E402
from tests.data import as_images, digits_split  # noqa: E402

REPEATS = 3


def main() -> None:
    manifest = json.loads((ROOT / "tests" / "models" / "manifest.json").read_text())["models"]
    _, _, x_flat, _ = digits_split()
    print(f"{'model':36s} {'compile ms':>10s} {'golden samples/s':>17s}")
    for entry in manifest:
        path = ROOT / "tests" / "models" / entry["file"]
        best_compile = min(_timed(compile_model, path) for _ in range(REPEATS))
        graph = compile_model(path).graph
        x = as_images(x_flat) if entry["input_layout"] == "image" else x_flat
        best_run = min(_timed(golden.run, graph, x) for _ in range(REPEATS))
        print(f"{entry['file']:36s} {best_compile * 1e3:10.1f} {len(x) / best_run:17,.0f}")


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
