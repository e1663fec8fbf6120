"""Channel concatenation kernel: no folding, it moves whole stream words.

Folding (accelgen.plan): ``pe = simd = 1``. Per pixel it forwards one word from each
input (that input's channels), so cycles per frame = H*W * (number of inputs).
"""

from __future__ import annotations

from dataclasses import dataclass

from accelgen import ir
from accelgen.kernels import hw
from accelgen.kernels.base import Cost, LayerSpec, MultiplierNeed, Resources, element_bits, feature_map
from accelgen.plan import LayerFold

OPS = (ir.Concat,)


@dataclass(frozen=True, kw_only=True)
class ConcatSpec(LayerSpec):
    pixels: int
    channels: tuple[int, ...]


def matches(op: ir.Op) -> bool:
    return isinstance(op, ir.Concat)


def describe(op: ir.Concat, graph: ir.Graph) -> ConcatSpec:
    ins = [graph.tensors[t] for t in op.inputs]
    out = graph.tensors[op.outputs[0]]
    h, w, c = feature_map(out)
    return ConcatSpec(
        name=op.name, kind=op.kind, in_bits=tuple(element_bits(t) for t in ins),
        in_elems=tuple(t.elements_per_sample() for t in ins), out_bits=element_bits(out), out_elems=h * w * c,
        pixels=h * w, channels=tuple(feature_map(t)[2] for t in ins),
    )  # fmt: skip


def legal(spec: ConcatSpec) -> dict[str, list[int]]:
    return {"pe": [1], "simd": [1]}


def cost(spec: ConcatSpec, fold: LayerFold) -> Cost:
    word = max(c * b for c, b in zip(spec.channels, spec.in_bits))
    res = Resources(lut=word, ff=word) + hw.KERNEL_CONTROL + hw.input_fifos(spec.in_bits, spec.bypass, spec.channels)
    return Cost(cycles=spec.pixels * len(spec.channels), depth=2, resources=res)


def lag(spec: ConcatSpec) -> int:
    return 0


def multiplier(spec: ConcatSpec) -> MultiplierNeed:
    return MultiplierNeed(0, {})
