"""How close the planned II comes to the MAC lower bound, and how busy the bottleneck's multipliers are.

    python benchmarks/bench_utilisation.py [--boards ultra96v2,zcu104]

For the bundled CNN (examples/digits_cnn_w4a8.onnx), the four MLPerf Tiny networks at their
real shapes (tests/models/mlperf_tiny, W8A8) and the CNN fixtures of tests/models, on
each board at its default clock and the default 80% budget, the explorer's minimum-II plan:

* II: the planned initiation interval (cycles per frame);
* MAC bnd: the lower bound MACs per frame over the multipliers the budget affords (a DSP
  product that the matrix unit can pack two to a DSP48E2 counts half a DSP);
* ratio: II / MAC bnd (the issue's target: at most 1.25 on ultra96);
* bneck util: the bottleneck layers' (those at the II) multiplier utilisation, MACs per frame
  over (cycles x multipliers instantiated); the lowest of them (target: at least 0.80);
* DSP: DSPs the kernels use (of the kernels' budget), of which requantizer DSPs;
* folds: the bottleneck layers' folding (pe x simd x pixels).

Every figure is an ESTIMATE of the cost models (no synthesis). The fixtures carry random
weights: their figures are about the hardware, not about accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelgen.boards import get_board  # noqa: E402
from accelgen.dse import explore  # noqa: E402
from accelgen.errors import FitError  # noqa: E402
from accelgen.pipeline import compile_model  # noqa: E402

TARGET_RATIO = 1.25
TARGET_UTIL = 0.80


def models() -> list[tuple[str, Path]]:
    """The bundled CNN, the MLPerf Tiny networks and every fixture with a convolution (the MLP
    fixtures have no windows)."""
    found = [("digits_cnn_w4a8 (bundled)", ROOT / "examples" / "digits_cnn_w4a8.onnx")]
    tiny = json.loads((ROOT / "tests" / "models" / "mlperf_tiny" / "manifest.json").read_text())["models"]
    found += [(e["file"].removesuffix(".onnx"), ROOT / "tests" / "models" / "mlperf_tiny" / e["file"]) for e in tiny]
    manifest = json.loads((ROOT / "tests" / "models" / "manifest.json").read_text())["models"]
    for entry in manifest:
        name = entry["file"].removesuffix(".onnx")
        if "mlp" not in name:
            found.append((name, ROOT / "tests" / "models" / entry["file"]))
    return found


def layer_util(lp) -> float:
    macs = lp.layer.kernel.multiplier(lp.layer.spec).macs
    return macs / (lp.cost.cycles * lp.cost.multipliers) if lp.cost.multipliers and lp.cost.cycles else 0.0


def fold_text(fold) -> str:
    return f"{fold.pe}x{fold.simd}" + (f"x{fold.pixels}" if fold.pixels > 1 else "")


def row(name: str, graph, board_name: str) -> str:
    board = get_board(board_name)
    try:
        e = explore(graph, board)
    except FitError as exc:
        return f"{name:32s} {board.name:10s} does not fit: {str(exc)[:80]}"
    bound = e.bound.macs_per_multiplier
    ratio = e.ii_cycles / bound if bound else float("nan")
    bottleneck = [lp for lp in e.layers if lp.cost.cycles == e.ii_cycles and lp.cost.multipliers]
    util = min((layer_util(lp) for lp in bottleneck), default=float("nan"))
    folds = ", ".join(f"{lp.name.split(':')[-1].split('/')[-2] or lp.name}={fold_text(lp.fold)}"
                      for lp in bottleneck) or "(no multiplier layer at the II)"  # fmt: skip
    ok = "yes" if ratio <= TARGET_RATIO and util >= TARGET_UTIL else "no"
    return (
        f"{name:32s} {board.name:10s} {e.ii_cycles:8,d} {bound:8,d} {ratio:6.2f} {util:6.2f} "
        f"{e.resources.dsp:5d}/{e.budget['dsp']:<5d} {ok:>4s}  {folds}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", default="ultra96v2,zcu104", help="comma-separated board names")
    args = parser.parse_args(argv)
    boards = args.boards.split(",")
    print("Planned II against the MAC lower bound, ESTIMATES (cost models, no synthesis); default clock, 80% budget")
    print(f"targets: II / MAC bound <= {TARGET_RATIO}, bottleneck multiplier utilisation >= {TARGET_UTIL:.0%}")
    print(f"{'model':32s} {'board':10s} {'II':>8s} {'MAC bnd':>8s} {'ratio':>6s} {'util':>6s} {'DSP/budget':>11s} "
          f"{'met':>4s}  bottleneck folding (pe x simd [x pixels])")  # fmt: skip
    for name, path in models():
        graph = compile_model(path).graph
        for b in boards:
            print(row(name, graph, b))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
