"""Element-wise requantization kernel (codes -> codes of another type), ``pe`` channels per cycle.

Folding (accelgen.plan): ``pe | C``, ``simd`` = 1; cycles per frame = H*W * (C/pe).
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
    divisors,
    element_bits,
    feature_map,
)
from accelgen.plan import LayerFold

OPS = (ir.Requantize,)


@dataclass(frozen=True, kw_only=True)
class RequantizeSpec(LayerSpec):
    pixels: int
    channels: int
    acc_bits: int
    requant: requant.RequantSpec


def matches(op: ir.Op) -> bool:
    return isinstance(op, ir.Requantize)


def describe(op: ir.Requantize, graph: ir.Graph) -> RequantizeSpec:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    h, w, c = feature_map(out)
    lo, hi = ir.centred_range(x.qtype)
    acc_bits = ir.signed_bits_for(min(lo, 0), max(hi, 0))
    out_bits = element_bits(out)
    return RequantizeSpec(
        name=op.name, kind=op.kind, in_bits=(element_bits(x),), in_elems=(x.elements_per_sample(),),
        out_bits=out_bits, out_elems=h * w * c, pixels=h * w, channels=c, acc_bits=acc_bits,
        requant=requant.describe(op.requant, acc_bits, out_bits),
    )  # fmt: skip


def legal(spec: RequantizeSpec) -> dict[str, list[int]]:
    return {"pe": divisors(spec.channels), "simd": [1], **requant.products(spec.requant)}


def hardware(spec: RequantizeSpec, fold: LayerFold) -> Hardware:
    pe = fold.pe
    rq_res, rq_depth = requant.cost(spec.requant, spec.acc_bits, spec.out_bits, pe, spec.channels, product=fold.requant)
    return Hardware(cycles=spec.pixels * (spec.channels // pe), depth=1 + rq_depth,
                    fifos=hw.input_fifos(spec.in_bits, spec.in_elems, spec.bypass, (pe,)),
                    logic=rq_res + hw.KERNEL_CONTROL,
                    requantizers=(requant.units(spec.requant, pe, 1, fold.requant),))  # fmt: skip


def cost(spec: RequantizeSpec, fold: LayerFold) -> Cost:
    return hw.price(hardware(spec, fold))


def lag(spec: RequantizeSpec) -> int:
    return 0


def multiplier(spec: RequantizeSpec) -> MultiplierNeed:
    return MultiplierNeed(0, {})
