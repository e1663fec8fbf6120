"""Residual add kernel: ``m0 * (a - za) + m1 * (b - zb)`` requantized, ``pe`` channels per cycle.

Folding (accelgen.plan): ``pe | C``, ``simd`` = 1; cycles per frame = H*W * (C/pe).
The integer input multipliers are constants (shift-and-add); the bypass FIFO of the
forked input is sized by the stream plumbing (accelgen.kernels.streams).
"""

from __future__ import annotations

from dataclasses import dataclass

from accelgen import ir
from accelgen.kernels import hw, requant
from accelgen.kernels.base import (
    Cost,
    Hardware,
    LayerSpec,
    MultiplierNeed,
    Resources,
    divisors,
    element_bits,
    feature_map,
)
from accelgen.plan import LayerFold

OPS = (ir.Add,)


@dataclass(frozen=True, kw_only=True)
class AddSpec(LayerSpec):
    pixels: int
    channels: int
    multipliers: tuple[int, int]
    acc_bits: int
    requant: requant.RequantSpec


def matches(op: ir.Op) -> bool:
    return isinstance(op, ir.Add)


def describe(op: ir.Add, graph: ir.Graph) -> AddSpec:
    ins = [graph.tensors[t] for t in op.inputs]
    out = graph.tensors[op.outputs[0]]
    h, w, c = feature_map(out)
    lo = hi = 0
    for m, t in zip(op.input_multipliers, ins):
        a, b = (m * v for v in ir.centred_range(t.qtype))
        lo, hi = lo + min(a, b), hi + max(a, b)
    acc_bits = ir.signed_bits_for(min(lo, 0), max(hi, 0))
    out_bits = element_bits(out) if out.kind == "codes" else acc_bits
    return AddSpec(
        name=op.name, kind=op.kind, in_bits=tuple(element_bits(t) for t in ins),
        in_elems=tuple(t.elements_per_sample() for t in ins), out_bits=out_bits, out_elems=h * w * c,
        pixels=h * w, channels=c, multipliers=tuple(int(m) for m in op.input_multipliers), acc_bits=acc_bits,
        requant=requant.describe(op.requant, acc_bits, out_bits),
    )  # fmt: skip


def legal(spec: AddSpec) -> dict[str, list[int]]:
    return {"pe": divisors(spec.channels), "simd": [1], **requant.products(spec.requant)}


def hardware(spec: AddSpec, fold: LayerFold) -> Hardware:
    pe = fold.pe
    scale = sum(hw.const_multiplier_luts(m, b) for m, b in zip(spec.multipliers, spec.in_bits))
    unit = hw.adder(spec.acc_bits) + Resources(lut=scale)
    rq_res, rq_depth = requant.cost(spec.requant, spec.acc_bits, spec.out_bits, pe, spec.channels, product=fold.requant)
    fifos = hw.input_fifos(spec.in_bits, spec.in_elems, spec.bypass, (pe,) * len(spec.in_bits))
    return Hardware(cycles=spec.pixels * (spec.channels // pe), depth=2 + rq_depth, fifos=fifos,
                    logic=unit * pe + rq_res + hw.KERNEL_CONTROL,
                    requantizers=(requant.units(spec.requant, pe, 1, fold.requant),))  # fmt: skip


def cost(spec: AddSpec, fold: LayerFold) -> Cost:
    return hw.price(hardware(spec, fold))


def lag(spec: AddSpec) -> int:
    return 0


def multiplier(spec: AddSpec) -> MultiplierNeed:
    return MultiplierNeed(0, {})
