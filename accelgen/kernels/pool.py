"""Pooling kernel (MaxPool, AvgPool): a window reduction, ``pe`` channels per cycle.

Folding (accelgen.plan): ``pe | C``, ``simd`` = 1; cycles per frame =
max(IH*IW, OH*OW*KH*KW) * (C/pe): every input is read once and every window tap visited
once. Non-overlapping windows (stride >= kernel) keep one output row of partial results
(OW*C entries); overlapping ones a line buffer of (KH-1)*W*C + KW*C entries. Max compares
codes; the average pool sums ``code - zero_point`` and requantizes (the 1/k is in the
requantizer).
"""

from __future__ import annotations

from dataclasses import dataclass

from accelgen import ir
from accelgen.kernels import hw, requant
from accelgen.kernels.base import (
    Cost,
    LayerSpec,
    MultiplierNeed,
    Resources,
    ceil_div,
    code_range,
    divisors,
    element_bits,
)
from accelgen.kernels.conv import Window, window
from accelgen.plan import LayerFold

OPS = (ir.MaxPool, ir.AvgPool)


@dataclass(frozen=True, kw_only=True)
class PoolSpec(LayerSpec):
    win: Window
    strides: tuple[int, int]
    reduce: str  # "max" or "sum"
    a_bits: int
    acc_bits: int  # width of the reduction (a_bits for max)
    requant: requant.RequantSpec

    @property
    def overlapping(self) -> bool:
        return self.strides[0] < self.win.kh or self.strides[1] < self.win.kw


def matches(op: ir.Op) -> bool:
    return isinstance(op, OPS)


def describe(op: ir.MaxPool | ir.AvgPool, graph: ir.Graph) -> PoolSpec:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    win = window(x, out, op.kernel, (1, 1), op.pads)
    a_bits = element_bits(x)
    is_sum = isinstance(op, ir.AvgPool)
    lo, hi = code_range(x.qtype)
    taps = win.kh * win.kw
    acc_bits = ir.signed_bits_for(taps * min(lo, 0), taps * max(hi, 0)) if is_sum else a_bits
    rq = getattr(op, "requant", None)
    out_bits = element_bits(out) if out.kind == "codes" else acc_bits
    return PoolSpec(
        name=op.name, kind=op.kind, in_bits=(a_bits,), in_elems=(win.ih * win.iw * win.ic,), out_bits=out_bits,
        out_elems=win.oh * win.ow * win.ic, win=win, strides=tuple(op.strides), reduce="sum" if is_sum else "max",
        a_bits=a_bits, acc_bits=acc_bits, requant=requant.describe(rq, acc_bits, out_bits),
    )  # fmt: skip


def legal(spec: PoolSpec) -> dict[str, list[int]]:
    return {"pe": divisors(spec.win.ic), "simd": [1]}


def cost(spec: PoolSpec, fold: LayerFold) -> Cost:
    w, pe = spec.win, fold.pe
    cycles = max(w.ih * w.iw, w.oh * w.ow * w.kh * w.kw) * (w.ic // pe)
    if spec.overlapping:
        buffer = hw.ram(pe * spec.a_bits, ceil_div(w.line_buffer_entries, pe))
    else:
        buffer = hw.ram(pe * spec.acc_bits, ceil_div(w.ow * w.ic, pe))
    if spec.reduce == "max":
        unit = Resources(lut=hw.comparator_luts(spec.a_bits) + spec.a_bits, ff=spec.a_bits)
    else:
        unit = hw.adder(spec.acc_bits)
    rq_res, rq_depth = requant.cost(spec.requant, spec.acc_bits, spec.out_bits, pe, w.ic)
    res = unit * pe + buffer + rq_res + hw.KERNEL_CONTROL + hw.input_fifos(spec.in_bits, spec.bypass, (pe,))
    depth = ceil_div(w.first_window_elems, pe) + hw.BRAM_READ_LATENCY + 1 + rq_depth
    return Cost(cycles=cycles, depth=depth, resources=res)


def lag(spec: PoolSpec) -> int:
    return spec.win.first_window_elems


def multiplier(spec: PoolSpec) -> MultiplierNeed:
    return MultiplierNeed(0, {})
