"""A tensor-train layer against the dense layer it replaces, as the explorer prices them.

The layer of issue 12: 784 -> 512, modes (4, 7, 4, 7) -> (4, 4, 8, 4), ranks 16, cores of
``--core-bits`` bits, 8-bit activations and intermediates (multiply-shift requantizers),
beside the 8-bit dense 784 -> 512 layer. For each contraction order (right-to-left,
left-to-right and the order with the fewest MACs) it prints the MACs per sample, the
weight bits on chip, the cost at parallelism 1 everywhere, and the explorer's plan on the
board (II, DSP, BRAM18, LUT). Estimates from accelgen's cost models, not synthesis.
Run: ``python benchmarks/bench_tt.py [--board ultra96v2] [--rank 16] [--core-bits 4]``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelgen import analysis, ir  # noqa: E402
from accelgen.boards import get_board  # noqa: E402
from accelgen.dse import explore  # noqa: E402
from accelgen.kernels import kernel_for  # noqa: E402
from accelgen.kernels import tt as tt_kernel  # noqa: E402
from accelgen.plan import LayerFold  # noqa: E402

MODES_IN, MODES_OUT = (4, 7, 4, 7), (4, 4, 8, 4)
U8, S8 = ir.QType(8, False), ir.QType(8, True)


def _shift_requant(span: int, out: ir.QType) -> ir.MultiplyShift:
    """A per-tensor multiply-shift mapping [-span, span] onto ``out``'s codes."""
    shift = max(0, math.ceil(math.log2(max(span, 1))) - (out.bits - 1))
    one = np.ones(1, dtype=np.int64)
    return ir.MultiplyShift(one, 0 * one, shift, one * out.qmin, one * out.qmax, one)


def tt_graph(order: tuple[int, ...], rank: int, core_bits: int, seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    ranks = (1, rank, rank, rank, 1)
    cq = ir.QType(core_bits, True)
    cores = tuple(rng.integers(cq.qmin, cq.qmax + 1, size=(ranks[k], MODES_IN[k], MODES_OUT[k], ranks[k + 1]))
                  for k in range(4))  # fmt: skip
    steps = tt_kernel.geometry(MODES_IN, MODES_OUT, ranks, order)
    spans = [int(np.abs(tt_kernel.core_matrix(st, cores[st.core])).sum(axis=0).max()) * 255 for st in steps]
    mids = tuple(_shift_requant(s, S8) for s in spans[:-1])
    tensors = {"x": ir.Tensor("x", (None, 784), "codes", U8), "y": ir.Tensor("y", (None, 512), "codes", U8)}
    op = ir.TTDense("tt", ("x",), ("y",), modes_in=MODES_IN, modes_out=MODES_OUT, ranks=ranks, order=order,
                    cores=cores, core_qtypes=(cq,) * 4, mid_qtypes=(S8,) * 3, mid_requant=mids,
                    requant=_shift_requant(spans[-1], U8))  # fmt: skip
    return ir.Graph("tt", tensors, [op], ["x"], ["y"])


def dense_graph(seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, size=(512, 784))
    tensors = {"x": ir.Tensor("x", (None, 784), "codes", U8), "y": ir.Tensor("y", (None, 512), "codes", U8)}
    op = ir.Dense("dense", ("x",), ("y",), weights=w, w_qtype=S8, requant=_shift_requant(784 * 255 * 128, U8))
    return ir.Graph("dense", tensors, [op], ["x"], ["y"])


def orders(d: int) -> list[tuple[int, ...]]:
    """Every contraction order whose prefixes are contiguous runs of cores."""
    return [perm for perm in itertools.permutations(range(d)) if ir.is_contiguous_order(perm, d)]


def row(label: str, g: ir.Graph, board, folded: LayerFold, weight_bits: int) -> str:
    op = g.ops[0]
    kernel = kernel_for(op)
    spec = kernel.describe(op, g)
    slow = kernel.cost(spec, folded)
    est = explore(g, board)
    lp = est.layers[0]
    r = lp.cost.resources
    fold = "/".join(map(str, lp.fold.steps)) if lp.fold.steps else f"pe {lp.fold.pe} simd {lp.fold.simd}"
    return (f"| {label} | {kernel.multiplier(spec).macs:,} | {weight_bits:,} | {slow.cycles:,} | "
            f"{slow.resources.bram18} | {est.ii_cycles:,} | {fold} | {r.dsp} | {r.bram18} | {r.lut:,} |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", default="ultra96v2")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--core-bits", type=int, default=4)
    args = ap.parse_args(argv)
    board = get_board(args.board)
    print(f"784 -> 512 on {board.title} (estimates; 80% of each resource)\n")
    print("| layer | MACs / sample | weight bits | cycles, all 1 | BRAM18, all 1 | plan II | plan folding | "
          "DSP | BRAM18 | LUT |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    print(row("dense int8", dense_graph(), board, LayerFold(1, 1), 784 * 512 * 8))
    by_macs = {o: sum(s.macs for s in tt_kernel.geometry(MODES_IN, MODES_OUT, (1, *[args.rank] * 3, 1), o))
               for o in orders(4)}  # fmt: skip
    best = min(by_macs, key=lambda o: (by_macs[o], o))
    for label, order in (("right-to-left", (3, 2, 1, 0)), ("left-to-right", (0, 1, 2, 3)), ("fewest MACs", best)):
        g = tt_graph(order, args.rank, args.core_bits)
        name = f"TT r{args.rank} int{args.core_bits} {label} {order}"
        print(row(name, g, board, LayerFold(1, 1, (1, 1, 1, 1)), analysis.weight_bits(g.ops[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
