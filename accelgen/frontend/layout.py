"""Pass-through and pure-layout ops: Identity, Dropout, Cast, Flatten, Reshape, (Un)Squeeze, Transpose."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import onnx

from accelgen import ir
from accelgen.errors import InputError
from accelgen.frontend.registry import handler

if TYPE_CHECKING:
    from accelgen.frontend.base import ImportContext


@handler("Constant")
def import_constant(ctx: ImportContext, node: onnx.NodeProto) -> None:  # evaluated by ImportContext.import_node
    raise AssertionError("unreachable")


@handler("Identity", "Dropout")
def import_identity(ctx: ImportContext, node: onnx.NodeProto) -> None:
    ctx.values[node.output[0]] = ctx.values[node.input[0]]


@handler("Cast")
def import_cast(ctx: ImportContext, node: onnx.NodeProto) -> None:
    v = ctx.dynamic(node.input[0])
    to = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(ctx.attr(node, "to")))
    t = ctx.tensors[v.tensor]
    if to.kind == "f":
        if v.view == "int" and t.kind == "codes" and v.tensor in ctx.uninterpreted:
            raise InputError(f"node '{ctx.label()}': Cast of integer input without a scale")
        if v.view == "int" and t.kind == "codes" and any(z != 0 for z in t.qtype.zero_point):
            raise InputError(f"node '{ctx.label()}': Cast of codes with a zero point is not supported")
        if v.view == "int" and t.kind == "codes" and any(s != 1.0 for s in t.qtype.scale):
            raise InputError(f"node '{ctx.label()}': Cast of scaled codes to float is not supported")
        ctx.set(node.output[0], v.tensor, "real")
    else:
        raise InputError(f"node '{ctx.label()}': Cast to {to.name} inside the network is not supported")


def _reshape(ctx: ImportContext, node: onnx.NodeProto, new_sample_shape: tuple[int, ...]) -> None:
    v = ctx.dynamic(node.input[0])
    t = ctx.tensors[v.tensor]
    if int(np.prod(new_sample_shape)) != t.elements_per_sample():
        raise InputError(
            f"node '{ctx.label()}': reshape of {t.shape[1:]} to {new_sample_shape} "
            "changes the number of elements per sample"
        )
    if tuple(new_sample_shape) == tuple(t.shape[1:]):
        ctx.values[node.output[0]] = v
        return
    qtype = t.qtype
    if qtype is not None and qtype.per_channel and t.kind == "codes":
        raise InputError(f"node '{ctx.label()}': reshaping a per-channel quantized tensor is not supported")
    if qtype is not None and qtype.per_channel:
        qtype = qtype.with_axis(1)
        if len(new_sample_shape) < 1:
            raise InputError(f"node '{ctx.label()}': reshape to a scalar")
    shape = (None, *new_sample_shape)
    out = ctx.new_tensor(node.output[0], shape, t.kind, qtype, "NCHW" if len(shape) == 4 else "")
    ctx.emit(ir.Reshape, [v.tensor], out, shape=tuple(int(d) for d in new_sample_shape))
    ctx.set(node.output[0], out, v.view)


@handler("Flatten")
def import_flatten(ctx: ImportContext, node: onnx.NodeProto) -> None:
    t = ctx.tensors[ctx.dynamic(node.input[0]).tensor]
    axis = int(ctx.attr(node, "axis", 1))
    if axis % len(t.shape) != 1:
        raise InputError(f"node '{ctx.label()}': Flatten with axis {axis} would mix the batch; use axis=1")
    _reshape(ctx, node, (t.elements_per_sample(),))


@handler("Reshape")
def import_reshape(ctx: ImportContext, node: onnx.NodeProto) -> None:
    t = ctx.tensors[ctx.dynamic(node.input[0]).tensor]
    target = [int(d) for d in np.asarray(ctx.const_real(node.input[1])).reshape(-1)]
    sample = list(t.shape[1:])
    if not target:
        raise InputError(f"node '{ctx.label()}': reshape to a scalar")
    # the first target dim is the batch: -1, 0 (copy) or the exporter's fixed batch size
    rest = target[1:]
    for i, d in enumerate(rest):
        if d == 0:
            rest[i] = sample[i]
    if rest.count(-1) > 1 or (target[0] == -1 and -1 in rest):
        raise InputError(f"node '{ctx.label()}': reshape target {target} is ambiguous per sample")
    if -1 in rest:
        known = int(np.prod([d for d in rest if d != -1]))
        rest[rest.index(-1)] = t.elements_per_sample() // max(known, 1)
    _reshape(ctx, node, tuple(rest))


@handler("Squeeze")
def import_squeeze(ctx: ImportContext, node: onnx.NodeProto) -> None:
    t = ctx.tensors[ctx.dynamic(node.input[0]).tensor]
    axes = ctx.attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = [int(a) for a in np.asarray(ctx.const_real(node.input[1])).reshape(-1)]
    nd = len(t.shape)
    axes = [a % nd for a in axes] if axes else [i for i, d in enumerate(t.shape) if d == 1]
    if 0 in axes:
        raise InputError(f"node '{ctx.label()}': Squeeze of the batch dimension")
    _reshape(ctx, node, tuple(d for i, d in enumerate(t.shape) if i not in axes and i > 0))


@handler("Unsqueeze")
def import_unsqueeze(ctx: ImportContext, node: onnx.NodeProto) -> None:
    t = ctx.tensors[ctx.dynamic(node.input[0]).tensor]
    axes = ctx.attr(node, "axes")
    if axes is None:
        axes = [int(a) for a in np.asarray(ctx.const_real(node.input[1])).reshape(-1)]
    nd = len(t.shape) + len(axes)
    axes = sorted(a % nd for a in axes)
    if 0 in axes:
        raise InputError(f"node '{ctx.label()}': Unsqueeze in front of the batch dimension")
    shape = list(t.shape)
    for a in axes:
        shape.insert(a, 1)
    _reshape(ctx, node, tuple(shape[1:]))


@handler("Transpose")
def import_transpose(ctx: ImportContext, node: onnx.NodeProto) -> None:
    t = ctx.tensors[ctx.dynamic(node.input[0]).tensor]
    perm = list(ctx.attr(node, "perm", list(reversed(range(len(t.shape))))))
    if perm[0] != 0:
        raise InputError(f"node '{ctx.label()}': Transpose that moves the batch dimension is not supported")
    moved = [p for p in perm if t.shape[p] != 1]
    if moved != sorted(moved):
        raise InputError(
            f"node '{ctx.label()}': Transpose with perm {perm} reorders data; accelgen "
            "supports only layout-preserving transposes (that move size-1 dimensions)"
        )
    _reshape(ctx, node, tuple(t.shape[p] for p in perm[1:]))
