"""Scale: how the explorer, the front end and the golden interpreter grow.

    python benchmarks/bench_scale.py [--quick] [--only {explorer,frontend,interpreter}] [--json FILE]

1. Explorer (accelgen.dse.explore) time against the number of layers (10, 25, 50, 100)
   per board, on deep W4A4 MLPs (QONNX, benchmarks/topologies.py) whose width makes the
   board's budget bind (so the search has work to do); target: 50 layers under 1 s.
2. Front end + passes (accelgen.pipeline.compile_model: load, check, import, passes)
   against the number of layers (100, 250, 500, 1000) on a 16-wide W4A4 MLP, and the
   exponent of the fitted power law t ~ n^k; target: 1000 layers under 3 s.
3. Golden interpreter (accelgen.golden.run) against onnxruntime (CPU, one thread, graph
   optimisations on) on the QDQ / QOperator fixture models, batch 360 of the digits test
   split; ratio = interpreter time / onnxruntime time (best of 10 runs each, alternating;
   one warm-up run each first, so the interpreter's per-op plans are built).

numpy's BLAS is limited to one thread (environment set before numpy is imported), so both
executors run on one core. ``--quick``: fewer sizes and boards, for a smoke run; ``--only``:
one of the three parts.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelgen import golden  # noqa: E402
from accelgen.boards import get_board, known_boards  # noqa: E402
from accelgen.dse import explore  # noqa: E402
from accelgen.errors import FitError  # noqa: E402
from accelgen.pipeline import compile_model  # noqa: E402
from benchmarks.topologies import QonnxNet  # noqa: E402

#: hidden width of the explorer's MLPs per board: the widest at which 50 layers still fit;
#: deeper MLPs are narrower by 50 / layers (the same number of weights would not fit: every
#: layer also costs its own buffers)
EXPLORER_WIDTH = {"pynq-z2": 64, "ultra96v2": 128, "kv260": 128, "zcu104": 160, "zcu102": 256}
BATCH = 360
REPEATS = 3
INTERPRETER_REPEATS = 10


def deep_mlp(layers: int, width: int, w_bits: int = 4, a_bits: int = 4):
    """``layers`` dense layers of ``width`` (the last one 10 wide, float logits)."""
    net = QonnxNet(f"mlp{layers}x{width}", w_bits, a_bits)
    x = net.input((width,))
    for _ in range(layers - 1):
        x = net.dense(x, width)
    return net.model(net.dense(x, 10, relu=False, quantize=False))


def _best(fn, repeats: int = REPEATS, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return min(times)


def _best_interleaved(a, b, repeats: int = INTERPRETER_REPEATS) -> tuple[float, float, float]:
    """Best CPU times of ``a`` and ``b`` run alternately, after one warm-up run each; and the
    CPU time of ``b``'s first run. CPU time (both run on one thread) rather than wall time, so
    that another process's load on a shared machine is not counted against either."""
    a()
    first = _best(b, 1, time.process_time)
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_best(a, 1, time.process_time))
        tb.append(_best(b, 1, time.process_time))
    return min(ta), min(tb), first


def explorer_curve(quick: bool) -> list[dict]:
    print("1. Explorer time vs layers (deep W4A4 MLPs; II in cycles, opt = proven minimal, estimates)")
    sizes = [10, 50] if quick else [10, 25, 50, 100]
    boards = ["ultra96v2", "zcu102"] if quick else list(known_boards())
    rows = []
    print(f"   {'board':10s} " + " ".join(f"{f'{n} layers':>28s}" for n in sizes))
    for board_name in boards:
        board = get_board(board_name)
        cells = []
        for n in sizes:
            width = 8 * round(EXPLORER_WIDTH.get(board_name, 128) * min(1.0, 50 / n) / 8)
            graph = compile_model(deep_mlp(n, width)).graph
            t0 = time.perf_counter()
            try:
                e = explore(graph, board)
                dt = time.perf_counter() - t0
                row = {"board": board_name, "width": width, "layers": n, "seconds": dt, "ii_cycles": e.ii_cycles,
                       "proven_optimal": e.bound.proven_optimal, "cost_optimal": e.cost_optimal}  # fmt: skip
                cells.append(f"w{width:<3d} {dt:6.3f} s II {e.ii_cycles:>6,d} {'opt' if e.bound.proven_optimal else '   '}")
            except FitError:
                dt = time.perf_counter() - t0
                row = {"board": board_name, "width": width, "layers": n, "seconds": dt, "fits": False}
                cells.append(f"w{width:<3d} {dt:6.3f} s does not fit ")
            rows.append(row)
        print(f"   {board_name:10s} " + " ".join(f"{c:>28s}" for c in cells))
    fifty = [r["seconds"] for r in rows if r["layers"] == 50]
    print(f"   slowest 50-layer plan: {max(fifty):.3f} s (target < 1 s); wN = hidden width")
    return rows


def frontend_curve(quick: bool) -> dict:
    print()
    print("2. Front end + passes time vs layers (16-wide W4A4 MLP, QONNX; compile_model of the ModelProto)")
    sizes = [100, 250, 500] if quick else [100, 250, 500, 1000]
    points = []
    for n in sizes:
        model = deep_mlp(n, 16)
        dt = _best(lambda model=model: compile_model(model), 1 if n >= 500 else 2)
        points.append((n, dt))
        print(f"   {n:5d} layers: {dt:7.3f} s")
    k, _ = np.polyfit(np.log([p[0] for p in points]), np.log([p[1] for p in points]), 1)
    print(f"   fitted exponent: t ~ n^{k:.2f}; {points[-1][0]} layers in {points[-1][1]:.2f} s (target 1000 in < 3 s)")
    return {"points": [{"layers": n, "seconds": t} for n, t in points], "exponent": float(k)}


def interpreter_ratio(quick: bool) -> list[dict]:
    import onnx
    import onnxruntime as ort

    from tests.data import as_images, digits_split
    from tests.reference import unsaturated_weights

    print()
    print(f"3. Golden interpreter vs onnxruntime (CPU, 1 thread), batch {BATCH} of the digits test split")
    print(f"   {'model':36s} {'golden ms':>10s} {'ort ms':>9s} {'ratio':>7s} {'first ms':>9s}"
          "  (ratio = golden / onnxruntime; first = the interpreter's first run)")  # fmt: skip
    manifest = json.loads((ROOT / "tests" / "models" / "manifest.json").read_text())["models"]
    _, _, x_test, _ = digits_split()
    rows = []
    for entry in manifest:
        if entry["dialect"] not in ("qdq", "qoperator", "qcdq"):
            continue
        if quick and len(rows) >= 3:
            break
        path = ROOT / "tests" / "models" / entry["file"]
        x = x_test[:BATCH]
        x = as_images(x) if entry["input_layout"] == "image" else x
        graph = compile_model(path).graph
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(unsaturated_weights(onnx.load(str(path))).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])  # fmt: skip
        feed = {session.get_inputs()[0].name: x}
        t_ort, t_golden, t_first = _best_interleaved(
            lambda session=session, feed=feed: session.run(None, feed), lambda graph=graph, x=x: golden.run(graph, x)
        )
        rows.append({"model": entry["file"], "golden_s": t_golden, "golden_first_s": t_first, "ort_s": t_ort,
                     "ratio": t_golden / t_ort})  # fmt: skip
        print(f"   {entry['file']:36s} {t_golden * 1e3:10.2f} {t_ort * 1e3:9.2f} {t_golden / t_ort:7.2f} {t_first * 1e3:9.2f}")
    if rows:
        worst = max(r["ratio"] for r in rows)
        geo = math.exp(sum(math.log(r["ratio"]) for r in rows) / len(rows))
        print(f"   worst ratio {worst:.2f}, geometric mean {geo:.2f} (target: <= 2, i.e. at least half ort's speed)")
    return rows


PARTS = {"explorer": explorer_curve, "frontend": frontend_curve, "interpreter": interpreter_ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes, boards and models (a smoke run)")
    parser.add_argument("--only", choices=PARTS, help="run one part only")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    figures = {part: PARTS[part](args.quick) for part in PARTS if args.only in (None, part)}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
