"""The QOperator dialect: QLinearConv, QLinearMatMul and onnxruntime's com.microsoft QGemm, QLinearAdd, QLinearGlobalAveragePool, QLinearAveragePool, QLinearConcat."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import onnx

from accelgen import ir
from accelgen.errors import InputError
from accelgen.frontend.constants import QConst, int_dtype_bits
from accelgen.frontend.layers import emit_avgpool, emit_conv, emit_dense, pool_attrs, residual_add, resolve_concat
from accelgen.frontend.registry import handler
from accelgen.frontend.values import (
    PendingConcat,
    Value,
)

if TYPE_CHECKING:
    from accelgen.frontend.base import ImportContext


def _float32_multiply(ctx: ImportContext, x_scale: str, w_scale: str, y_scale: str, bias_int, qtype: ir.QType):
    """onnxruntime's float32 form of this requantization (see :class:`ir.Float32Multiply`)."""
    sx, sw, sy = (np.asarray(ctx.const_real(n), dtype=np.float32).reshape(-1) for n in (x_scale, w_scale, y_scale))
    multiplier = (sx[0] * sw) / sy[0]  # float32 products, as onnxruntime computes them
    if np.all(multiplier == multiplier[0]):
        multiplier = multiplier[:1]
    bias = np.zeros(1, np.int64) if bias_int is None else np.asarray(bias_int, dtype=np.int64).reshape(-1)
    return ir.Float32Multiply(bias=bias, multiplier=multiplier.astype(np.float32), lo=qtype.qmin, hi=qtype.qmax)


def _qlinear_requant(ctx: ImportContext, acc: str, bias_int: np.ndarray | None, y_scale, y_zp, out_name: str,
                     scales: tuple[str, str]) -> None:  # fmt: skip
    """QOperator tail: (acc + bias) * (sx*sw) -> quantize(y_scale, y_zp).

    ``scales`` names the input and weight scales, from which onnxruntime's float32
    multiplier is computed (the compile option ``arithmetic`` picks which one is used).
    """
    t = ctx.tensors[acc]
    src = acc
    if bias_int is not None:
        acc_scale = np.asarray(t.qtype.scale)
        src = ctx.new_tensor(out_name + "_biased", t.shape, "float", None, t.layout)
        ctx.emit(ir.Affine, [acc], src, mul=np.ones(1), add=bias_int.astype(np.float64) * acc_scale)
    scale, zp = ctx.scale_zp(y_scale, y_zp)
    bits, signed = int_dtype_bits(np.asarray(ctx.consts[y_zp]).dtype) if y_zp else (8, False)
    qtype = ir.QType(ctx.check_bits(bits, "output"), signed, tuple(map(float, scale)),
                     tuple(map(int, zp)), axis=1 if scale.size > 1 else None)  # fmt: skip
    out = ctx.new_tensor(out_name, t.shape, "codes", qtype, t.layout)
    f32 = _float32_multiply(ctx, *scales, y_scale, bias_int, qtype)
    ctx.emit(ir.Quantize, [src], out, qtype=qtype, rounding="HALF_EVEN", zero_point_after_rounding=True,
               float32=f32)  # fmt: skip
    ctx.set(out_name, out, "int")


def _interpret_input(ctx: ImportContext, node: onnx.NodeProto, idx: int) -> str:
    """QOperator data input at ``idx`` with its scale and zero point at idx+1, idx+2."""
    v = ctx.dynamic(node.input[idx])
    zp_name = node.input[idx + 2] if len(node.input) > idx + 2 and node.input[idx + 2] else None
    scale, zp = ctx.scale_zp(node.input[idx + 1], zp_name)
    return ctx.interpret(v, (scale, zp), f"input '{node.input[idx]}'")


def _qoperator_constant(ctx: ImportContext, node: onnx.NodeProto, idx: int) -> np.ndarray:
    """The real value ``scale * (code - zero_point)`` of a constant QOperator operand."""
    codes = np.asarray(ctx.const_real(node.input[idx]))
    if int_dtype_bits(codes.dtype) is None:
        raise InputError(f"node '{ctx.label()}': constant input '{node.input[idx]}' is not integer codes")
    zp_name = node.input[idx + 2] if len(node.input) > idx + 2 and node.input[idx + 2] else None
    scale, zp = ctx.scale_zp(node.input[idx + 1], zp_name)
    if scale.size != 1 or zp.size != 1:
        raise InputError(f"node '{ctx.label()}': constant input '{node.input[idx]}' needs a per-tensor scale")
    return scale[0] * (codes.astype(np.float64) - zp[0])


def _qoperator_weights(
    ctx: ImportContext, node: onnx.NodeProto, idx: int, out_axis: int
) -> tuple[np.ndarray, ir.QType]:
    name = node.input[idx]
    if name not in ctx.consts:
        raise InputError(f"node '{ctx.label()}': weights '{name}' must be a constant")
    w = np.asarray(ctx.consts[name])
    if out_axis == 1:
        if w.ndim != 2:
            raise InputError(f"node '{ctx.label()}': weights '{name}' are {w.ndim}-D; expected a matrix")
        w = np.ascontiguousarray(w.T)
    info = int_dtype_bits(w.dtype)
    if info is None:
        raise InputError(f"node '{ctx.label()}': weights '{name}' are not integers")
    zp_name = node.input[idx + 2] if len(node.input) > idx + 2 and node.input[idx + 2] else None
    scale, zp = ctx.scale_zp(node.input[idx + 1], zp_name)
    shape = [1] * w.ndim
    if scale.size > 1:
        shape[0] = scale.size
    zshape = [1] * w.ndim
    if zp.size > 1:
        zshape[0] = zp.size
    key = f"{name}#q{idx}"
    ctx.qconsts[key] = QConst.make(w, scale.reshape(shape), zp.reshape(zshape), info[0], info[1], source=name)
    return ctx.weights(key, 0)


@handler("QLinearConv")
def import_qlinear_conv(ctx: ImportContext, node: onnx.NodeProto) -> None:
    x = _interpret_input(ctx, node, 0)
    w, wq = _qoperator_weights(ctx, node, 3, 0)
    acc = emit_conv(ctx, node, x, w, wq, node.output[0] + "_acc", "real")
    bias = None
    if len(node.input) > 8 and node.input[8]:
        bias = np.asarray(ctx.const_real(node.input[8])).reshape(-1)
    _qlinear_requant(ctx, acc, bias, node.input[6], node.input[7], node.output[0], (node.input[1], node.input[4]))


@handler("QLinearMatMul")
def import_qlinear_matmul(ctx: ImportContext, node: onnx.NodeProto) -> None:
    x = _interpret_input(ctx, node, 0)
    w, wq = _qoperator_weights(ctx, node, 3, 1)
    acc = emit_dense(ctx, x, w, wq, node.output[0] + "_acc", "real")
    _qlinear_requant(ctx, acc, None, node.input[6], node.input[7], node.output[0], (node.input[1], node.input[4]))


@handler("QGemm")
def import_qgemm(ctx: ImportContext, node: onnx.NodeProto) -> None:
    if ctx.attr(node, "transA", 0):
        raise InputError(f"node '{ctx.label()}': QGemm with transA=1 is not supported")
    x = _interpret_input(ctx, node, 0)
    trans_b = bool(ctx.attr(node, "transB", 0))
    w, wq = _qoperator_weights(ctx, node, 3, 0 if trans_b else 1)
    acc = emit_dense(ctx, x, w, wq, node.output[0] + "_acc", "real")
    alpha = float(ctx.attr(node, "alpha", 1.0))
    bias = np.asarray(ctx.const_real(node.input[6])).reshape(-1) if len(node.input) > 6 and node.input[6] else None
    if len(node.input) < 8 or not node.input[7]:
        raise InputError(f"node '{ctx.label()}': QGemm with float output is not supported")
    if alpha != 1.0:
        raise InputError(f"node '{ctx.label()}': QGemm with alpha != 1 is not supported")
    y_zp = node.input[8] if len(node.input) > 8 else None
    _qlinear_requant(ctx, acc, bias, node.input[7], y_zp, node.output[0], (node.input[1], node.input[4]))


@handler("QLinearAdd")
def import_qlinear_add(ctx: ImportContext, node: onnx.NodeProto) -> None:
    const = [i for i in (0, 3) if node.input[i] in ctx.consts or node.input[i] in ctx.qconsts]
    if len(const) == 2:
        raise InputError(f"node '{ctx.label()}': QLinearAdd of two constants")
    if const:  # onnxruntime's MatMul + Add: a constant (e.g. the bias) with its own scale
        data = 3 - const[0]
        a = _interpret_input(ctx, node, data)
        c = _qoperator_constant(ctx, node, const[0])
        c = ctx.per_channel(c, a, "added constant")
        ctx.emit_float(ir.Affine, a, node.output[0] + "_sum", mul=np.ones(1), add=c)
        const_codes = ctx.per_channel(np.asarray(ctx.const_real(node.input[const[0]])), a, "added constant")
    else:
        a = _interpret_input(ctx, node, 0)
        b = _interpret_input(ctx, node, 3)
        residual_add(ctx, node, [Value(a, "real"), Value(b, "real")], out_name=node.output[0] + "_sum")
        const_codes = None
    f32 = _float32_sum(ctx, node, const_codes, const[0] // 3 if const else 1)
    _qlinear_quantize(ctx, node.output[0] + "_sum", node.input[6], node.input[7], node.output[0],
                           zero_point_after_rounding=False, float32=f32)  # fmt: skip


def _float32_sum(ctx: ImportContext, node: onnx.NodeProto, const_codes, const_input: int) -> ir.Float32Sum:
    """onnxruntime's float32 form of this QLinearAdd (see :class:`ir.Float32Sum`)."""
    f = np.float32

    def qparams(idx: int) -> tuple[np.float32, int]:
        scale = np.asarray(ctx.const_real(node.input[idx + 1]), dtype=f).reshape(-1)[0]
        zp_name = node.input[idx + 2] if len(node.input) > idx + 2 and node.input[idx + 2] else None
        zp = int(np.asarray(ctx.consts[zp_name]).reshape(-1)[0]) if zp_name else 0
        return scale, zp

    (sa, za), (sb, zb), (sy, zy) = qparams(0), qparams(3), qparams(5)
    ra, rb = f(sa / sy), f(sb / sy)
    offset = f(f(zy) - f(f(ra * f(za)) + f(rb * f(zb))))
    bits, signed = int_dtype_bits(np.asarray(ctx.consts[node.input[7]]).dtype) if node.input[7:8] else (8, False)
    q = ir.QType(bits, signed)
    codes = None if const_codes is None else np.asarray(const_codes).astype(np.int64)
    return ir.Float32Sum(float(ra), float(rb), float(offset), (za, zb), q.qmin, q.qmax, codes, const_input)


def _qlinear_quantize(ctx: ImportContext, src_onnx: str, y_scale: str, y_zp: str | None, out_name: str,
                      zero_point_after_rounding: bool, float32=None) -> None:  # fmt: skip
    """Quantize a com.microsoft QLinear op's real result.

    onnxruntime's QLinearAdd and QLinearAveragePool round ``y / scale + zero_point``;
    its other QLinear kernels (like QuantizeLinear) round first and add the zero point.
    """
    v = ctx.dynamic(src_onnx)
    t = ctx.tensors[v.tensor]
    scale, zp = ctx.scale_zp(y_scale, y_zp)
    bits, signed = int_dtype_bits(np.asarray(ctx.consts[y_zp]).dtype) if y_zp else (8, False)
    qtype = ir.QType(ctx.check_bits(bits, "output"), signed, tuple(map(float, scale)), tuple(map(int, zp)))
    out = ctx.new_tensor(out_name, t.shape, "codes", qtype, t.layout)
    ctx.emit(ir.Quantize, [v.tensor], out, qtype=qtype, rounding="HALF_EVEN",
               zero_point_after_rounding=zero_point_after_rounding, float32=float32)  # fmt: skip
    ctx.set(out_name, out, "int")


@handler("QLinearGlobalAveragePool")
def import_qlinear_global_average_pool(ctx: ImportContext, node: onnx.NodeProto) -> None:
    if int(ctx.attr(node, "channels_last", 0)):
        raise InputError(f"node '{ctx.label()}': channels_last QLinearGlobalAveragePool is not supported")
    x = _interpret_input(ctx, node, 0)
    t = ctx.tensors[x]
    emit_avgpool(ctx, x, (t.shape[2], t.shape[3]), (1, 1), (0, 0, 0, 0), node.output[0] + "_mean")
    _qlinear_quantize(ctx, node.output[0] + "_mean", node.input[3], node.input[4], node.output[0],
                           zero_point_after_rounding=True)  # fmt: skip


@handler("QLinearAveragePool")
def import_qlinear_average_pool(ctx: ImportContext, node: onnx.NodeProto) -> None:
    x = _interpret_input(ctx, node, 0)
    kernel, strides, pads = pool_attrs(ctx, node, avg=True)
    emit_avgpool(ctx, x, kernel, strides, pads, node.output[0] + "_mean")
    _qlinear_quantize(ctx, node.output[0] + "_mean", node.input[3], node.input[4], node.output[0],
                           zero_point_after_rounding=False)  # fmt: skip


@handler("QLinearConcat")
def import_qlinear_concat(ctx: ImportContext, node: onnx.NodeProto) -> None:
    y_scale, y_zp = node.input[0], node.input[1]
    vals = []
    for i in range(2, len(node.input), 3):
        vals.append(Value(_interpret_input(ctx, node, i), "real"))
    scale, zp = ctx.scale_zp(y_scale, y_zp)
    bits, signed = int_dtype_bits(np.asarray(ctx.consts[y_zp]).dtype)
    qtype = ir.QType(bits, signed, tuple(map(float, scale)), tuple(map(int, zp)))
    axis = int(ctx.attr(node, "axis", 1))
    pending = PendingConcat(vals, axis, ctx.label())
    resolve_concat(ctx, pending, qtype, "HALF_EVEN", node.output[0], "int", zero_point_after_rounding=True)
