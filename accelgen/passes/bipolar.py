"""Bipolar feature maps that a convolution pads with zeros become narrow 2-bit codes.

A bipolar code holds -1 or +1 in one bit; a zero-padded window needs the value 0 as well
(ONNX pads the real value 0, and -1/+1 activations are ``scale * code``). A narrow signed
2-bit type holds -1, 0 and +1 with the same scale, and every integer value stays what it
was: the producer's requantizer emits the same -1/+1 (``base + step * count``), pools and
reshapes pass codes through unchanged. So the pass only retypes the padded convolution's
input tensor and, through code-preserving ops (pools, reshapes), the tensors it comes
from, up to the op that produces the codes. The cost is one more bit per activation and
sign-select multipliers instead of XNORs for the convolution (its cost model and code
generation read the new type).
"""

from __future__ import annotations

from dataclasses import replace

from accelgen import ir
from accelgen.config import CompileConfig

#: ops whose output codes are some of their input codes (same type on both sides)
CODE_PRESERVING = (ir.MaxPool, ir.Reshape)


def _two_bit(q: ir.QType) -> ir.QType:
    return replace(q, bits=2, signed=True, narrow=True, bipolar=False, zero_point=(0,) * len(q.zero_point))


def widen_padded_bipolar(graph: ir.Graph, config: CompileConfig) -> tuple[ir.Graph, bool]:
    """Retype a zero-padded convolution's bipolar input (and its code-preserving sources) as
    narrow int2; one convolution per round."""
    producer = {t: op for op in graph.ops for t in op.outputs}
    for op in graph.ops:
        if not isinstance(op, ir.Conv) or not any(op.pads):
            continue
        src = graph.tensors[op.inputs[0]]
        if src.qtype is None or not src.qtype.bipolar:
            continue
        chain = _source_chain(graph, producer, src.name)
        if chain is None:  # not made by a requantizer (e.g. the host's input quantizer): left as is
            continue
        tensors = dict(graph.tensors)
        for name in chain:
            tensors[name] = replace(tensors[name], qtype=_two_bit(tensors[name].qtype))
        return graph.copy(tensors=tensors), True
    return graph, False


def _source_chain(graph: ir.Graph, producer: dict, name: str) -> list[str] | None:
    """The bipolar tensors from ``name`` back through code-preserving ops to the one a
    requantizer writes, or None when the codes come from anything else."""
    chain = [name]
    while True:
        up = producer.get(name)
        if isinstance(up, ir.REQUANT_OPS) and up.requant is not None:
            return chain
        if not isinstance(up, CODE_PRESERVING):
            return None
        name = up.inputs[0]
        q = graph.tensors[name].qtype
        if q is None or not q.bipolar:
            return None
        chain.append(name)
