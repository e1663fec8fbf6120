"""Convolution kernel (groups == 1): a sliding-window generator feeding a matrix-vector unit.

Folding (accelgen.plan): ``simd`` input channels and ``pe`` output channels per cycle,
``simd | IC``, ``pe | OC``; cycles per frame = OH*OW * KH*KW * (IC/simd) * (OC/pe), or the
window generator's input reads IH*IW * (IC/simd) when larger (a stride above the kernel
size). Line buffer: (KH-1)*W*C + KW*C entries (KH, KW: the dilated extent, W: the input
width), ``simd`` channels per word. Weights: ``pe`` ROMs of ``simd * w_bits`` x
``KH*KW * (IC/simd) * (OC/pe)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from accelgen import ir
from accelgen.kernels import hw, mvu
from accelgen.kernels.base import Cost, LayerSpec, MultiplierNeed, ceil_div, divisors, element_bits, feature_map
from accelgen.plan import LayerFold

OPS = (ir.Conv,)


@dataclass(frozen=True, kw_only=True)
class Window:
    """A sliding window over a channels-last input: taps, extent (dilated), offsets."""

    ih: int
    iw: int
    ic: int
    oh: int
    ow: int
    kh: int
    kw: int
    extent_h: int
    extent_w: int
    pad_top: int
    pad_left: int

    @property
    def line_buffer_entries(self) -> int:
        return (self.extent_h - 1) * self.iw * self.ic + self.extent_w * self.ic

    @property
    def first_window_elems(self) -> int:
        """Input elements that must arrive before the first window is complete."""
        rows = max(self.extent_h - 1 - self.pad_top, 0)
        cols = max(self.extent_w - self.pad_left, 1)
        return min(rows * self.iw * self.ic + cols * self.ic, self.ih * self.iw * self.ic)


def window(x: ir.Tensor, out: ir.Tensor, kernel: tuple[int, int], dilations: tuple[int, int],
           pads: tuple[int, int, int, int]) -> Window:  # fmt: skip
    ih, iw, ic = feature_map(x)
    oh, ow, _ = feature_map(out)
    kh, kw = kernel
    return Window(
        ih=ih, iw=iw, ic=ic, oh=oh, ow=ow, kh=kh, kw=kw,
        extent_h=(kh - 1) * dilations[0] + 1, extent_w=(kw - 1) * dilations[1] + 1,
        pad_top=pads[0], pad_left=pads[1],
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ConvSpec(LayerSpec):
    win: Window
    oc: int
    arith: mvu.Arith


def matches(op: ir.Op) -> bool:
    return isinstance(op, ir.Conv) and op.groups == 1


def describe(op: ir.Conv, graph: ir.Graph) -> ConvSpec:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    oc, icg, kh, kw = (int(d) for d in op.weights.shape)
    win = window(x, out, (kh, kw), op.dilations, op.pads)
    arith = mvu.describe(x, op.w_qtype, icg * kh * kw, out, op.requant)
    return ConvSpec(
        name=op.name, kind=op.kind, in_bits=(element_bits(x),), in_elems=(win.ih * win.iw * win.ic,),
        out_bits=arith.out_bits, out_elems=win.oh * win.ow * oc, win=win, oc=oc, arith=arith,
    )  # fmt: skip


def legal(spec: ConvSpec) -> dict[str, list[int]]:
    return {"pe": divisors(spec.oc), "simd": divisors(spec.win.ic)}


def cost(spec: ConvSpec, fold: LayerFold) -> Cost:
    w, pe, simd = spec.win, fold.pe, fold.simd
    taps_words = w.kh * w.kw * (w.ic // simd)
    compute = w.oh * w.ow * taps_words * (spec.oc // pe)
    reads = w.ih * w.iw * (w.ic // simd)
    res, pipe = mvu.cost(spec.arith, pe, simd, taps_words * (spec.oc // pe), spec.oc, shared_input=True)
    res = res + hw.ram(simd * spec.arith.a_bits, ceil_div(w.line_buffer_entries, simd))
    res = res + hw.input_fifos(spec.in_bits, spec.bypass, (simd,))
    depth = ceil_div(w.first_window_elems, simd) + taps_words + pipe
    return Cost(cycles=max(compute, reads), depth=depth, resources=res, multipliers=pe * simd)


def lag(spec: ConvSpec) -> int:
    return spec.win.first_window_elems


def multiplier(spec: ConvSpec) -> MultiplierNeed:
    w = spec.win
    return mvu.unit_multiplier(spec.arith, w.oh * w.ow * spec.oc * w.ic * w.kh * w.kw, shared_input=True)
