"""Fuse chains of float element-wise ops ending in a quantizer into the integer layer."""

from __future__ import annotations

import numpy as np

from accelgen import ir
from accelgen.config import CompileConfig
from accelgen.errors import InputError


def _steps(chain: list[ir.Op]) -> tuple[ir.FloatStep, ...]:
    steps: list[ir.FloatStep] = []
    for op in chain:
        if isinstance(op, ir.Affine):
            if not np.all(op.mul == 1.0):
                steps.append(ir.FloatStep("mul", np.asarray(op.mul, dtype=np.float64)))
            if not np.all(op.add == 0.0):
                steps.append(ir.FloatStep("add", np.asarray(op.add, dtype=np.float64)))
        elif isinstance(op, ir.Relu):
            steps.append(ir.FloatStep("relu"))
        elif isinstance(op, ir.Clip):
            steps.append(ir.FloatStep("clip", np.array([op.lo, op.hi], dtype=np.float64)))
        elif isinstance(op, ir.Round):
            steps.append(ir.FloatStep("round", mode=op.mode))
        else:  # pragma: no cover - _chain_back only collects the ops above
            raise AssertionError(op.kind)
    return tuple(steps)


def _chain_back(graph: ir.Graph, tensor: str) -> tuple[list[ir.Op], str]:
    """Walk from ``tensor`` up through single-use float element-wise ops.

    Returns the chain (in execution order) and the tensor it starts from.
    """
    chain: list[ir.Op] = []
    while True:
        op = graph.producer(tensor)
        if op is None or not op.elementwise_float or isinstance(op, ir.BatchNorm):
            return chain[::-1], tensor
        if len(graph.consumers(tensor)) != 1 or tensor in graph.outputs:
            return chain[::-1], tensor
        chain.append(op)
        tensor = op.inputs[0]


def _from_accumulator(graph: ir.Graph, tensor: str) -> bool:
    """Whether ``tensor`` is an accumulator or a float element-wise chain computed from one."""
    while graph.tensors[tensor].kind == "float":
        op = graph.producer(tensor)
        if op is None or not op.elementwise_float:
            return False
        tensor = op.inputs[0]
    return graph.tensors[tensor].kind == "acc"


def sink_reshape(graph: ir.Graph, config: CompileConfig) -> tuple[ir.Graph, bool]:
    """Move a Reshape of an accumulator below the float ops and the quantizer after it.

    A global pool reduced with keepdims=0 reshapes its accumulator [N, C, 1, 1] to [N, C]
    before the quantizer; the requantizer belongs to the pool, so the reshape moves to the
    codes. Only per-channel element-wise ops and quantizers are crossed, and a reshape of
    an accumulator keeps the channel axis, so per-channel constants stay valid.
    """
    for op in graph.ops:
        if not isinstance(op, ir.Reshape) or not _from_accumulator(graph, op.inputs[0]):
            continue
        users = graph.consumers(op.outputs[0])
        if len(users) != 1 or op.outputs[0] in graph.outputs:
            continue
        (user,) = users
        if not (user.elementwise_float or isinstance(user, ir.Quantize)) or len(user.inputs) != 1:
            continue
        src = graph.tensors[op.inputs[0]]
        if src.channels != graph.tensors[op.outputs[0]].channels:
            continue
        out = graph.tensors[user.outputs[0]]
        moved = ir.Tensor(f"{out.name}_unflat", src.shape, out.kind, out.qtype, src.layout)
        if moved.name in graph.tensors:
            continue
        tensors = {k: v for k, v in graph.tensors.items() if k != op.outputs[0]}
        tensors[moved.name] = moved
        new_user = user.replace(inputs=op.inputs, outputs=(moved.name,))
        new_reshape = op.replace(inputs=(moved.name,), outputs=user.outputs)
        ops = []
        for o in graph.ops:
            if o is op:
                continue
            if o is user:
                ops += [new_user, new_reshape]
            else:
                ops.append(o)
        return graph.copy(ops=ops, tensors=tensors), True
    return graph, False


def fuse_requant(graph: ir.Graph, config: CompileConfig) -> tuple[ir.Graph, bool]:
    """Quantize(float ops(acc)) -> the accumulating layer gets a FloatRequant.

    A quantizer whose chain starts at codes becomes a Requantize layer. One starting at a
    float graph input stays on the host (it quantizes the model's input).
    """
    for q in graph.ops:
        if not isinstance(q, ir.Quantize):
            continue
        chain, src = _chain_back(graph, q.inputs[0])
        src_t = graph.tensors[src]
        if src_t.kind == "float":
            continue
        requant = ir.FloatRequant(
            _steps(chain), q.qtype, q.rounding, q.divisor, q.zero_point_after_rounding, float32=q.float32
        )
        dead = {id(op) for op in chain} | {id(q)}
        producer = graph.producer(src)
        tensors = dict(graph.tensors)
        for op in chain:
            tensors.pop(op.outputs[0], None)
        if (
            src_t.kind == "acc"
            and isinstance(producer, ir.REQUANT_OPS)
            and producer.requant is None
            and len(graph.consumers(src)) == 1
            and src not in graph.outputs
        ):
            fused = producer.replace(requant=requant, outputs=q.outputs)
            tensors.pop(src, None)
            ops = [fused if op is producer else op for op in graph.ops if id(op) not in dead]
            return graph.copy(ops=ops, tensors=tensors), True
        if src_t.kind == "acc":
            raise InputError(
                f"layer '{producer.source if producer else src}': its accumulator feeds more than one "
                "quantizer or output; give it a single quantizer"
            )
        req = ir.Requantize(name=q.name.replace("quantize", "requantize", 1), inputs=(src,),
                            outputs=q.outputs, source=q.source, requant=requant)  # fmt: skip
        ops = []
        for op in graph.ops:
            if op is q:
                ops.append(req)
            elif id(op) not in dead:
                ops.append(op)
        return graph.copy(ops=ops, tensors=tensors), True
    return graph, False


def check_host_tail(graph: ir.Graph, config: CompileConfig) -> tuple[ir.Graph, bool]:
    """Float ops left after fusion must form the host tail: nothing integer after them."""
    float_tensors = {n for n, t in graph.tensors.items() if t.kind == "float"}
    for op in graph.ops:
        if ir.is_host_op(op, graph.tensors):
            continue
        bad = [t for t in op.inputs if t in float_tensors]
        if bad:
            raise InputError(
                f"layer '{op.source}' ({op.kind}) reads the float tensor '{bad[0]}': every integer "
                "layer needs quantized inputs (a Quant / QuantizeLinear in front of it)"
            )
    return graph, False
