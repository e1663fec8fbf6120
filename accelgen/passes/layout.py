"""Layout to channels-last: feature maps stream pixel by pixel, channels innermost.

The model's own inputs and outputs keep their ONNX layout; the host transposes at the
boundary. A Dense layer reading a flattened feature map gets its weight columns permuted
so that it consumes the (H, W, C) stream order.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from accelgen import ir
from accelgen.config import CompileConfig
from accelgen.errors import InputError

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


def _nhwc(t: ir.Tensor, name: str | None = None) -> ir.Tensor:
    n, c, h, w = t.shape
    q = t.qtype
    if q is not None and q.axis is not None:
        q = dataclasses.replace(q, axis=3)
    return ir.Tensor(name or t.name, (n, h, w, c), t.kind, q, "NHWC")


def _flatten_perm(shape_nchw: tuple) -> np.ndarray:
    """perm[j] = ONNX (C, H, W) flat index of the j-th element in (H, W, C) order."""
    _, c, h, w = shape_nchw
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def _stream_order(t: ir.Tensor) -> np.ndarray:
    """ONNX flat index (within a sample) of each element in the order the stream carries it."""
    if t.layout == "NCHW":
        return _flatten_perm(t.shape)
    return np.arange(t.elements_per_sample())


def _reshape(op: ir.Reshape, src: ir.Tensor, dst: ir.Tensor, flat_perm: dict[str, np.ndarray]) -> ir.Reshape:
    """A Reshape on the channels-last stream (``src``/``dst``: the ONNX-layout tensors).

    It stays a pure layout op when the stream order does not change (e.g. moving size-1
    axes). Flattening a multi-pixel feature map changes it: the order is recorded so that
    the Dense layer reading the flat tensor permutes its weight columns.
    """
    order_in = flat_perm.get(op.inputs[0], _stream_order(src))
    if np.array_equal(order_in, _stream_order(dst)):
        shape = (*dst.shape[2:], dst.shape[1]) if dst.layout == "NCHW" else dst.shape[1:]
        return op.replace(shape=tuple(int(d) for d in shape))
    if dst.layout == "NCHW":
        raise InputError(
            f"'{op.source}': reshaping {src.shape[1:]} into the feature map {dst.shape[1:]} reorders the "
            "channels-last stream; not supported"
        )
    if len(dst.shape) != 2:
        raise InputError(f"'{op.source}': reshaping a feature map into {dst.shape[1:]}; flatten it to a vector")
    flat_perm[op.outputs[0]] = order_in
    return op


def _reads_feature_maps(graph: ir.Graph, nchw: set[str]) -> bool:
    """True when an integer layer other than a flattening Reshape touches an NCHW tensor.

    Host ops and Reshape do not care about the layout; every other integer layer computes
    channels-last, even when its only feature maps are the model's own inputs/outputs.
    """
    for op in graph.integer_ops():
        if isinstance(op, ir.Reshape):
            continue
        if any(t in nchw for t in (*op.inputs, *op.outputs)):
            return True
    return False


def channels_last(graph: ir.Graph, config: CompileConfig) -> tuple[ir.Graph, bool]:
    nchw = {n for n, t in graph.tensors.items() if t.layout == "NCHW"}
    interface = set(graph.inputs) | set(graph.outputs)
    if graph.meta.get("layout") == "NHWC" or not (nchw - interface or _reads_feature_maps(graph, nchw)):
        return graph, False
    tensors = dict(graph.tensors)
    rename: dict[str, str] = {}
    head: list[ir.Op] = []
    for name in graph.inputs:
        if name in nchw:  # the host transposes the model's input
            inner = f"{name}__nhwc"
            tensors[inner] = _nhwc(graph.tensors[name], inner)
            rename[name] = inner
            head.append(ir.Transpose(name=f"transpose:{name}", inputs=(name,), outputs=(inner,),
                                     source=name, perm=TO_NHWC))  # fmt: skip
    tail: list[ir.Op] = []
    out_rename: dict[str, str] = {}
    for name in graph.outputs:
        if name in nchw:  # the host transposes the model's output back
            inner = f"{name}__nhwc"
            tensors[inner] = _nhwc(graph.tensors[name], inner)
            out_rename[name] = inner
            tail.append(ir.Transpose(name=f"transpose:{name}", inputs=(inner,), outputs=(name,),
                                     source=name, perm=TO_NCHW))  # fmt: skip
    for name in nchw:
        if name not in graph.inputs and name not in graph.outputs:
            tensors[name] = _nhwc(graph.tensors[name])

    flat_perm: dict[str, np.ndarray] = {}
    ops: list[ir.Op] = list(head)
    for op in graph.ops:
        op = op.replace(
            inputs=tuple(rename.get(t, t) for t in op.inputs),
            outputs=tuple(out_rename.get(t, t) for t in op.outputs),
        )
        orig_in = next((n for n, r in rename.items() if r == op.inputs[0]), op.inputs[0])
        orig_out = next((n for n, r in out_rename.items() if r == op.outputs[0]), op.outputs[0])
        if isinstance(op, ir.Quantize) and op.qtype.axis is not None and tensors[op.outputs[0]].layout == "NHWC":
            op = op.replace(qtype=dataclasses.replace(op.qtype, axis=3))
        elif isinstance(op, ir.Concat) and tensors[op.outputs[0]].layout == "NHWC":
            op = op.replace(axis=3)
        elif isinstance(op, ir.Reshape):
            op = _reshape(op, graph.tensors[orig_in], graph.tensors[orig_out], flat_perm)
        elif isinstance(op, ir.TTDense) and op.inputs[0] in flat_perm:
            raise InputError(
                f"'{op.source}' (TTDense): a tensor-train layer reads a flattened multi-pixel feature map in ONNX "
                "(C, H, W) order, which the channels-last stream does not carry; flatten to a 1-pixel map "
                "(global pool) first, or use an ordinary Dense layer there"
            )
        elif isinstance(op, ir.Dense) and op.inputs[0] in flat_perm:
            op = op.replace(weights=np.ascontiguousarray(op.weights[:, flat_perm[op.inputs[0]]]))
        for t in op.inputs:
            if t in flat_perm and not isinstance(op, (ir.Dense, ir.Reshape)):
                raise InputError(
                    f"'{op.source}' ({op.kind}) reads a flattened feature map in ONNX (C, H, W) order; "
                    "only a Dense layer may consume a flattened multi-pixel feature map"
                )
        ops.append(op)
    for name in flat_perm:
        if name in graph.outputs:
            raise InputError(f"graph output '{name}' is a flattened multi-pixel feature map; not supported")
    ops.extend(tail)
    return graph.copy(ops=ops, tensors=tensors, meta={**graph.meta, "layout": "NHWC"}), True
