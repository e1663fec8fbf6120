"""Integer layers: Conv, Gemm, MatMul, ConvInteger, MatMulInteger, pools, residual Add, Concat."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import onnx

from accelgen import ir
from accelgen.errors import InputError
from accelgen.frontend.constants import QConst, int_dtype_bits
from accelgen.frontend.registry import handler
from accelgen.frontend.values import (
    PendingConcat,
    Value,
)

if TYPE_CHECKING:
    from accelgen.frontend.base import ImportContext


def _conv_geometry(ctx: ImportContext, node: onnx.NodeProto, in_shape, w_shape):
    if len(in_shape) != 4:
        raise InputError(f"node '{ctx.label()}': only 2-D convolution (4-D input) is supported")
    kh, kw = int(w_shape[2]), int(w_shape[3])
    strides = tuple(ctx.attr(node, "strides", [1, 1]))
    dil = tuple(ctx.attr(node, "dilations", [1, 1]))
    pads = list(ctx.attr(node, "pads", [0, 0, 0, 0]))
    auto_pad = ctx.attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    h, w = int(in_shape[2]), int(in_shape[3])
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in ((h, kh, strides[0], dil[0]), (w, kw, strides[1], dil[1])):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            pads.append(
                (total // 2, total - total // 2) if auto_pad == "SAME_UPPER" else (total - total // 2, total // 2)
            )
        pads = [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    if oh < 1 or ow < 1:
        raise InputError(f"node '{ctx.label()}': kernel larger than the padded input")
    return (kh, kw), tuple(map(int, strides)), tuple(map(int, pads)), tuple(map(int, dil)), (oh, ow)


def emit_conv(ctx: ImportContext, node, x_tensor, weights, w_qtype, out_name, view, group_attr=None) -> str:
    t = ctx.tensors[x_tensor]
    _, strides, pads, dil, (oh, ow) = _conv_geometry(ctx, node, t.shape, weights.shape)
    groups = int(group_attr if group_attr is not None else ctx.attr(node, "group", 1))
    if t.shape[1] != weights.shape[1] * groups:
        raise InputError(f"node '{ctx.label()}': {t.shape[1]} input channels do not match weights {weights.shape}")
    oc = weights.shape[0]
    acc_scale = np.asarray(t.qtype.scale, dtype=np.float64) * np.asarray(w_qtype.scale)
    if len(t.qtype.scale) > 1:
        raise InputError(f"node '{ctx.label()}': per-channel quantized Conv input is not supported")
    out = ctx.new_tensor(out_name, (None, oc, oh, ow), "acc", ctx.acc_qtype(acc_scale, 1), "NCHW")
    ctx.emit(ir.Conv, [x_tensor], out, weights=weights, w_qtype=w_qtype, groups=groups,
               strides=strides, pads=pads, dilations=dil)  # fmt: skip
    ctx.set(out_name, out, view)
    return out


def emit_dense(ctx: ImportContext, x_tensor, weights, w_qtype, out_name, view) -> str:
    t = ctx.tensors[x_tensor]
    if len(t.shape) != 2:
        raise InputError(
            f"node '{ctx.label()}': matrix product on a {len(t.shape)}-D tensor {t.shape}; "
            "accelgen supports [batch, features] inputs (add a Flatten)"
        )
    if t.shape[1] != weights.shape[1]:
        raise InputError(f"node '{ctx.label()}': {t.shape[1]} input features vs weights {weights.shape}")
    if len(t.qtype.scale) > 1:
        raise InputError(f"node '{ctx.label()}': per-channel quantized MatMul input is not supported")
    acc_scale = np.asarray(t.qtype.scale, dtype=np.float64) * np.asarray(w_qtype.scale)
    out = ctx.new_tensor(out_name, (None, weights.shape[0]), "acc", ctx.acc_qtype(acc_scale, 1))
    ctx.emit(ir.Dense, [x_tensor], out, weights=weights, w_qtype=w_qtype)
    ctx.set(out_name, out, view)
    return out


@handler("Conv")
def import_conv(ctx: ImportContext, node: onnx.NodeProto) -> None:
    x = ctx.codes_input(node.input[0], "input")
    w, wq = ctx.weights(node.input[1], 0)
    out = emit_conv(ctx, node, x, w, wq, node.output[0] + "_acc", "real")
    if len(node.input) > 2 and node.input[2]:
        bias = np.asarray(ctx.const_real(node.input[2]), dtype=np.float64).reshape(-1)
        ctx.emit_float(ir.Affine, out, node.output[0], mul=np.ones(1), add=bias)
    else:
        ctx.set(node.output[0], out, "real")


@handler("ConvInteger")
def import_conv_integer(ctx: ImportContext, node: onnx.NodeProto) -> None:
    v = ctx.dynamic(node.input[0])
    zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
    x = ctx.interpret(v, (np.ones(1), _int_const(ctx, zp_name, 1)), "input")
    w, wq = _int_weights(ctx, node.input[1], node.input[3] if len(node.input) > 3 else None, 0)
    emit_conv(ctx, node, x, w, wq, node.output[0], "int")


def _int_const(ctx: ImportContext, name: str | None, size: int) -> np.ndarray:
    if not name:
        return np.zeros(1, np.int64)
    return np.asarray(ctx.consts[name]).astype(np.int64).reshape(-1)


def _int_weights(ctx: ImportContext, name: str, zp_name: str | None, out_axis: int) -> tuple[np.ndarray, ir.QType]:
    if name not in ctx.consts:
        raise InputError(f"node '{ctx.label()}': weights '{name}' must be a constant")
    w = np.asarray(ctx.consts[name])
    info = int_dtype_bits(w.dtype)
    if info is None:
        raise InputError(f"node '{ctx.label()}': weights '{name}' are not integers")
    zp = _int_const(ctx, zp_name, w.shape[out_axis])
    shape = [1] * w.ndim
    if zp.size > 1:
        shape[out_axis] = zp.size
    q = QConst.make(w, 1.0, zp.reshape(shape), info[0], info[1], source=name)
    ctx.qconsts[name + "#int"] = q
    return ctx.weights(name + "#int", out_axis)


def _gemm_weights(ctx: ImportContext, name: str, trans_b: bool) -> tuple[np.ndarray, ir.QType]:
    """Weights of Gemm/MatMul as (out, in)."""
    src = ctx.qconsts.get(name)
    if src is not None and src.codes.ndim != 2:
        raise InputError(f"node '{ctx.label()}': weights '{name}' are {src.codes.ndim}-D; expected a matrix")
    if src is not None and not trans_b:
        ctx.qconsts[name + "#T"] = src.map_layout(lambda a: np.ascontiguousarray(a.T))
        name = name + "#T"
    elif src is None and name in ctx.consts and not trans_b:
        arr = np.asarray(ctx.consts[name])
        if arr.ndim != 2:
            raise InputError(f"node '{ctx.label()}': weights '{name}' are {arr.ndim}-D; expected a matrix")
        ctx.consts[name + "#T"] = np.ascontiguousarray(arr.T)
        name = name + "#T"
    return ctx.weights(name, 0)


@handler("MatMul")
def import_matmul(ctx: ImportContext, node: onnx.NodeProto) -> None:
    if node.input[0] in ctx.consts or node.input[0] in ctx.qconsts:
        raise InputError(f"node '{ctx.label()}': MatMul with constant left operand is not supported")
    x = ctx.codes_input(node.input[0], "input")
    w, wq = _gemm_weights(ctx, node.input[1], trans_b=False)
    emit_dense(ctx, x, w, wq, node.output[0], "real")


@handler("Gemm")
def import_gemm(ctx: ImportContext, node: onnx.NodeProto) -> None:
    if ctx.attr(node, "transA", 0):
        raise InputError(f"node '{ctx.label()}': Gemm with transA=1 is not supported")
    x = ctx.codes_input(node.input[0], "input")
    w, wq = _gemm_weights(ctx, node.input[1], trans_b=bool(ctx.attr(node, "transB", 0)))
    alpha, beta = float(ctx.attr(node, "alpha", 1.0)), float(ctx.attr(node, "beta", 1.0))
    has_bias = len(node.input) > 2 and node.input[2]
    if alpha == 1.0 and not has_bias:
        emit_dense(ctx, x, w, wq, node.output[0], "real")
        return
    acc = emit_dense(ctx, x, w, wq, node.output[0] + "_acc", "real")
    bias = np.zeros(1)
    if has_bias:
        bias = beta * ctx.per_channel(ctx.const_real(node.input[2]), acc, "Gemm bias")
    ctx.emit_float(ir.Affine, acc, node.output[0], mul=np.array([alpha]), add=bias)


@handler("MatMulInteger")
def import_matmul_integer(ctx: ImportContext, node: onnx.NodeProto) -> None:
    v = ctx.dynamic(node.input[0])
    zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
    x = ctx.interpret(v, (np.ones(1), _int_const(ctx, zp_name, 1)), "input")
    if node.input[1] not in ctx.consts:
        raise InputError(f"node '{ctx.label()}': MatMulInteger weights must be a constant")
    arr = np.asarray(ctx.consts[node.input[1]])
    if arr.ndim != 2:
        raise InputError(f"node '{ctx.label()}': MatMulInteger weights are {arr.ndim}-D; expected a matrix")
    ctx.consts[node.input[1] + "#T"] = np.ascontiguousarray(arr.T)
    zp_w = node.input[3] if len(node.input) > 3 and node.input[3] else None
    w, wq = _int_weights(ctx, node.input[1] + "#T", zp_w, 0)
    emit_dense(ctx, x, w, wq, node.output[0], "int")


def pool_attrs(ctx: ImportContext, node: onnx.NodeProto, avg: bool):
    kernel = tuple(int(k) for k in ctx.attr(node, "kernel_shape"))
    if len(kernel) != 2:
        raise InputError(f"node '{ctx.label()}': only 2-D pooling is supported")
    strides = tuple(int(s) for s in ctx.attr(node, "strides", list(kernel)))
    pads = tuple(int(p) for p in ctx.attr(node, "pads", [0, 0, 0, 0]))
    if ctx.attr(node, "ceil_mode", 0):
        raise InputError(f"node '{ctx.label()}': ceil_mode pooling is not supported")
    if tuple(ctx.attr(node, "dilations", [1, 1])) != (1, 1):
        raise InputError(f"node '{ctx.label()}': dilated pooling is not supported")
    auto_pad = ctx.attr(node, "auto_pad", b"NOTSET")
    if (auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad) not in ("NOTSET", "VALID"):
        raise InputError(f"node '{ctx.label()}': auto_pad pooling is not supported; give explicit pads")
    if avg and any(pads) and not ctx.attr(node, "count_include_pad", 0):
        raise InputError(
            f"node '{ctx.label()}': padded AveragePool with count_include_pad=0 divides border "
            "windows by different counts; use count_include_pad=1 or no padding"
        )
    return kernel, strides, pads


def _pool_out(ctx: ImportContext, t: ir.Tensor, kernel, strides, pads) -> tuple[int, int]:
    oh = (t.shape[2] + pads[0] + pads[2] - kernel[0]) // strides[0] + 1
    ow = (t.shape[3] + pads[1] + pads[3] - kernel[1]) // strides[1] + 1
    if oh < 1 or ow < 1:
        raise InputError(f"node '{ctx.label()}': pooling window larger than the input")
    return oh, ow


@handler("MaxPool")
def import_max_pool(ctx: ImportContext, node: onnx.NodeProto) -> None:
    if len(node.output) > 1 and node.output[1]:
        raise InputError(f"node '{ctx.label()}': MaxPool with an indices output is not supported")
    x = ctx.codes_input(node.input[0], "input")
    t = ctx.tensors[x]
    if len(t.shape) != 4:
        raise InputError(f"node '{ctx.label()}': only 2-D pooling is supported")
    kernel, strides, pads = pool_attrs(ctx, node, avg=False)
    oh, ow = _pool_out(ctx, t, kernel, strides, pads)
    out = ctx.new_tensor(node.output[0], (None, t.shape[1], oh, ow), "codes", t.qtype, "NCHW")
    ctx.emit(ir.MaxPool, [x], out, kernel=kernel, strides=strides, pads=pads)
    ctx.set(node.output[0], out, "real")


def emit_avgpool(ctx: ImportContext, x: str, kernel, strides, pads, out_name: str) -> str:
    t = ctx.tensors[x]
    if len(t.shape) != 4:
        raise InputError(f"node '{ctx.label()}': only 2-D pooling is supported")
    if t.qtype.per_channel:
        raise InputError(f"node '{ctx.label()}': average pool of a per-channel quantized tensor")
    oh, ow = _pool_out(ctx, t, kernel, strides, pads)
    acc_scale = np.array(t.qtype.scale) / (kernel[0] * kernel[1])
    out = ctx.new_tensor(out_name, (None, t.shape[1], oh, ow), "acc", ctx.acc_qtype(acc_scale, 1), "NCHW")
    ctx.emit(ir.AvgPool, [x], out, kernel=tuple(map(int, kernel)), strides=tuple(map(int, strides)),
               pads=tuple(map(int, pads)))  # fmt: skip
    ctx.set(out_name, out, "real")
    return out


@handler("AveragePool")
def import_average_pool(ctx: ImportContext, node: onnx.NodeProto) -> None:
    x = ctx.codes_input(node.input[0], "input")
    kernel, strides, pads = pool_attrs(ctx, node, avg=True)
    emit_avgpool(ctx, x, kernel, strides, pads, node.output[0])


@handler("GlobalAveragePool")
def import_global_average_pool(ctx: ImportContext, node: onnx.NodeProto) -> None:
    x = ctx.codes_input(node.input[0], "input")
    t = ctx.tensors[x]
    if len(t.shape) != 4:
        raise InputError(f"node '{ctx.label()}': GlobalAveragePool needs a 4-D input")
    emit_avgpool(ctx, x, (t.shape[2], t.shape[3]), (1, 1), (0, 0, 0, 0), node.output[0])


@handler("GlobalMaxPool")
def import_global_max_pool(ctx: ImportContext, node: onnx.NodeProto) -> None:
    x = ctx.codes_input(node.input[0], "input")
    t = ctx.tensors[x]
    out = ctx.new_tensor(node.output[0], (None, t.shape[1], 1, 1), "codes", t.qtype, "NCHW")
    ctx.emit(ir.MaxPool, [x], out, kernel=(t.shape[2], t.shape[3]), strides=(1, 1), pads=(0, 0, 0, 0))
    ctx.set(node.output[0], out, "real")


def _reduce_spatial(ctx: ImportContext, node: onnx.NodeProto) -> tuple[str, bool]:
    """The codes input of a ReduceMean/Max/Sum over H and W (pooling) and its keepdims."""
    x = ctx.codes_input(node.input[0], "input")
    t = ctx.tensors[x]
    axes = ctx.attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = [int(a) for a in np.asarray(ctx.const_real(node.input[1])).reshape(-1)]
    if not axes and ctx.attr(node, "noop_with_empty_axes", 0):
        raise InputError(f"node '{ctx.label()}': {node.op_type} with no axes is an identity; remove it")
    nd = len(t.shape)
    axes = sorted({int(a) % nd for a in axes}) if axes else list(range(nd))
    if nd != 4 or axes != [2, 3]:
        raise InputError(
            f"node '{ctx.label()}': {node.op_type} over axes {axes} of a {nd}-D tensor; accelgen "
            "takes a reduction over the spatial axes [2, 3] of an NCHW feature map (global pooling)"
        )
    return x, bool(ctx.attr(node, "keepdims", 1))


def _flatten_pooled(ctx: ImportContext, node: onnx.NodeProto, pooled: str, keepdims: bool) -> None:
    """keepdims=0: [N, C, 1, 1] -> [N, C] (a Reshape that the passes move past the quantizer)."""
    if keepdims:
        return
    t = ctx.tensors[pooled]
    out = ctx.new_tensor(node.output[0], (None, t.shape[1]), t.kind, t.qtype, "")
    ctx.emit(ir.Reshape, [pooled], out, shape=(int(t.shape[1]),))
    ctx.set(node.output[0], out, "real")


@handler("ReduceMean")
def import_reduce_mean(ctx: ImportContext, node: onnx.NodeProto) -> None:
    x, keepdims = _reduce_spatial(ctx, node)
    t = ctx.tensors[x]
    name = node.output[0] if keepdims else node.output[0] + "_pooled"
    pooled = emit_avgpool(ctx, x, (t.shape[2], t.shape[3]), (1, 1), (0, 0, 0, 0), name)
    _flatten_pooled(ctx, node, pooled, keepdims)


@handler("ReduceSum")
def import_reduce_sum(ctx: ImportContext, node: onnx.NodeProto) -> None:
    x, keepdims = _reduce_spatial(ctx, node)
    t = ctx.tensors[x]
    k = float(t.shape[2] * t.shape[3])
    mean = emit_avgpool(ctx, x, (t.shape[2], t.shape[3]), (1, 1), (0, 0, 0, 0), node.output[0] + "_mean")
    name = node.output[0] if keepdims else node.output[0] + "_pooled"
    ctx.emit_float(ir.Affine, mean, name, mul=np.array([k]), add=np.zeros(1))
    _flatten_pooled(ctx, node, ctx.values[name].tensor, keepdims)


@handler("ReduceMax")
def import_reduce_max(ctx: ImportContext, node: onnx.NodeProto) -> None:
    x, keepdims = _reduce_spatial(ctx, node)
    t = ctx.tensors[x]
    name = node.output[0] if keepdims else node.output[0] + "_pooled"
    out = ctx.new_tensor(name, (None, t.shape[1], 1, 1), "codes", t.qtype, "NCHW")
    ctx.emit(ir.MaxPool, [x], out, kernel=(t.shape[2], t.shape[3]), strides=(1, 1), pads=(0, 0, 0, 0))
    ctx.set(name, out, "real")
    _flatten_pooled(ctx, node, out, keepdims)


def residual_add(ctx: ImportContext, node: onnx.NodeProto, vals: list[Value], out_name: str | None = None) -> None:
    ts = []
    for v, name in zip(vals, node.input):
        t = ctx.tensors[v.tensor]
        if t.kind != "codes" or v.view != "real" and node.op_type == "Add":
            raise InputError(
                f"node '{ctx.label()}': residual Add input '{name}' is not quantized; "
                "quantize both branches of a residual add"
            )
        if t.qtype.per_channel:
            raise InputError(f"node '{ctx.label()}': residual Add of per-channel quantized tensors")
        ts.append(t)
    if ts[0].shape != ts[1].shape:
        raise InputError(f"node '{ctx.label()}': Add with broadcasting {ts[0].shape} + {ts[1].shape}")
    out_name = out_name or node.output[0]
    # the accumulator's unit is input 0's scale; the integer pass picks the multipliers
    qtype = ctx.acc_qtype(np.array(ts[0].qtype.scale), None)
    out = ctx.new_tensor(out_name, ts[0].shape, "acc", qtype, ts[0].layout)
    ctx.emit(ir.Add, [ts[0].name, ts[1].name], out)
    ctx.set(out_name, out, "real")


@handler("Concat")
def import_concat(ctx: ImportContext, node: onnx.NodeProto) -> None:
    vals = [ctx.dynamic(n) for n in node.input]
    ts = [ctx.tensors[v.tensor] for v in vals]
    axis = int(ctx.attr(node, "axis"))
    nd = len(ts[0].shape)
    if axis % nd != 1:
        raise InputError(f"node '{ctx.label()}': Concat along axis {axis}; only channel concat is supported")
    if any(t.kind != "codes" for t in ts):
        raise InputError(f"node '{ctx.label()}': Concat of unquantized tensors is not supported")
    if len({ir._qkey(t.qtype) for t in ts}) == 1 and not ts[0].qtype.per_channel:
        _emit_concat(ctx, [t.name for t in ts], node.output[0], vals[0].view)
    else:
        ctx.values[node.output[0]] = PendingConcat(vals, 1, ctx.label())


def _emit_concat(ctx: ImportContext, tensors: list[str], out_name: str, view: str) -> None:
    ts = [ctx.tensors[n] for n in tensors]
    shape = list(ts[0].shape)
    shape[1] = sum(t.shape[1] for t in ts)
    for t in ts[1:]:
        if [d for i, d in enumerate(t.shape) if i != 1] != [d for i, d in enumerate(ts[0].shape) if i != 1]:
            raise InputError(f"node '{ctx.label()}': Concat inputs differ in shape {ts[0].shape} vs {t.shape}")
    out = ctx.new_tensor(out_name, tuple(shape), "codes", ts[0].qtype, ts[0].layout)
    ctx.emit(ir.Concat, tensors, out, axis=1)
    ctx.set(out_name, out, view)


def resolve_concat(ctx: ImportContext, pending: PendingConcat, qtype: ir.QType, rounding: str, out_name: str, view: str,
                    zero_point_after_rounding: bool = False) -> None:  # fmt: skip
    if qtype.per_channel:
        raise InputError(f"node '{ctx.label()}': per-channel quantizer after a Concat")
    parts = []
    for v in pending.values:
        t = ctx.tensors[v.tensor]
        if t.qtype == qtype:
            parts.append(v.tensor)
            continue
        req = ctx.new_tensor(f"{out_name}_{t.name}", t.shape, "codes", qtype, t.layout)
        requant = ir.FloatRequant((), qtype, rounding, zero_point_after_rounding=zero_point_after_rounding)
        ctx.emit(ir.Requantize, [v.tensor], req, requant=requant)
        parts.append(req)
    _emit_concat(ctx, parts, out_name, view)
