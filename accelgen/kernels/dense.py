"""Dense (fully connected) kernel: a matrix-vector unit over a stream of feature vectors.

Folding (accelgen.plan): ``simd`` input features and ``pe`` output neurons per cycle,
``simd`` among :func:`accelgen.kernels.mvu.simd_values` (a divisor of IN, or unless the
weights are bipolar the fewest lanes for a number of words ceil(IN / simd), up to 16: the
input arrives in words of :func:`accelgen.kernels.mvu.in_lanes` and a gearbox re-cuts each
vector into ceil(IN / simd) words, the last padded, :func:`accelgen.kernels.mvu.recut_input`),
``pe`` among :func:`accelgen.kernels.mvu.pe_values` (a divisor of OUT, or the fewest lanes
for a number of passes: the last pass padded, its padded lanes dropped by a gearbox,
:func:`accelgen.kernels.mvu.padded_output`); passes = ceil(OUT / pe), cycles per frame =
ceil(IN / simd) * passes. Weights: ``pe`` ROMs of ``simd * w_bits`` x ``ceil(IN / simd) *
passes``. When the outputs take more than one pass the input vector is buffered for
re-reading. With more than one input word (cycles per output word), multiply-shift
requantizers are shared in time (:func:`accelgen.kernels.mvu.requantizers`; no cycle more
per frame, the output a few cycles later).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelgen import ir
from accelgen.kernels import hw, mvu, requant
from accelgen.kernels.base import Cost, Hardware, LayerSpec, Memory, MultiplierNeed, ceil_div, element_bits
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
    arith = mvu.describe(x, op.w_qtype, np.asarray(op.weights), out, op.requant)
    return DenseSpec(
        name=op.name, kind=op.kind, in_bits=(element_bits(x),), in_elems=(n_in,), out_bits=arith.out_bits,
        out_elems=n_out, in_features=n_in, out_features=n_out, arith=arith,
    )  # fmt: skip


def legal(spec: DenseSpec) -> dict[str, list[int]]:
    return {
        "pe": mvu.pe_values(spec.out_features),
        "simd": mvu.simd_values(spec.in_features, spec.arith.zero_weight),
        **requant.products(spec.arith.requant),
    }


def hardware(spec: DenseSpec, fold: LayerFold) -> Hardware:
    pe, simd, ar = fold.pe, fold.simd, spec.arith
    in_words, passes = ceil_div(spec.in_features, simd), ceil_div(spec.out_features, pe)
    memories = list(mvu.weights(ar, pe, simd, in_words * passes))
    if passes > 1:
        memories.append(Memory("input_vector", "ram", simd * spec.in_bits[0], in_words))
    rq = mvu.requantizers(ar, pe, in_words, fold.requant)
    logic, pipe = mvu.logic(ar, pe, simd, passes * pe, rq=rq)
    out = mvu.padded_output(ar, spec.out_features, pe, in_words)
    lanes = mvu.in_lanes(spec.in_features, simd)
    recut = mvu.recut_input(lanes, simd, spec.in_bits[0])
    fifos = hw.input_fifos(spec.in_bits, spec.in_elems, spec.bypass, (lanes,)) + recut.fifos + out.fifos
    return Hardware(cycles=in_words * passes, depth=in_words + pipe + recut.depth + out.depth,
                    macs=mvu.matrix_macs(ar, pe, simd), memories=tuple(memories), fifos=fifos,
                    logic=logic + recut.logic + out.logic, requantizers=(rq,),
                    gearboxes=recut.gearboxes + out.gearboxes)  # fmt: skip


def cost(spec: DenseSpec, fold: LayerFold) -> Cost:
    return hw.price(hardware(spec, fold))


def stream_lanes(spec: DenseSpec, fold: LayerFold) -> tuple[tuple[int, ...], int]:
    """The layer reads :func:`accelgen.kernels.mvu.in_lanes` lanes a word (``simd``, or the
    words its input gearbox re-cuts); it writes ``pe`` lanes, or the
    padded-lane gearbox's :func:`accelgen.kernels.mvu.out_lanes`."""
    return (mvu.in_lanes(spec.in_features, fold.simd),), mvu.out_lanes(spec.out_features, fold.pe)


def lag(spec: DenseSpec) -> int:
    return spec.in_features  # the first output needs the whole input vector


def multiplier(spec: DenseSpec) -> MultiplierNeed:
    return mvu.unit_multiplier(spec.arith, spec.in_features * spec.out_features, pairs=spec.out_features >= 2)
