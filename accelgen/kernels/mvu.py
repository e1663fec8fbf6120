"""The multiply-accumulate datapath shared by the Dense, Conv, depthwise and TT kernels.

``pe`` processing elements each take ``simd`` products per cycle: multipliers of one kind
(:func:`accelgen.kernels.hw.mac_kind`), an adder tree per PE, an accumulator per PE, a
weight ROM per PE (``simd`` weights wide, ``tiles`` deep), and requantization units (one per
lane, or fewer shared in time: :func:`requantizers`).

A matrix unit's ``pe`` need not divide its output channels (:func:`pe_values`): it then
computes ``ceil(channels / pe)`` folds of ``pe`` lanes, the last fold's lanes past the
channels padded (weights and requantizer parameters of the last channel, so every lane
stays in the proved accumulator range), and a gearbox drops them at the unit's output
(:func:`padded_output`), so every stream outside the layer carries whole channels.

Likewise its ``simd`` need not divide the reduction (the K elements each output sums) when
the weights have a zero code (:func:`simd_values`, up to 16 words): it then takes
``ceil(K / simd)`` words per reduction, the last word's lanes past K padded (zero weights,
so whatever the input there adds 0 and the proved accumulator range holds), and a gearbox
framed per reduction re-cuts the input words into them (:func:`recut_input`; streams.h
pads the last word with zero bits).

:func:`describe` is the one definition of a layer's arithmetic as generated: the width of
the centred activation (``code - zero_point``), of the weight codes, the multiplier kind
and the accumulator range proved from the weight values. Code generation
(accelgen.codegen.layers) emits exactly these types; the cost model prices them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from accelgen import ir
from accelgen.kernels import hw, requant
from accelgen.kernels.base import (
    NONE,
    Fifo,
    Mac,
    Memory,
    MultiplierNeed,
    Requantizers,
    Resources,
    ceil_div,
    divisors,
    element_bits,
)


@dataclass(frozen=True)
class Arith:
    """Widths and ranges of one layer's products and accumulator, as generated."""

    mac: str
    in_bits: int  # one element of the input stream (its codes)
    a_bits: int  # the centred activation the multipliers take
    w_bits: int
    x_range: tuple[int, int]
    w_range: tuple[int, int]
    acc_range: tuple[int, int]
    acc_bits: int
    out_bits: int
    product_bits: int
    requant: requant.RequantSpec

    @property
    def zero_weight(self) -> bool:
        """Whether the weights have a zero code (they are not bipolar: the products are not
        a sign), so a word's lanes past the reduction can be padded (:func:`simd_values`)."""
        return self.mac not in ("XnorPopcount", "SignSelect")


def acc_range(matrix: np.ndarray, clo: int, chi: int) -> tuple[int, int]:
    """Bounds of every (partial) sum of a row of ``matrix`` times inputs in [clo, chi], the
    worst row (:func:`accelgen.ir.sum_ranges` with ``partial``; padding contributes 0)."""
    if np.size(matrix) == 0:
        return 0, 0
    lo, hi = ir.sum_ranges(matrix, clo, chi, partial=True)
    return int(min(lo)), int(max(hi))


def describe(x: ir.Tensor, w_qtype: ir.QType, matrix: np.ndarray, out: ir.Tensor, rq: ir.Requant | None) -> Arith:
    """The arithmetic of ``out = rq(matrix @ (x - zp))``; ``matrix``: (outputs, fan_in)
    integer weights (``code - zero_point``)."""
    x_range, w_range = ir.centred_range(x.qtype), ir.centred_range(w_qtype)
    a_bits = 1 if x.qtype.bipolar else ir.range_bits(*x_range)
    w_bits = 1 if w_qtype.bipolar else ir.range_bits(*w_range)
    lo, hi = acc_range(np.asarray(matrix), *x_range)
    acc_bits = ir.signed_bits_for(lo, hi)
    out_bits = element_bits(out) if out.kind == "codes" else max(out.qtype.bits, acc_bits)
    corners = [a * b for a in x_range for b in w_range]
    return Arith(
        mac=hw.mac_kind(x.qtype.bipolar, a_bits, w_qtype.bipolar, w_bits),
        in_bits=element_bits(x),
        a_bits=a_bits,
        w_bits=w_bits,
        x_range=x_range,
        w_range=w_range,
        acc_range=(lo, hi),
        acc_bits=acc_bits,
        out_bits=out_bits,
        product_bits=ir.signed_bits_for(min(min(corners), 0), max(max(corners), 0)),
        requant=requant.describe(rq, acc_bits, out_bits),
    )


def macs(ar: Arith, pe: int, simd: int, pixels: int = 1) -> tuple[Mac, ...]:
    """``pe * simd`` products per pixel, ``pixels`` pixels side by side."""
    return (Mac(ar.mac, pe * simd * pixels, ar.a_bits, ar.w_bits),)


def matrix_mac(ar: Arith, pe: int) -> str:
    """The policy the matrix unit (mvau.h) instantiates: DspPacked (two PEs' products of the
    same input lane per DSP48E2) for DSP products that fit a pair when there are two PEs or
    more, else the arithmetic's own kind. The vector units share no operand and never pack."""
    if pe >= 2 and ar.mac == "DspMultiply" and hw.packs_pair(*signed_widths(ar)):
        return "DspPacked"
    return ar.mac


def signed_widths(ar: Arith) -> tuple[int, int]:
    """The activation's and the weight's widths as signed numbers (mac.h's SignedWidth: an
    unsigned type takes one bit more), the operands mac.h's packed_pair multiplies."""
    return ar.a_bits + (ar.x_range[0] >= 0), ar.w_bits + (ar.w_range[0] >= 0)


def matrix_macs(ar: Arith, pe: int, simd: int, pixels: int = 1) -> tuple[Mac, ...]:
    """The matrix unit's products: as :func:`macs`, with PE pairs packed (DspPacked) where
    :func:`matrix_mac` says so; an odd last PE stays a DspMultiply."""
    if matrix_mac(ar, pe) != "DspPacked":
        return macs(ar, pe, simd, pixels)
    lanes = simd * pixels
    out = [Mac("DspPacked", 2 * (pe // 2) * lanes, ar.a_bits, ar.w_bits)]
    if pe % 2:
        out.append(Mac("DspMultiply", lanes, ar.a_bits, ar.w_bits))
    return tuple(out)


def weights(ar: Arith, pe: int, simd: int, tiles: int) -> tuple[Memory, ...]:
    """``pe`` weight ROMs of ``simd`` weights per word, ``tiles`` words deep."""
    return (Memory("weights", "rom", simd * ar.w_bits, tiles, pe),) if tiles > 0 else ()


def unit_multiplier(ar: Arith, n_macs: int, pairs: bool = False) -> MultiplierNeed:
    """The cheapest one product can be, for the lower bound: one product of the layer's kind
    (a bipolar product: its share of the popcount's first level; ``pairs``: a matrix unit
    that can have two PEs, whose DSP products pack two to a DSP48E2, half a DSP each)."""
    res = hw.mac_resources(Mac(ar.mac, 1, ar.a_bits, ar.w_bits))
    unit = {k: float(v) for k, v in res.as_dict().items() if k in ("lut", "dsp") and v}
    if pairs and matrix_mac(ar, 2) == "DspPacked":
        unit = {"dsp": 0.5}
    if ar.mac == "XnorPopcount":
        unit = {"lut": hw.POPCOUNT_GROUP_LUTS / hw.POPCOUNT_GROUP}
    return MultiplierNeed(n_macs, unit)


def requantizers(ar: Arith, lanes: int, sf: int, product: str = requant.DEFAULT_PRODUCT) -> Requantizers:
    """The requantizers of a matrix or vector unit with ``lanes`` lanes per output word and
    ``sf`` synapse folds (cycles per word), their products built where ``product`` (the
    fold's ``requant``) says: :func:`accelgen.kernels.requant.units`, which code generation
    reads as the unit's REQUANT_LANES and its requantizer's product policy."""
    return requant.units(ar.requant, lanes, sf, product)


def logic(ar: Arith, pe: int, simd: int, channels: int, pixels: int = 1,
          rq: Requantizers | None = None) -> tuple[Resources, int]:  # fmt: skip
    """Adder trees (popcounts for bipolar products), accumulators, requantizers and control of ``pe`` PEs
    (per pixel of ``pixels`` side by side, sharing the requantizers' tables), and the pipeline
    latency (weight read, multiply, tree, accumulate, requantize). ``rq``: the unit's
    requantizers (:func:`requantizers`; None: one per lane, as tt.h's steps have)."""
    tree = hw.popcount(simd) if ar.mac == "XnorPopcount" else hw.adder_tree(simd, ar.product_bits)
    res = (tree * pe + hw.adder(ar.acc_bits) * pe) * pixels
    if rq is not None and rq.shared:
        rq_res, rq_depth = requant.shared_cost(ar.requant, ar.acc_bits, ar.out_bits, rq, channels // pe)
    else:
        product = rq.product if rq is not None else requant.DEFAULT_PRODUCT
        rq_res, rq_depth = requant.cost(ar.requant, ar.acc_bits, ar.out_bits, pe, channels, pixels, product)
    res = res + rq_res + hw.KERNEL_CONTROL
    mult = hw.DSP_LATENCY if ar.mac == "DspMultiply" else 1  # DspPacked: the same DSP pipeline
    return res, hw.BRAM_READ_LATENCY + mult + hw.tree_levels(simd) + 1 + rq_depth


def pe_values(channels: int) -> list[int]:
    """The legal ``pe`` of a matrix unit over ``channels`` output channels: for every number
    of channel folds n, the fewest lanes that take n folds, ``ceil(channels / n)`` (every
    divisor is one; any other ``pe`` pads more lanes for the same folds)."""
    return sorted({ceil_div(channels, n) for n in range(1, channels + 1)})


#: the most words a reduction takes at a ``simd`` that pads its last word: the explorer prices every
#: (pe, simd) pair, and the fewest lanes for every word count (about 2 sqrt(K) values) would double
#: its options on wide layers (benchmarks/bench_scale.py's 50-layer MLPs took 2.1 s at every word
#: count before describe_layers priced equal layers once); up to 16 words the steps between
#: divisors are the widest (K / 2 to K / 3 ...), beyond them the divisors and padded ``pe`` step
#: finely enough. 8 was not enough for MobileNetV1's pointwise layers on ultra96 (K = 64 to 256 at
#: 9 to 16 words a pixel: II 18,432 at 8, 17,280 at 16)
PADDED_SIMD_WORDS = 16


def simd_values(reduction: int, padded: bool) -> list[int]:
    """The legal ``simd`` of a matrix unit summing ``reduction`` elements per output: the
    divisors of the reduction, and with ``padded`` (weights with a zero code, not bipolar)
    the fewest lanes for every number of words n up to :data:`PADDED_SIMD_WORDS`,
    ``ceil(reduction / n)`` as :func:`pe_values` (the last word padded with zero weights)."""
    whole = divisors(reduction)
    if not padded:
        return whole
    return sorted(set(whole) | {ceil_div(reduction, n) for n in range(1, min(reduction, PADDED_SIMD_WORDS) + 1)})


def in_lanes(reduction: int, simd: int) -> int:
    """Lanes of the input words that carry a reduction to a unit at ``simd``: ``simd`` when
    it divides the reduction, else the smallest divisor above it (whole reductions a frame,
    re-cut by :func:`recut_input`)."""
    return out_lanes(reduction, simd)


@functools.lru_cache(maxsize=4096)
def out_lanes(channels: int, pe: int) -> int:
    """Lanes of the stream a matrix unit's layer writes: ``pe`` when it divides the channels,
    else the smallest divisor of the channels above ``pe`` (:func:`padded_output`)."""
    return next(d for d in divisors(channels) if d >= pe)


class PaddedOutput(NamedTuple):
    """What :func:`padded_output` (or :func:`recut_input`) adds to a layer: the stream
    between the gearbox and the unit, the gearbox's (in_bits, out_bits), its logic, and the
    cycles it adds to the depth."""

    fifos: tuple[Fifo, ...] = ()
    gearboxes: tuple[tuple[int, int], ...] = ()
    logic: Resources = NONE
    depth: int = 0


@functools.lru_cache(maxsize=4096)
def padded_output(ar: Arith, channels: int, pe: int, sf: int) -> PaddedOutput:
    """The gearbox (streams.h) behind a unit whose ``pe`` does not divide its ``channels``
    (none when it does): per pixel it reads the unit's ``ceil(channels / pe)`` words of ``pe``
    lanes and writes ``channels / L`` words of :func:`out_lanes` L lanes, dropping the padded
    lanes (the rest of a pixel's bits). L >= ``pe``, so it writes at most one word per word
    read and takes one cycle per word read, within the unit's ``sf`` cycles per word: no
    cycle more per frame. Its logic: a general gearbox (L is never a multiple of ``pe``) and
    its kernel control; its first output word waits for ``ceil(L / pe)`` of the unit's
    words, ``sf`` cycles apart, and its register."""
    lanes = out_lanes(channels, pe)
    if lanes == pe:
        return PaddedOutput()
    widths = (pe * ar.out_bits, lanes * ar.out_bits)
    return PaddedOutput((Fifo("unit_output", widths[0], hw.STREAM_FIFO_DEPTH),), (widths,),
                        hw.gearbox(*widths) + hw.KERNEL_CONTROL, (ceil_div(lanes, pe) - 1) * sf + 1)  # fmt: skip


@functools.lru_cache(maxsize=4096)
def recut_input(elems: int, simd: int, bits: int) -> PaddedOutput:
    """The gearbox (streams.h) in front of a unit whose input words of ``elems`` elements of
    ``bits`` are not its ``simd`` (none when they are): per reduction of K elements it reads
    K / ``elems`` words and writes ``ceil(K / simd)`` words of ``simd`` lanes, the last one's
    lanes past K zero bits (their weights are zero). ``elems`` >= ``simd``, so it writes one
    word a cycle, as the unit reads them: no cycle more per frame; its logic
    (:func:`accelgen.kernels.hw.gearbox`, its counters included) and its one pipelined cycle."""
    if elems == simd:
        return PaddedOutput()
    widths = (elems * bits, simd * bits)
    return PaddedOutput((Fifo("simd_words", widths[1], hw.STREAM_FIFO_DEPTH),), (widths,), hw.gearbox(*widths),
                        hw.GEARBOX_LATENCY)  # fmt: skip
