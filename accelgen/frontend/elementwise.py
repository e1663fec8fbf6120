"""Float element-wise ops that the passes fold into requantizers or leave to the host tail."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import onnx

from accelgen import ir
from accelgen.errors import InputError
from accelgen.frontend.layers import residual_add
from accelgen.frontend.quantizers import clip_bounds, clip_codes
from accelgen.frontend.registry import handler
from accelgen.frontend.values import (
    Value,
)

if TYPE_CHECKING:
    from accelgen.frontend.base import ImportContext


def _binary_const(ctx: ImportContext, node: onnx.NodeProto) -> tuple[Value, np.ndarray, bool] | None:
    a, b = node.input[0], node.input[1]
    a_const = a in ctx.consts or a in ctx.qconsts
    b_const = b in ctx.consts or b in ctx.qconsts
    if a_const == b_const:
        return None
    if a_const:
        return ctx.dynamic(b), ctx.const_real(a), True
    return ctx.dynamic(a), ctx.const_real(b), False


@handler("Add")
def import_add(ctx: ImportContext, node: onnx.NodeProto) -> None:
    pair = _binary_const(ctx, node)
    if pair is not None:
        v, c, _ = pair
        c = ctx.per_channel(c, v.tensor, "added constant")
        ctx.emit_float(ir.Affine, v.tensor, node.output[0], mul=np.ones(1), add=c)
        return
    residual_add(ctx, node, [ctx.dynamic(n) for n in node.input[:2]])


@handler("Sub")
def import_sub(ctx: ImportContext, node: onnx.NodeProto) -> None:
    pair = _binary_const(ctx, node)
    if pair is None:
        raise InputError(f"node '{ctx.label()}': Sub of two data tensors is not supported")
    v, c, const_first = pair
    c = ctx.per_channel(c, v.tensor, "subtracted constant")
    mul = np.array([-1.0]) if const_first else np.ones(1)
    add = c if const_first else -c
    ctx.emit_float(ir.Affine, v.tensor, node.output[0], mul=mul, add=add)


@handler("Mul")
def import_mul(ctx: ImportContext, node: onnx.NodeProto) -> None:
    pair = _binary_const(ctx, node)
    if pair is None:
        raise InputError(f"node '{ctx.label()}': Mul of two data tensors is not supported")
    v, c, _ = pair
    c = ctx.per_channel(c, v.tensor, "multiplier")
    ctx.emit_float(ir.Affine, v.tensor, node.output[0], mul=c, add=np.zeros(1))


@handler("Div")
def import_div(ctx: ImportContext, node: onnx.NodeProto) -> None:
    pair = _binary_const(ctx, node)
    if pair is None or pair[2]:
        raise InputError(f"node '{ctx.label()}': only division by a constant is supported")
    v, c, _ = pair
    c = ctx.per_channel(c, v.tensor, "divisor")
    if np.any(c == 0):
        raise InputError(f"node '{ctx.label()}': division by zero")
    ctx.emit_float(ir.Affine, v.tensor, node.output[0], mul=1.0 / c, add=np.zeros(1))


@handler("BatchNormalization")
def import_batch_normalization(ctx: ImportContext, node: onnx.NodeProto) -> None:
    v = ctx.dynamic(node.input[0])
    channels = ctx.tensors[v.tensor].shape[1]
    vals = [np.asarray(ctx.const_real(n), dtype=np.float64).reshape(-1) for n in node.input[1:5]]
    if any(a.size not in (1, channels) for a in vals):
        raise InputError(f"node '{ctx.label()}': BatchNorm parameters do not match {channels} channels")
    ctx.emit_float(ir.BatchNorm, v.tensor, node.output[0], gamma=vals[0], beta=vals[1],
                     mean=vals[2], var=vals[3], epsilon=float(ctx.attr(node, "epsilon", 1e-5)))  # fmt: skip


@handler("Relu")
def import_relu(ctx: ImportContext, node: onnx.NodeProto) -> None:
    ctx.emit_float(ir.Relu, ctx.real_input(node.input[0], "input"), node.output[0])


@handler("Clip")
def import_clip(ctx: ImportContext, node: onnx.NodeProto) -> None:
    v = ctx.dynamic(node.input[0])
    if v.view == "int" and ctx.tensors[v.tensor].kind == "codes":
        clip_codes(ctx, node, v)  # QCDQ: a Clip on codes narrows the quantizer
        return
    lo, hi = clip_bounds(ctx, node)
    ctx.emit_float(ir.Clip, ctx.real_input(node.input[0], "input"), node.output[0], lo=lo, hi=hi)


@handler("Softmax")
def import_softmax(ctx: ImportContext, node: onnx.NodeProto) -> None:
    src = ctx.real_input(node.input[0], "input")
    axis = int(ctx.attr(node, "axis", -1 if ctx.opset >= 13 else 1))
    if axis % len(ctx.tensors[src].shape) != len(ctx.tensors[src].shape) - 1:
        raise InputError(f"node '{ctx.label()}': Softmax over axis {axis}; only the last axis is supported")
    ctx.emit_float(ir.Softmax, src, node.output[0], axis=-1)


@handler("Sigmoid")
def import_sigmoid(ctx: ImportContext, node: onnx.NodeProto) -> None:
    ctx.emit_float(ir.Sigmoid, ctx.real_input(node.input[0], "input"), node.output[0])
