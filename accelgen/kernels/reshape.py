"""Reshape: pure layout, the stream order does not change, so no hardware and no folding."""

from __future__ import annotations

from dataclasses import dataclass

from accelgen import ir
from accelgen.kernels import hw
from accelgen.kernels.base import Cost, Hardware, LayerSpec, MultiplierNeed, element_bits
from accelgen.plan import LayerFold

OPS = (ir.Reshape,)


@dataclass(frozen=True, kw_only=True)
class ReshapeSpec(LayerSpec):
    pass


def matches(op: ir.Op) -> bool:
    return isinstance(op, ir.Reshape)


def describe(op: ir.Reshape, graph: ir.Graph) -> ReshapeSpec:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    return ReshapeSpec(name=op.name, kind=op.kind, in_bits=(element_bits(x),), in_elems=(x.elements_per_sample(),),
                       out_bits=element_bits(out), out_elems=out.elements_per_sample())  # fmt: skip


def legal(spec: ReshapeSpec) -> dict[str, list[int]]:
    return {"pe": [1], "simd": [1]}


def hardware(spec: ReshapeSpec, fold: LayerFold) -> Hardware:
    return Hardware(cycles=0, depth=0)  # an alias of its input stream: nothing is generated


def cost(spec: ReshapeSpec, fold: LayerFold) -> Cost:
    return hw.price(hardware(spec, fold))


def lag(spec: ReshapeSpec) -> int:
    return 0


def multiplier(spec: ReshapeSpec) -> MultiplierNeed:
    return MultiplierNeed(0, {})
