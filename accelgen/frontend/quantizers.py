"""Quantizers of the QONNX (Quant, BipolarQuant, Trunc) and QDQ (QuantizeLinear, DequantizeLinear) dialects."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np
import onnx

from accelgen import ir
from accelgen.errors import InputError
from accelgen.frontend.constants import QConst, int_dtype_bits
from accelgen.frontend.layers import resolve_concat
from accelgen.frontend.registry import handler
from accelgen.frontend.values import (
    PendingConcat,
    Value,
    int_range,
)
from accelgen.numeric import ROUNDING_MODES, to_codes
from accelgen.numeric import round_mode as _round

if TYPE_CHECKING:
    from accelgen.frontend.base import ImportContext


def quantize_constant(ctx: ImportContext, node: onnx.NodeProto) -> QConst:
    op = node.op_type
    src = node.input[0]
    if op == "DequantizeLinear":
        if src in ctx.qconsts:
            return ctx.qconsts[src]
        x = np.asarray(ctx.consts[src])
        info = int_dtype_bits(x.dtype)
        if info is None:
            raise InputError(f"node '{ctx.label()}': DequantizeLinear of a non-integer constant")
        scale, zp = _qparams_linear(ctx, node, x.shape)
        if src in ctx.code_ranges:  # integer weights narrowed by a Clip (QCDQ)
            q, _ = _narrowed_qtype(ctx, ir.QType(*info), *ctx.code_ranges[src])
            return QConst.make(x, scale, zp, q.bits, q.signed, q.narrow, source=src)
        return QConst.make(x, scale, zp, info[0], info[1], source=src)
    x = ctx.const_real(src).astype(np.float64)
    if op == "QuantizeLinear":
        scale, zp = _qparams_linear(ctx, node, x.shape)
        bits, signed = linear_out_type(ctx, node)
        lo, hi = int_range(bits, signed, False)
        codes = to_codes(x / scale, zp, lo, hi, "HALF_EVEN", zero_point_after_rounding=True)
        return QConst.make(codes, scale, zp, bits, signed, source=src)
    if op == "BipolarQuant":
        scale = np.asarray(ctx.const_real(node.input[1]), dtype=np.float64)
        ctx.check_scale(scale.reshape(-1), node.input[1])
        codes = np.where(x >= 0, 1, -1)
        return QConst.make(codes, np.broadcast_to(scale, x.shape), 0, 1, True, bipolar=True, source=src)
    # QONNX Quant on a constant: weights, or a (possibly 32-bit) bias
    scale = np.asarray(ctx.const_real(node.input[1]), dtype=np.float64)
    zp = np.asarray(ctx.const_real(node.input[2]), dtype=np.float64)
    bits = float(np.asarray(ctx.const_real(node.input[3])).reshape(-1)[0])
    ctx.check_scale(scale.reshape(-1), node.input[1])
    signed = bool(ctx.attr(node, "signed", 1))
    narrow = bool(ctx.attr(node, "narrow", 0))
    rounding = rounding_of(ctx, node)
    if bits == 1 and signed:
        _check_bipolar_zero_point(ctx, zp, node.input[2])
        codes = np.where(x / scale + zp >= 0, 1, -1)
        return QConst.make(codes, np.broadcast_to(scale, x.shape), 0, 1, True, bipolar=True, source=src)
    lo, hi = int_range(int(bits), signed, narrow)
    codes = np.clip(_round(np.clip(x / scale + zp, lo, hi), rounding), lo, hi)
    return QConst.make(codes, np.broadcast_to(scale, x.shape), np.broadcast_to(zp, x.shape).round(),
                       int(bits), signed, narrow, source=src)  # fmt: skip


def _check_bipolar_zero_point(ctx: ImportContext, zp: np.ndarray, name: str) -> None:
    """A 1-bit signed Quant is bipolar (codes -1, +1); qonnx would shift it by a zero point."""
    if np.any(np.asarray(zp) != 0):
        raise InputError(
            f"node '{ctx.label()}': 1-bit signed Quant with a nonzero zero point '{name}' "
            "(values (+-1 - zero_point) * scale) is not supported; use zero point 0 or BipolarQuant"
        )


def rounding_of(ctx: ImportContext, node: onnx.NodeProto) -> str:
    mode = ctx.attr(node, "rounding_mode", b"ROUND")
    mode = (mode.decode() if isinstance(mode, bytes) else str(mode)).upper()
    mode = {"ROUND": "HALF_EVEN"}.get(mode, mode)
    if mode not in ROUNDING_MODES:
        raise InputError(f"node '{ctx.label()}': rounding mode '{mode}' is not supported")
    return mode


def _qparams_linear(ctx: ImportContext, node: onnx.NodeProto, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """QuantizeLinear/DequantizeLinear scale and zero point broadcast to ``shape``."""
    if ctx.attr(node, "block_size", 0):
        raise InputError(
            f"node '{ctx.label()}': blocked quantization (block_size) is not supported; "
            "use per-tensor or per-channel quantization"
        )
    scale = np.asarray(ctx.const_real(node.input[1]), dtype=np.float64)
    zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if zp_name and zp_name not in ctx.consts:
        raise InputError(
            f"node '{ctx.label()}': zero point '{zp_name}' is not a constant integer tensor; "
            "it must be an initializer or a Constant"
        )
    zp = np.asarray(ctx.consts[zp_name]).astype(np.float64) if zp_name else np.zeros(1)
    ctx.check_scale(scale.reshape(-1), node.input[1])
    if scale.size > 1:
        axis = int(ctx.attr(node, "axis", 1))
        axis = axis % len(shape)
        bshape = [1] * len(shape)
        bshape[axis] = scale.size
        scale = scale.reshape(bshape)
        zp = zp.reshape(bshape) if zp.size > 1 else zp.reshape(())
    return scale, zp.reshape(scale.shape) if zp.size == scale.size else zp


def linear_out_type(ctx: ImportContext, node: onnx.NodeProto) -> tuple[int, bool]:
    if len(node.input) > 2 and node.input[2]:
        dtype = np.asarray(ctx.consts[node.input[2]]).dtype
    else:
        out_dtype = ctx.attr(node, "output_dtype", 0)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(out_dtype) if out_dtype else np.dtype("uint8")
    info = int_dtype_bits(dtype)
    if info is None:
        raise InputError(
            f"node '{ctx.label()}': quantization to {np.dtype(dtype).name} is not supported; "
            "accelgen takes integer types int8/uint8/int4/uint4/int2/uint2"
        )
    return info


def _quantize_dynamic(ctx: ImportContext, src: Value | PendingConcat, qtype: ir.QType, rounding: str, out_name: str,
                      view: str, zero_point_after_rounding: bool = False) -> None:  # fmt: skip
    """Quantize a dynamic tensor: float->codes, or codes->codes when already quantized.

    ``zero_point_after_rounding``: ONNX quantizers round before adding the zero point,
    QONNX Quant after; ONNX quantizers also divide in float32 (see :class:`ir.Quantize`).
    """
    if isinstance(src, PendingConcat):
        resolve_concat(ctx, src, qtype, rounding, out_name, view, zero_point_after_rounding)
        return
    t = ctx.tensors[src.tensor]
    if t.kind == "codes" and src.view == "real" and t.qtype == qtype:
        ctx.set(out_name, src.tensor, view)  # quantizing codes onto their own grid
        return
    out = ctx.new_tensor(out_name, t.shape, "codes", qtype, t.layout)
    if t.kind == "codes":
        requant = ir.FloatRequant((), qtype, rounding, zero_point_after_rounding=zero_point_after_rounding)
        ctx.emit(ir.Requantize, [src.tensor], out, requant=requant)
    else:
        ctx.emit(ir.Quantize, [src.tensor], out, qtype=qtype, rounding=rounding,
                   zero_point_after_rounding=zero_point_after_rounding,
                   float32_quotient=zero_point_after_rounding)  # fmt: skip
    ctx.set(out_name, out, view)


def _quantizer_input(ctx: ImportContext, name: str) -> tuple[Value | PendingConcat, str]:
    """A quantizer's input and an IR tensor of its rank and layout.

    The input may be a Concat of differently quantized tensors, which the quantizer
    resolves by requantizing each part (see :meth:`_check_concat_quantizer`).
    """
    v = ctx.values.get(name)
    if isinstance(v, PendingConcat):
        return v, v.values[0].tensor
    v = ctx.dynamic(name)
    return v, v.tensor


def _check_concat_quantizer(ctx: ImportContext, src: Value | PendingConcat, scale: np.ndarray, zp: np.ndarray) -> None:
    if isinstance(src, PendingConcat) and (np.asarray(scale).size > 1 or np.asarray(zp).size > 1):
        raise InputError(
            f"node '{ctx.label()}': per-channel quantizer after the Concat '{src.node}' of differently "
            "quantized tensors; quantize a Concat's output per tensor"
        )


@handler("Quant", "IntQuant", qonnx=True)
def import_quant(ctx: ImportContext, node: onnx.NodeProto) -> None:
    scale = np.asarray(ctx.const_real(node.input[1]), dtype=np.float64)
    zp = np.asarray(ctx.const_real(node.input[2]), dtype=np.float64)
    bits = float(np.asarray(ctx.const_real(node.input[3])).reshape(-1)[0])
    signed = bool(ctx.attr(node, "signed", 1))
    narrow = bool(ctx.attr(node, "narrow", 0))
    bits = ctx.check_bits(bits, "activation")
    if not np.all(zp == np.round(zp)):
        raise InputError(f"node '{ctx.label()}': zero point {zp} is not an integer")
    src, like = _quantizer_input(ctx, node.input[0])
    _check_concat_quantizer(ctx, src, scale, zp)
    scale_c = ctx.per_channel(scale, like, "scale")
    zp_c = ctx.per_channel(zp, like, "zero point").astype(np.int64)
    ctx.check_scale(scale_c, node.input[1])
    bipolar = bits == 1 and signed
    if bipolar:
        _check_bipolar_zero_point(ctx, zp_c, node.input[2])
    qtype = ir.QType(bits, signed, tuple(map(float, scale_c)), tuple(map(int, zp_c)),
                     axis=1 if scale_c.size > 1 else None, narrow=narrow, bipolar=bipolar)  # fmt: skip
    _quantize_dynamic(ctx, src, qtype, "BIPOLAR" if bipolar else rounding_of(ctx, node), node.output[0], "real")


@handler("BipolarQuant", qonnx=True)
def import_bipolar_quant(ctx: ImportContext, node: onnx.NodeProto) -> None:
    scale = np.asarray(ctx.const_real(node.input[1]), dtype=np.float64).reshape(-1)
    src, like = _quantizer_input(ctx, node.input[0])
    _check_concat_quantizer(ctx, src, scale, np.zeros(1))
    ctx.check_scale(scale, node.input[1])
    if scale.size > 1:
        scale = ctx.per_channel(scale, like, "scale")
    qtype = ir.QType(1, True, tuple(map(float, scale)), (0,), axis=1 if scale.size > 1 else None, bipolar=True)
    _quantize_dynamic(ctx, src, qtype, "BIPOLAR", node.output[0], "real")


@handler("Trunc", qonnx=True)
def import_trunc(ctx: ImportContext, node: onnx.NodeProto) -> None:
    """QONNX Trunc: codes divided by a power of two with the given rounding (floor)."""
    src = ctx.dynamic(node.input[0])
    t = ctx.tensors[src.tensor]
    scale = np.asarray(ctx.const_real(node.input[1]), dtype=np.float64).reshape(-1)
    zp = np.asarray(ctx.const_real(node.input[2]), dtype=np.float64).reshape(-1)
    in_bits = float(np.asarray(ctx.const_real(node.input[3])).reshape(-1)[0])
    if len(node.input) >= 6:  # Trunc v2: (x, scale, zp, in_bits, out_scale, out_bits)
        out_scale = np.asarray(ctx.const_real(node.input[4]), dtype=np.float64).reshape(-1)
        out_bits = float(np.asarray(ctx.const_real(node.input[5])).reshape(-1)[0])
        shift = np.round(np.log2(out_scale / scale))
    else:
        out_bits = float(np.asarray(ctx.const_real(node.input[4])).reshape(-1)[0])
        shift = np.array([in_bits - out_bits])
        out_scale = scale
    if np.any(zp != 0) or scale.size != 1:
        raise InputError(f"node '{ctx.label()}': Trunc with a zero point or per-channel scale is not supported")
    out_bits_i = ctx.check_bits(out_bits, "Trunc output")
    signed = bool(ctx.attr(node, "signed", 1))
    narrow = bool(ctx.attr(node, "narrow", 0))
    qtype = ir.QType(out_bits_i, signed, (float(out_scale[0]),), (0,), narrow=narrow)
    # code = rounding(round(x / scale) / 2**shift): an affine step, a round, a scaled quantizer
    inner = ctx.new_tensor(node.output[0] + "_scaled", t.shape, "float", None, t.layout)
    ctx.emit(ir.Affine, [src.tensor], inner, mul=np.array([1.0 / scale[0]]), add=np.zeros(1))
    rounded = ctx.new_tensor(node.output[0] + "_round", t.shape, "float", None, t.layout)
    ctx.emit(ir.Round, [inner], rounded, mode="HALF_EVEN")
    out = ctx.new_tensor(node.output[0], t.shape, "codes", qtype, t.layout)
    ctx.emit(ir.Quantize, [rounded], out, qtype=qtype, rounding=rounding_of(ctx, node),
               divisor=float(2.0 ** shift[0]))  # fmt: skip
    ctx.set(node.output[0], out, "real")


@handler("QuantizeLinear")
def import_quantize_linear(ctx: ImportContext, node: onnx.NodeProto) -> None:
    src, like = _quantizer_input(ctx, node.input[0])
    t = ctx.tensors[like]
    scale, zp = _qparams_linear(ctx, node, t.shape)
    _check_concat_quantizer(ctx, src, scale, zp)
    bits, signed = linear_out_type(ctx, node)
    bits = ctx.check_bits(bits, "activation")
    scale_c = ctx.per_channel(scale, like, "scale")
    zp_c = ctx.per_channel(zp, like, "zero point").astype(np.int64)
    qtype = ir.QType(bits, signed, tuple(map(float, scale_c)), tuple(map(int, zp_c)),
                     axis=(3 if t.layout == "NHWC" else 1) if scale_c.size > 1 else None)  # fmt: skip
    _quantize_dynamic(ctx, src, qtype, "HALF_EVEN", node.output[0], "int", zero_point_after_rounding=True)


@handler("DequantizeLinear")
def import_dequantize_linear(ctx: ImportContext, node: onnx.NodeProto) -> None:
    v = ctx.dynamic(node.input[0])
    t = ctx.tensors[v.tensor]
    scale, zp = _qparams_linear(ctx, node, t.shape)
    scale_c = ctx.per_channel(scale, v.tensor, "scale")
    zp_c = ctx.per_channel(zp, v.tensor, "zero point").astype(np.int64)
    if v.view == "real":
        raise InputError(f"node '{ctx.label()}': DequantizeLinear of a tensor that is not integer")
    if t.kind == "acc":  # e.g. ConvInteger -> DequantizeLinear(int32)
        ctx.emit_float(ir.Affine, v.tensor, node.output[0], mul=scale_c, add=-zp_c * scale_c)
        return
    tensor = ctx.interpret(v, (scale_c, zp_c), f"input '{node.input[0]}'")
    ctx.set(node.output[0], tensor, "real")


def clip_bounds(ctx: ImportContext, node: onnx.NodeProto) -> tuple[float, float]:
    """Clip's min and max (inputs from opset 11, attributes before); +-inf when absent."""
    lo, hi = ctx.attr(node, "min", -math.inf), ctx.attr(node, "max", math.inf)
    if len(node.input) > 1 and node.input[1]:
        lo = float(np.asarray(ctx.const_real(node.input[1])).reshape(-1)[0])
    if len(node.input) > 2 and node.input[2]:
        hi = float(np.asarray(ctx.const_real(node.input[2])).reshape(-1)[0])
    return float(lo), float(hi)


def _narrowed_qtype(ctx: ImportContext, q: ir.QType, lo: float, hi: float) -> tuple[ir.QType, bool]:
    """The QType of codes ``q`` clipped to [lo, hi], and whether its range is exactly [lo, hi].

    A Clip on codes is how 2- to 7-bit quantization appears in QDQ: int8 codes clipped to
    [-8, 7] are int4, to [-7, 7] narrow int4; uint8 codes clipped to [0, 127] are uint7.
    """
    if q.bipolar:
        raise InputError(f"node '{ctx.label()}': Clip on bipolar (1-bit) codes is not supported")
    for name, v in (("min", lo), ("max", hi)):
        if math.isfinite(v) and v != math.floor(v):
            raise InputError(f"node '{ctx.label()}': Clip {name} {v} on integer codes is not a whole number")
    a = q.qmin if not math.isfinite(lo) else max(int(lo), q.qmin)
    b = q.qmax if not math.isfinite(hi) else min(int(hi), q.qmax)
    if a > b:
        raise InputError(
            f"node '{ctx.label()}': Clip [{lo:g}, {hi:g}] on {q.describe()} codes leaves no value; "
            "check the quantizer's range"
        )
    if a >= 0:
        bits, signed, narrow = max(1, int(b).bit_length()), False, False
    else:
        bits, signed = ir.signed_bits_for(a, b), True
        narrow = bits > 1 and a == -(1 << (bits - 1)) + 1 and b == (1 << (bits - 1)) - 1
    nq = dataclasses.replace(q, bits=bits, signed=signed, narrow=narrow)
    return nq, (nq.qmin, nq.qmax) == (a, b)


def clip_constant(ctx: ImportContext, node: onnx.NodeProto) -> bool:
    """Clip of quantized constant codes (weights): narrower codes; False if not codes."""
    src = node.input[0]
    if src in ctx.qconsts:
        q = ctx.qconsts[src]
        qt = ir.QType(q.bits, q.signed, narrow=q.narrow, bipolar=q.bipolar)
        lo, hi = clip_bounds(ctx, node)
        nq, _ = _narrowed_qtype(ctx, qt, lo, hi)
        codes = np.clip(q.codes, max(nq.qmin, lo), min(nq.qmax, hi)).astype(np.int64)
        ctx.qconsts[node.output[0]] = dataclasses.replace(
            q, codes=codes, bits=nq.bits, signed=nq.signed, narrow=nq.narrow
        )
        return True
    arr = ctx.consts.get(src)
    if arr is None or int_dtype_bits(np.asarray(arr).dtype) is None:
        return False
    bits, signed = int_dtype_bits(np.asarray(arr).dtype)
    range_ = ctx.code_ranges.get(src, int_range(bits, signed, False))
    lo, hi = clip_bounds(ctx, node)
    nq, _ = _narrowed_qtype(ctx, ir.QType(bits, signed), max(lo, range_[0]), min(hi, range_[1]))
    ctx.consts[node.output[0]] = np.clip(arr, nq.qmin, nq.qmax).astype(arr.dtype)
    ctx.code_ranges[node.output[0]] = (nq.qmin, nq.qmax)
    return True


def clip_codes(ctx: ImportContext, node: onnx.NodeProto, v: Value) -> None:
    """Clip on the int view of dynamic codes: the tensor stays codes, with a narrower QType.

    When the codes come straight from a quantizer that nothing else reads, the quantizer
    itself is narrowed; otherwise a requantizer onto the narrower type is added.
    """
    t = ctx.tensors[v.tensor]
    if v.tensor in ctx.uninterpreted:
        raise InputError(
            f"node '{ctx.label()}': Clip on the integer graph input '{node.input[0]}' before its "
            "scale is known; dequantize it first"
        )
    lo, hi = clip_bounds(ctx, node)
    nq, exact = _narrowed_qtype(ctx, t.qtype, lo, hi)
    if not exact and nq.per_channel:
        raise InputError(
            f"node '{ctx.label()}': Clip [{lo:g}, {hi:g}] on per-channel codes narrows them to no "
            "whole bit width; clip to a full 2..8-bit range"
        )
    scale, zp = nq.scale[0], nq.zero_point[0]
    code_range = (int(max(lo, nq.qmin)), int(min(hi, nq.qmax)))
    bounds = np.array([scale * (code_range[0] - zp), scale * (code_range[1] - zp)])
    producer = next((op for op in reversed(ctx.ops) if v.tensor in op.outputs), None)
    onnx_readers = [n for n in ctx.model.graph.node if node.input[0] in n.input]
    sole = (
        isinstance(producer, (ir.Quantize, ir.Requantize))
        and len(onnx_readers) == 1
        and node.input[0] not in {o.name for o in ctx.model.graph.output}
        and not any(v.tensor in op.inputs for op in ctx.ops)
        and [k for k, val in ctx.values.items() if isinstance(val, Value) and val.tensor == v.tensor] == [node.input[0]]
    )
    if sole:
        _narrow_producer(ctx, producer, nq, None if exact else bounds, code_range)
        ctx.tensors[v.tensor] = dataclasses.replace(t, qtype=nq)
        ctx.set(node.output[0], v.tensor, "int")
        return
    steps = () if exact else (ir.FloatStep("clip", bounds),)
    out = ctx.new_tensor(node.output[0], t.shape, "codes", nq, t.layout)
    ctx.emit(ir.Requantize, [v.tensor], out, requant=ir.FloatRequant(steps, nq, "HALF_EVEN"))
    ctx.set(node.output[0], out, "int")


def _narrow_producer(ctx: ImportContext, producer: ir.Op, nq: ir.QType, bounds: np.ndarray | None, code_range) -> None:
    """Give the quantizer ``producer`` the narrower output type (and a clip when not exact)."""
    if isinstance(producer, ir.Requantize):
        fr = producer.requant
        steps = fr.steps + ((ir.FloatStep("clip", bounds),) if bounds is not None else ())
        new = producer.replace(requant=dataclasses.replace(fr, steps=steps, out_qtype=nq))
    else:
        f32 = producer.float32
        if f32 is not None:
            f32 = dataclasses.replace(f32, lo=max(f32.lo, code_range[0]), hi=min(f32.hi, code_range[1]))
        new = producer.replace(qtype=nq, float32=f32)
        if bounds is not None:
            src = ctx.tensors[producer.inputs[0]]
            if src.kind != "float":
                raise InputError(f"node '{ctx.label()}': Clip on codes of an unsupported producer")
            clipped = ctx.new_tensor(producer.inputs[0] + "_clipped", src.shape, "float", None, src.layout)
            clip = ir.Clip(name=ctx.fresh(f"clip:{ctx.label()}"), inputs=(producer.inputs[0],),
                           outputs=(clipped,), source=ctx.label(), lo=float(bounds[0]), hi=float(bounds[1]))  # fmt: skip
            new = new.replace(inputs=(clipped,))
            idx = ctx.ops.index(producer)
            ctx.ops.insert(idx, clip)
    ctx.ops[ctx.ops.index(producer)] = new
