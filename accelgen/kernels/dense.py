"""Dense (fully connected) kernel: a matrix-vector unit over a stream of feature vectors.

Folding (accelgen.plan): ``simd`` input features and ``pe`` output neurons per cycle,
``simd | IN``, ``pe | OUT``; cycles per frame = (IN / simd) * (OUT / pe).
Weights: ``pe`` ROMs of ``simd * w_bits`` x ``(IN / simd) * (OUT / pe)``. When the
outputs take more than one pass (OUT / pe > 1) the input vector is buffered for re-reading.
"""

from __future__ import annotations

from dataclasses import dataclass

from accelgen import ir
from accelgen.kernels import hw, mvu
from accelgen.kernels.base import NONE, Cost, LayerSpec, MultiplierNeed, divisors, element_bits
from accelgen.plan import LayerFold

OPS = (ir.Dense,)


@dataclass(frozen=True, kw_only=True)
class DenseSpec(LayerSpec):
    in_features: int
    out_features: int
    arith: mvu.Arith


def matches(op: ir.Op) -> bool:
    return isinstance(op, ir.Dense)


def describe(op: ir.Dense, graph: ir.Graph) -> DenseSpec:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    n_out, n_in = (int(d) for d in op.weights.shape)
    arith = mvu.describe(x, op.w_qtype, n_in, out, op.requant)
    return DenseSpec(
        name=op.name, kind=op.kind, in_bits=(element_bits(x),), in_elems=(n_in,), out_bits=arith.out_bits,
        out_elems=n_out, in_features=n_in, out_features=n_out, arith=arith,
    )  # fmt: skip


def legal(spec: DenseSpec) -> dict[str, list[int]]:
    return {"pe": divisors(spec.out_features), "simd": divisors(spec.in_features)}


def cost(spec: DenseSpec, fold: LayerFold) -> Cost:
    pe, simd = fold.pe, fold.simd
    in_words, passes = spec.in_features // simd, spec.out_features // pe
    res, pipe = mvu.cost(spec.arith, pe, simd, in_words * passes, spec.out_features, shared_input=True)
    a_bits = spec.arith.a_bits
    res = res + (hw.ram(simd * a_bits, in_words) if passes > 1 else NONE)
    res = res + hw.input_fifos(spec.in_bits, spec.bypass, (simd,))
    return Cost(cycles=in_words * passes, depth=in_words + pipe, resources=res, multipliers=pe * simd)


def lag(spec: DenseSpec) -> int:
    return spec.in_features  # the first output needs the whole input vector


def multiplier(spec: DenseSpec) -> MultiplierNeed:
    return mvu.unit_multiplier(spec.arith, spec.in_features * spec.out_features, shared_input=True)
