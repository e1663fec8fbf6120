"""Pooling kernel (MaxPool, AvgPool): a window reduction, ``pe`` channels per cycle.

Folding (accelgen.plan): ``pe | C``, ``simd`` = 1; a window pool also ``pixels`` output
pixels per cycle (``pixels | OW``, above 1 only at ``pe == C``: ``pixels * C`` reduction lanes). As generated (hls/accelgen/pool.h):
a global pool (one window over the whole map) reads every pixel once into ``C/pe`` words
of ``pe`` accumulators (a RAM from 4 words up, else registers) and then writes them: IH*IW*(C/pe) + C/pe cycles per frame; any
other pool is the window generator (conv.Window, depthwise order, reads overlapping
emissions: :meth:`~accelgen.kernels.conv.Window.cycles`, about max(IH*IW*(C/pe),
OH*OW*KH*KW*(C/pe)) plus the first window's rows) and a reduction of each window's taps in ``pe``
accumulator registers. Max compares codes; the average pool sums ``code - zero_point``
and requantizes (the 1/k is in the requantizer).
"""

from __future__ import annotations

from dataclasses import dataclass

from accelgen import ir
from accelgen.kernels import hw, requant
from accelgen.kernels.base import (
    Cost,
    Hardware,
    LayerSpec,
    Memory,
    MultiplierNeed,
    Resources,
    ceil_div,
    divisors,
    element_bits,
)
from accelgen.kernels.conv import Window, window
from accelgen.plan import LayerFold

OPS = (ir.MaxPool, ir.AvgPool)

#: pool.h's GLOBAL_POOL_RAM_GROUPS: from this many channel groups up the running sums of a
#: global pool are a RAM (a group recurs no sooner than this many iterations, so the RAM's
#: read-reduce-write never overlaps itself); fewer are a shift register of registers
GLOBAL_POOL_RAM_GROUPS = 4


@dataclass(frozen=True, kw_only=True)
class PoolSpec(LayerSpec):
    win: Window
    strides: tuple[int, int]
    reduce: str  # "max" or "sum"
    a_bits: int
    acc_bits: int  # width of the reduction (a_bits for max)
    requant: requant.RequantSpec
    padded: bool


def matches(op: ir.Op) -> bool:
    return isinstance(op, OPS)


def describe(op: ir.MaxPool | ir.AvgPool, graph: ir.Graph) -> PoolSpec:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    win = window(x, out, op.kernel, (1, 1), op.pads, op.strides)
    a_bits = element_bits(x)
    is_sum = isinstance(op, ir.AvgPool)
    lo, hi = ir.centred_range(x.qtype)
    taps = win.kh * win.kw
    acc_bits = ir.signed_bits_for(taps * min(lo, 0), taps * max(hi, 0)) if is_sum else a_bits
    rq = getattr(op, "requant", None)
    out_bits = element_bits(out) if out.kind == "codes" else acc_bits
    return PoolSpec(
        name=op.name, kind=op.kind, in_bits=(a_bits,), in_elems=(win.ih * win.iw * win.ic,), out_bits=out_bits,
        out_elems=win.oh * win.ow * win.ic, win=win, strides=tuple(op.strides), reduce="sum" if is_sum else "max",
        a_bits=a_bits, acc_bits=acc_bits, requant=requant.describe(rq, acc_bits, out_bits), padded=any(op.pads),
    )  # fmt: skip


def legal(spec: PoolSpec) -> dict[str, list[int]]:
    """``pixels``: output pixels per cycle of a window pool (a divisor of the output width,
    above 1 only with every channel in parallel); a global pool takes one."""
    pixels = [1] if is_global(spec) else divisors(spec.win.ow)
    return {"pe": divisors(spec.win.ic), "simd": [1], "pixels": pixels, "pixels_pe": spec.win.ic}


def is_global(spec: PoolSpec) -> bool:
    """One window covers the whole map: pool.h's global_pool, no window generator."""
    w = spec.win
    return w.oh == w.ow == 1 and (w.kh, w.kw) == (w.ih, w.iw) and not spec.padded


def hardware(spec: PoolSpec, fold: LayerFold) -> Hardware:
    w, pe, group = spec.win, fold.pe, fold.pixels
    lanes = pe * group  # ``group`` pixels side by side (pe == C): a reduction of that many lanes
    if spec.reduce == "max":
        unit = Resources(lut=hw.comparator_luts(spec.a_bits) + spec.a_bits, ff=spec.a_bits)
    else:
        unit = hw.adder(spec.acc_bits)
    rq_res, rq_depth = requant.cost(spec.requant, spec.acc_bits, spec.out_bits, lanes, w.ic * group)
    logic = unit * lanes + rq_res + hw.KERNEL_CONTROL
    fifos = list(hw.input_fifos(spec.in_bits, spec.in_elems, spec.bypass, (pe,)))
    if is_global(spec):
        groups = w.ic // pe
        if groups >= GLOBAL_POOL_RAM_GROUPS:
            memories = (Memory("accumulators", "ram", pe * spec.acc_bits, groups),)
        else:  # a shift register of the groups' accumulators (no loop-carried RAM access)
            memories, logic = (), logic + Resources(ff=groups * pe * spec.acc_bits)
        cycles, depth = w.reads(pe) + groups, w.reads(pe) + hw.BRAM_READ_LATENCY + 1 + rq_depth
    else:
        buffer, windows, generator = w.generator(pe, spec.a_bits, group)
        memories = (buffer,)
        fifos.append(windows)
        logic = logic + generator + Resources(ff=lanes * spec.acc_bits)
        cycles = w.cycles(pe, group)
        depth = ceil_div(w.first_window_elems, pe) + w.kh * w.kw + 1 + rq_depth
    return Hardware(cycles=cycles, depth=depth, memories=memories, fifos=tuple(fifos), logic=logic)


def cost(spec: PoolSpec, fold: LayerFold) -> Cost:
    return hw.price(hardware(spec, fold))


def lag(spec: PoolSpec) -> int:
    return spec.in_elems[0] if is_global(spec) else spec.win.first_window_elems


def multiplier(spec: PoolSpec) -> MultiplierNeed:
    return MultiplierNeed(0, {})
