"""Fuse chains of float element-wise ops ending in a quantizer into the integer layer."""

from __future__ import annotations

import numpy as np

from accelgen import ir
from accelgen.config import CompileConfig
from accelgen.errors import InputError


def _steps(chain: list[ir.Op]) -> tuple[ir.FloatStep, ...]:
    steps: list[ir.FloatStep] = []
    for op in chain:
        if isinstance(op, ir.Affine) and op.batchnorm is not None:
            steps.append(ir.FloatStep("batchnorm", op.batchnorm))
        elif isinstance(op, ir.Affine):
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


class _Index:
    """Producer and reader count of every tensor, kept up to date while a pass rewrites."""

    def __init__(self, graph: ir.Graph) -> None:
        self.producer: dict[str, ir.Op] = {}
        self.readers: dict[str, int] = {}
        for op in graph.ops:
            self.add(op)

    def add(self, op: ir.Op) -> None:
        for t in op.outputs:
            self.producer[t] = op
        for t in set(op.inputs):
            self.readers[t] = self.readers.get(t, 0) + 1

    def remove(self, op: ir.Op) -> None:
        for t in op.outputs:
            if self.producer.get(t) is op:
                del self.producer[t]
        for t in set(op.inputs):
            self.readers[t] -= 1


def _chain_back(index: _Index, outputs: set[str], tensor: str) -> tuple[list[ir.Op], str]:
    """Walk from ``tensor`` up through single-use float element-wise ops.

    Returns the chain (in execution order) and the tensor it starts from.
    """
    chain: list[ir.Op] = []
    while True:
        op = index.producer.get(tensor)
        if op is None or not op.elementwise_float or isinstance(op, ir.BatchNorm):
            return chain[::-1], tensor
        if index.readers.get(tensor, 0) != 1 or tensor in outputs:
            return chain[::-1], tensor
        chain.append(op)
        tensor = op.inputs[0]


def fuse_requant(graph: ir.Graph, config: CompileConfig) -> tuple[ir.Graph, bool]:
    """Quantize(float ops(acc)) -> the accumulating layer gets a FloatRequant.

    A quantizer whose chain starts at codes becomes a Requantize layer. One starting at a
    float graph input stays on the host (it quantizes the model's input). Every quantizer
    is rewritten in one sweep, in graph order.
    """
    index = _Index(graph)
    outputs = set(graph.outputs)
    tensors = dict(graph.tensors)
    slot = {id(op): i for i, op in enumerate(graph.ops)}
    ops: list[ir.Op | None] = list(graph.ops)
    changed = False
    for q in graph.ops:
        if not isinstance(q, ir.Quantize):
            continue
        chain, src = _chain_back(index, outputs, q.inputs[0])
        src_t = tensors[src]
        if src_t.kind == "float":
            continue
        requant = ir.FloatRequant(
            _steps(chain), q.qtype, q.rounding, q.divisor, q.zero_point_after_rounding, float32=q.float32
        )
        producer = index.producer.get(src)
        for op in (*chain, q):
            index.remove(op)
            ops[slot[id(op)]] = None
        for op in chain:
            tensors.pop(op.outputs[0], None)
        changed = True
        if (
            src_t.kind == "acc"
            and isinstance(producer, ir.REQUANT_OPS)
            and producer.requant is None
            and index.readers.get(src, 0) == 0  # the chain (or the quantizer) was its one reader
            and src not in outputs
        ):
            fused = producer.replace(requant=requant, outputs=q.outputs)
            tensors.pop(src, None)
            index.remove(producer)
            index.add(fused)
            slot[id(fused)] = slot[id(producer)]
            ops[slot[id(fused)]] = fused
            continue
        if src_t.kind == "acc":
            raise InputError(
                f"layer '{producer.source if producer else src}': its accumulator feeds more than one "
                "quantizer or output; give it a single quantizer"
            )
        req = ir.Requantize(name=q.name.replace("quantize", "requantize", 1), inputs=(src,),
                            outputs=q.outputs, source=q.source, requant=requant)  # fmt: skip
        index.add(req)
        slot[id(req)] = slot[id(q)]
        ops[slot[id(req)]] = req
    if not changed:
        return graph, False
    return graph.copy(ops=[op for op in ops if op is not None], tensors=tensors), True


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
