"""Depthwise / grouped convolution kernel (groups > 1): window generator + per-channel MACs.

Folding (accelgen.plan): ``pe`` output channels in parallel, ``simd`` kernel taps per
cycle; ``pe | OC``, ``simd | KH*KW``; cycles per frame = OH*OW * (IC/groups) *
(KH*KW/simd) * (OC/pe), or the input reads IH*IW * ceil(IC/pe) when larger. Each product
has its own activation and weight, so no DSP packing. Line buffer: (KH-1)*W*C + KW*C
entries in ``simd`` banks of ``pe`` channels. Weights: ``pe`` ROMs of ``simd * w_bits``.
"""

from __future__ import annotations

from dataclasses import dataclass

from accelgen import ir
from accelgen.kernels import hw, mvu
from accelgen.kernels.base import Cost, LayerSpec, MultiplierNeed, ceil_div, divisors, element_bits
from accelgen.kernels.conv import Window, window
from accelgen.plan import LayerFold

OPS = (ir.Conv,)


@dataclass(frozen=True, kw_only=True)
class DepthwiseSpec(LayerSpec):
    win: Window
    oc: int
    icg: int  # input channels per group (1 for depthwise)
    arith: mvu.Arith


def matches(op: ir.Op) -> bool:
    return isinstance(op, ir.Conv) and op.groups > 1


def describe(op: ir.Conv, graph: ir.Graph) -> DepthwiseSpec:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    oc, icg, kh, kw = (int(d) for d in op.weights.shape)
    win = window(x, out, (kh, kw), op.dilations, op.pads)
    arith = mvu.describe(x, op.w_qtype, icg * kh * kw, out, op.requant)
    return DepthwiseSpec(
        name=op.name, kind=op.kind, in_bits=(element_bits(x),), in_elems=(win.ih * win.iw * win.ic,),
        out_bits=arith.out_bits, out_elems=win.oh * win.ow * oc, win=win, oc=oc, icg=icg, arith=arith,
    )  # fmt: skip


def legal(spec: DepthwiseSpec) -> dict[str, list[int]]:
    return {"pe": divisors(spec.oc), "simd": divisors(spec.win.kh * spec.win.kw)}


def cost(spec: DepthwiseSpec, fold: LayerFold) -> Cost:
    w, pe, simd = spec.win, fold.pe, fold.simd
    taps_words = spec.icg * (w.kh * w.kw // simd)
    compute = w.oh * w.ow * taps_words * (spec.oc // pe)
    reads = w.ih * w.iw * ceil_div(w.ic, pe)
    res, pipe = mvu.cost(spec.arith, pe, simd, taps_words * (spec.oc // pe), spec.oc, shared_input=False)
    bank_depth = ceil_div(w.line_buffer_entries, pe * simd)
    res = res + hw.ram(pe * spec.arith.a_bits, bank_depth) * simd
    res = res + hw.input_fifos(spec.in_bits, spec.bypass, (pe,))
    depth = ceil_div(w.first_window_elems, pe) + taps_words + pipe
    return Cost(cycles=max(compute, reads), depth=depth, resources=res, multipliers=pe * simd)


def lag(spec: DepthwiseSpec) -> int:
    return spec.win.first_window_elems


def multiplier(spec: DepthwiseSpec) -> MultiplierNeed:
    w = spec.win
    return mvu.unit_multiplier(spec.arith, w.oh * w.ow * spec.oc * spec.icg * w.kh * w.kw, shared_input=False)
