"""Channel concatenation kernel: no folding, it moves whole stream words.

Folding (accelgen.plan): ``pe = simd = 1``; the streams carry words of gcd(channels)
elements; per pixel the chain of two-input concatenations forwards every input's words,
one per cycle, so cycles per frame = H*W * sum(channels) / gcd(channels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from accelgen import ir
from accelgen.kernels import hw
from accelgen.kernels.base import Cost, Fifo, Hardware, LayerSpec, MultiplierNeed, Resources, element_bits, feature_map
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


def lanes(spec: ConcatSpec) -> int:
    """Elements per stream word: the greatest common divisor of the inputs' channels."""
    return math.gcd(*spec.channels)


def stream_lanes(spec: ConcatSpec, fold: LayerFold) -> tuple[tuple[int, ...], int]:
    """Every input and the output at :func:`lanes` a word (the folding does not change them)."""
    n = lanes(spec)
    return (n,) * len(spec.in_bits), n


def hardware(spec: ConcatSpec, fold: LayerFold) -> Hardware:
    """A chain of two-input concatenations (streams.h concat), each forwarding per pixel
    the words of its first input then those of its second: the last moves every word."""
    n = lanes(spec)
    bits = spec.in_bits[0]
    fifos = [*hw.input_fifos(spec.in_bits, spec.in_elems, spec.bypass, (n,) * len(spec.channels))]
    fifos += [Fifo(f"part{i}", n * bits, hw.STREAM_FIFO_DEPTH) for i in range(1, len(spec.channels) - 1)]
    joins = len(spec.channels) - 1
    return Hardware(cycles=spec.pixels * (sum(spec.channels) // n), depth=2, fifos=tuple(fifos),
                    logic=(Resources(lut=n * bits, ff=n * bits) + hw.KERNEL_CONTROL) * joins)  # fmt: skip


def cost(spec: ConcatSpec, fold: LayerFold) -> Cost:
    return hw.price(hardware(spec, fold))


def lag(spec: ConcatSpec) -> int:
    return 0


def multiplier(spec: ConcatSpec) -> MultiplierNeed:
    return MultiplierNeed(0, {})
