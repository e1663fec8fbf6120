"""Depthwise convolution kernel (groups == IC == OC): window generator + per-channel MACs.

Folding (accelgen.plan): ``pe`` channels in parallel, ``simd`` kernel taps per cycle;
``pe = ceil(C / n)`` for a fold count n (a divisor, or the last fold padded:
:func:`padded_window`); ``simd | KH*KW`` below every channel, and at ``pe == C`` a tap word's size
(:func:`legal`: ``t | KW``, or ``KW * r`` for ``r | KH``, as the ``conv`` kernel's tap
words); ``pixels`` output pixels per cycle (``pixels | OW``, above 1 only at ``pe == C``
and ``simd == 1``: the window generator emits that many pixels' words at once and the
vector unit has ``pixels * C`` lanes, each with its channel's weights, so its weight ROMs
are repeated per pixel). Other grouped convolutions are the ``conv`` kernel's.

As generated (hls/accelgen/swg.h, mvau.h vvau): the window generator keeps ``(KH-1)*DH + 1
+ SH`` whole rows and emits an output row's windows while it reads the next output row's
rows, in one of two forms (:func:`taps`):

* ``pe < C`` or ``simd == 1``: words of ``pe`` channels, one tap word per cycle in depthwise
  order (channel group major, then tap); a gearbox gathers ``simd`` taps into one word when
  ``simd > 1``, which buys no speed (the emissions are the bound);
* ``pe == C`` and ``simd > 1`` (tap-parallel): words of all C channels in convolution order
  with ``simd`` consecutive taps a word (swg.h TAPS_PER_WORD; lane ``t * C + c``, exactly
  the vector unit's ``t * PE + p``), no gearbox: ``simd`` taps per cycle, the line buffer
  banked as a convolution's at that many taps (:meth:`accelgen.kernels.conv.Window.banks`,
  ``slots``).

Cycles per frame = :meth:`accelgen.kernels.conv.Window.cycles`, about max(IH*IW*(C/pe)
(reads), OH*OW * KH*KW/taps * (C/pe) (emissions, ``taps`` = ``simd`` tap-parallel, else 1))
plus the first window's rows (the vector unit's OH*OW*(C/pe)*(KH*KW/simd) never exceeds the
emissions). The vector unit multiplies each lane with its own weight (no operand shared: no
packing). Weights: ``pe`` ROMs of ``simd * w_bits`` x ``(C/pe) * (KH*KW/simd)``. With
KH*KW/simd > 1 cycles per output word, multiply-shift requantizers are shared in time (one
per KH*KW/simd lanes instead of one per lane: :func:`accelgen.kernels.mvu.requantizers`; no
cycle more per frame, the output a few cycles later).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from accelgen import ir
from accelgen.kernels import hw, mvu, requant
from accelgen.kernels.base import (
    NONE,
    Cost,
    Fifo,
    Hardware,
    LayerSpec,
    MultiplierNeed,
    ceil_div,
    divisors,
    element_bits,
)
from accelgen.kernels.conv import Window, is_depthwise, window
from accelgen.plan import LayerFold

OPS = (ir.Conv,)


@dataclass(frozen=True, kw_only=True)
class DepthwiseSpec(LayerSpec):
    win: Window
    arith: mvu.Arith


def matches(op: ir.Op) -> bool:
    return isinstance(op, ir.Conv) and is_depthwise(op)


def weight_matrix(op: ir.Conv) -> np.ndarray:
    """(C, KH*KW) weights, one row per channel."""
    c, _, kh, kw = (int(d) for d in op.weights.shape)
    return np.asarray(op.weights, dtype=np.int64).reshape(c, kh * kw)


def describe(op: ir.Conv, graph: ir.Graph) -> DepthwiseSpec:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _, _, kh, kw = (int(d) for d in op.weights.shape)
    win = window(x, out, (kh, kw), op.dilations, op.pads, op.strides)
    arith = mvu.describe(x, op.w_qtype, weight_matrix(op), out, op.requant)
    return DepthwiseSpec(
        name=op.name, kind=op.kind, in_bits=(element_bits(x),), in_elems=(win.ih * win.iw * win.ic,),
        out_bits=arith.out_bits, out_elems=win.oh * win.ow * win.ic, win=win, arith=arith,
    )  # fmt: skip


def legal(spec: DepthwiseSpec) -> dict[str, list[int]]:
    """``simd``: the divisors of KH*KW, and at ``pe == C`` (``simd_at_pe``) the tap words
    swg.h emits in convolution order: ``t | KW`` (taps of one kernel row) or ``KW * r``
    for ``r | KH`` (``r`` whole kernel rows; ``r = KH``: the whole window). ``pixels``:
    output pixels per cycle (a divisor of the output width), above 1 only with every
    channel in parallel and one tap a word (``pixels_simd``: swg.h emits several pixels or
    several taps a word, not both). ``pe``: :func:`accelgen.kernels.mvu.pe_values`, the
    fewest lanes for each number of channel folds (:func:`padded_window`)."""
    w = spec.win
    return {"pe": mvu.pe_values(w.ic), "simd": divisors(w.kh * w.kw), "simd_at_pe": {w.ic: w.tap_words()},
            "pixels": divisors(w.ow), "pixels_pe": w.ic, "pixels_simd": [1], **requant.products(spec.arith.requant)}  # fmt: skip


def taps(spec: DepthwiseSpec, fold: LayerFold) -> int:
    """Kernel taps a window word carries: ``simd`` when tap-parallel (every channel, ``simd
    > 1``: convolution order, no gearbox), else 1 (depthwise order). Code generation and
    the cost model both read the form from here."""
    return fold.simd if fold.pe == spec.win.ic and fold.simd > 1 else 1


def padded_window(spec: DepthwiseSpec, pe: int) -> Window:
    """The window the generator and the vector unit see at ``pe`` lanes: the layer's own when
    ``pe`` divides C, else over ``ceil(C / pe) * pe`` channels, the last fold padded. A
    gearbox framed per pixel (streams.h) re-cuts each pixel's C channels, which arrive in
    words of :func:`accelgen.kernels.mvu.out_lanes` lanes, into ``ceil(C / pe)`` words of
    ``pe`` lanes, the last one padded with zero codes; the padded lanes run the last
    channel's weights and requantizer (any valid code times them stays in the proved
    accumulator range) and the unit's output gearbox drops them
    (:func:`accelgen.kernels.mvu.padded_output`)."""
    channels = ceil_div(spec.win.ic, pe) * pe
    return spec.win if channels == spec.win.ic else dataclasses.replace(spec.win, ic=channels)


def hardware(spec: DepthwiseSpec, fold: LayerFold) -> Hardware:
    pe, simd, group, ar = fold.pe, fold.simd, fold.pixels, spec.arith
    w = padded_window(spec, pe)
    a_bits = spec.in_bits[0]
    lanes = pe * group  # ``group`` pixels side by side (pe == C): one vector unit of that many lanes
    word_taps = taps(spec, fold)
    taps_words = w.kh * w.kw // simd
    rq = mvu.requantizers(ar, lanes, taps_words, fold.requant)
    compute = w.oh * w.ow // group * (w.ic // pe) * taps_words
    buffer, windows, generator = w.generator(pe, a_bits, group, word_taps)
    memories = (*mvu.weights(ar, lanes, simd, (w.ic // pe) * taps_words), buffer)
    in_lanes = mvu.out_lanes(spec.win.ic, pe)
    # each pixel's channels re-cut into pe-lane words, the last one padded (priced with its
    # kernel control, as the output's padded-lane gearbox is)
    padding = mvu.recut_input(in_lanes, pe, a_bits)
    fifos = [*hw.input_fifos(spec.in_bits, spec.in_elems, spec.bypass, (in_lanes,)), *padding.fifos, windows]
    logic, pipe = mvu.logic(ar, lanes, simd, w.ic * group, rq=rq)
    logic = logic + generator + padding.logic + (hw.KERNEL_CONTROL if padding.gearboxes else NONE)
    gearboxes = list(padding.gearboxes)
    depth = ceil_div(w.first_window_elems, pe) + w.kh * w.kw // word_taps + pipe + padding.depth
    if simd > word_taps:  # depthwise order: a gearbox gathers ``simd`` tap words, a dataflow stage of its own
        fifos.append(Fifo("tap_words", lanes * simd * a_bits, hw.STREAM_FIFO_DEPTH))
        gearboxes.append((lanes * a_bits, lanes * simd * a_bits))
        logic = logic + hw.gearbox(*gearboxes[-1])
        depth += hw.GEARBOX_LATENCY
    out = mvu.padded_output(ar, spec.win.ic, pe, taps_words)
    cycles = w.cycles(pe, group, word_taps, busy=compute)
    return Hardware(cycles=cycles, depth=depth + out.depth, macs=mvu.macs(ar, lanes, simd), memories=memories,
                    fifos=(*fifos, *out.fifos), logic=logic + out.logic, requantizers=(rq,),
                    gearboxes=(*gearboxes, *out.gearboxes))  # fmt: skip


def stream_lanes(spec: DepthwiseSpec, fold: LayerFold) -> tuple[tuple[int, ...], int]:
    """The layer reads and writes words of ``pe`` lanes (``pe * pixels`` out), or, when ``pe``
    does not divide C, of :func:`accelgen.kernels.mvu.out_lanes` lanes, which its input and
    output gearboxes re-cut per pixel (:func:`padded_window`)."""
    lanes = mvu.out_lanes(spec.win.ic, fold.pe)
    return (lanes,), lanes * fold.pixels


def cost(spec: DepthwiseSpec, fold: LayerFold) -> Cost:
    return hw.price(hardware(spec, fold))


def lag(spec: DepthwiseSpec) -> int:
    return spec.win.first_window_elems


def multiplier(spec: DepthwiseSpec) -> MultiplierNeed:
    w = spec.win
    return mvu.unit_multiplier(spec.arith, w.oh * w.ow * w.ic * w.kh * w.kw)
