"""The multiply-accumulate datapath shared by the Dense, Conv and depthwise kernels.

``pe`` processing elements each take ``simd`` products per cycle: multipliers (LUTs or
DSP48E2s), an adder tree per PE, an accumulator per PE, a weight ROM per PE (``simd``
weights wide, partitioned PE x SIMD), and a requantization unit per PE.
"""

from __future__ import annotations

from dataclasses import dataclass

from accelgen import ir
from accelgen.kernels import hw, requant
from accelgen.kernels.base import NONE, MultiplierNeed, Resources, code_range, element_bits


@dataclass(frozen=True)
class Arith:
    """Bit widths and value ranges of one layer's products and accumulator."""

    a_bits: int
    w_bits: int
    x_range: tuple[int, int]
    w_range: tuple[int, int]
    acc_bits: int
    out_bits: int
    product_bits: int
    requant: requant.RequantSpec


def describe(x: ir.Tensor, w_qtype: ir.QType, fan_in: int, out: ir.Tensor, rq: ir.Requant | None) -> Arith:
    """Widths from the QTypes (not the weight values): what the generated hardware sizes for."""
    x_range, w_range = code_range(x.qtype), code_range(w_qtype)
    acc_bits = hw.accumulator_bits(x_range, w_range, fan_in)
    out_bits = element_bits(out) if out.kind == "codes" else acc_bits
    lo, hi = hw.product_range(x_range, w_range)
    return Arith(
        a_bits=element_bits(x),
        w_bits=1 if w_qtype.bipolar else w_qtype.bits,
        x_range=x_range,
        w_range=w_range,
        acc_bits=acc_bits,
        out_bits=out_bits,
        product_bits=ir.signed_bits_for(min(lo, 0), max(hi, 0)),
        requant=requant.describe(rq, acc_bits, out_bits),
    )


def multipliers(ar: Arith, pe: int, simd: int, shared_input: bool) -> Resources:
    """``pe * simd`` products: LUT multipliers when narrow, else DSP48E2s, two per DSP
    where WP486 packing is legal (``shared_input``: the pe products of a lane share x)."""
    n = pe * simd
    if hw.products_in_luts(ar.a_bits, ar.w_bits):
        return Resources(lut=n * hw.lut_multiplier(ar.a_bits, ar.w_bits), ff=n * ar.product_bits)
    if shared_input and pe >= 2 and hw.packing_legal(ar.a_bits, ar.w_bits):
        return Resources(dsp=simd * ((pe + 1) // 2))
    return Resources(dsp=n * hw.dsp_tiles(ar.a_bits, ar.w_bits))


def unit_multiplier(ar: Arith, macs: int, shared_input: bool) -> MultiplierNeed:
    """The cheapest one multiplier can be, for the lower bound."""
    if hw.products_in_luts(ar.a_bits, ar.w_bits):
        return MultiplierNeed(macs, {"lut": float(hw.lut_multiplier(ar.a_bits, ar.w_bits))})
    if shared_input and hw.packing_legal(ar.a_bits, ar.w_bits):
        return MultiplierNeed(macs, {"dsp": 0.5})
    return MultiplierNeed(macs, {"dsp": float(hw.dsp_tiles(ar.a_bits, ar.w_bits))})


def cost(ar: Arith, pe: int, simd: int, rows: int, channels: int, shared_input: bool) -> tuple[Resources, int]:
    """Datapath resources and pipeline latency (weight read, multiply, tree, accumulate,
    requantize). ``rows``: weight words per PE; ``channels``: output channels."""
    res = multipliers(ar, pe, simd, shared_input)
    res = res + hw.adder_tree(simd, ar.product_bits) * pe
    res = res + hw.adder(ar.acc_bits) * pe
    res = res + (hw.rom(simd * ar.w_bits, rows) * pe if rows > 0 else NONE)
    rq_res, rq_depth = requant.cost(ar.requant, ar.acc_bits, ar.out_bits, pe, channels)
    res = res + rq_res + hw.KERNEL_CONTROL
    in_dsp = not hw.products_in_luts(ar.a_bits, ar.w_bits)
    depth = hw.BRAM_READ_LATENCY + (hw.DSP_LATENCY if in_dsp else 1) + hw.tree_levels(simd) + 1 + rq_depth
    return res, depth
