"""The QOperator dialect: QLinearConv, QLinearMatMul and onnxruntime's com.microsoft QGemm, QLinearAdd, QLinearGlobalAveragePool, QLinearAveragePool, QLinearConcat."""

from __future__ import annotations

import numpy as np
import onnx

from accelgen import ir
from accelgen.errors import InputError
from accelgen.frontend.constants import QConst, int_dtype_bits
from accelgen.frontend.values import (
    PendingConcat,
    Value,
)


class QOperatorHandlers:
    """Handler mixin of the importer (``op_<OpType>`` methods)."""

    def _float32_multiply(self, x_scale: str, w_scale: str, y_scale: str, bias_int, qtype: ir.QType):
        """onnxruntime's float32 form of this requantization (see :class:`ir.Float32Multiply`)."""
        sx, sw, sy = (
            np.asarray(self._const_real(n), dtype=np.float32).reshape(-1) for n in (x_scale, w_scale, y_scale)
        )
        multiplier = (sx[0] * sw) / sy[0]  # float32 products, as onnxruntime computes them
        if np.all(multiplier == multiplier[0]):
            multiplier = multiplier[:1]
        bias = np.zeros(1, np.int64) if bias_int is None else np.asarray(bias_int, dtype=np.int64).reshape(-1)
        return ir.Float32Multiply(bias=bias, multiplier=multiplier.astype(np.float32), lo=qtype.qmin, hi=qtype.qmax)

    def _qlinear_requant(self, acc: str, bias_int: np.ndarray | None, y_scale, y_zp, out_name: str,
                         scales: tuple[str, str]) -> None:  # fmt: skip
        """QOperator tail: (acc + bias) * (sx*sw) -> quantize(y_scale, y_zp).

        ``scales`` names the input and weight scales, from which onnxruntime's float32
        multiplier is computed (the compile option ``arithmetic`` picks which one is used).
        """
        t = self.tensors[acc]
        src = acc
        if bias_int is not None:
            acc_scale = np.asarray(t.qtype.scale)
            src = self._new_tensor(out_name + "_biased", t.shape, "float", None, t.layout)
            self._emit(ir.Affine, [acc], src, mul=np.ones(1), add=bias_int.astype(np.float64) * acc_scale)
        scale, zp = self._scale_zp(y_scale, y_zp)
        bits, signed = int_dtype_bits(np.asarray(self.consts[y_zp]).dtype) if y_zp else (8, False)
        qtype = ir.QType(self._check_bits(bits, "output"), signed, tuple(map(float, scale)),
                         tuple(map(int, zp)), axis=1 if scale.size > 1 else None)  # fmt: skip
        out = self._new_tensor(out_name, t.shape, "codes", qtype, t.layout)
        f32 = self._float32_multiply(*scales, y_scale, bias_int, qtype)
        self._emit(ir.Quantize, [src], out, qtype=qtype, rounding="HALF_EVEN", zero_point_after_rounding=True,
                   float32=f32)  # fmt: skip
        self._set(out_name, out, "int")

    def _interpret_input(self, node: onnx.NodeProto, idx: int) -> str:
        """QOperator data input at ``idx`` with its scale and zero point at idx+1, idx+2."""
        v = self._dynamic(node.input[idx])
        zp_name = node.input[idx + 2] if len(node.input) > idx + 2 and node.input[idx + 2] else None
        scale, zp = self._scale_zp(node.input[idx + 1], zp_name)
        return self._interpret(v, (scale, zp), f"input '{node.input[idx]}'")

    def _qoperator_constant(self, node: onnx.NodeProto, idx: int) -> np.ndarray:
        """The real value ``scale * (code - zero_point)`` of a constant QOperator operand."""
        codes = np.asarray(self._const_real(node.input[idx]))
        if int_dtype_bits(codes.dtype) is None:
            raise InputError(f"node '{self._label()}': constant input '{node.input[idx]}' is not integer codes")
        zp_name = node.input[idx + 2] if len(node.input) > idx + 2 and node.input[idx + 2] else None
        scale, zp = self._scale_zp(node.input[idx + 1], zp_name)
        if scale.size != 1 or zp.size != 1:
            raise InputError(f"node '{self._label()}': constant input '{node.input[idx]}' needs a per-tensor scale")
        return scale[0] * (codes.astype(np.float64) - zp[0])

    def _qoperator_weights(self, node: onnx.NodeProto, idx: int, out_axis: int) -> tuple[np.ndarray, ir.QType]:
        name = node.input[idx]
        if name not in self.consts:
            raise InputError(f"node '{self._label()}': weights '{name}' must be a constant")
        w = np.asarray(self.consts[name])
        if out_axis == 1:
            if w.ndim != 2:
                raise InputError(f"node '{self._label()}': weights '{name}' are {w.ndim}-D; expected a matrix")
            w = np.ascontiguousarray(w.T)
        info = int_dtype_bits(w.dtype)
        if info is None:
            raise InputError(f"node '{self._label()}': weights '{name}' are not integers")
        zp_name = node.input[idx + 2] if len(node.input) > idx + 2 and node.input[idx + 2] else None
        scale, zp = self._scale_zp(node.input[idx + 1], zp_name)
        shape = [1] * w.ndim
        if scale.size > 1:
            shape[0] = scale.size
        zshape = [1] * w.ndim
        if zp.size > 1:
            zshape[0] = zp.size
        key = f"{name}#q{idx}"
        self.qconsts[key] = QConst.make(w, scale.reshape(shape), zp.reshape(zshape), info[0], info[1], source=name)
        return self._weights(key, 0)

    def op_QLinearConv(self, node: onnx.NodeProto) -> None:
        x = self._interpret_input(node, 0)
        w, wq = self._qoperator_weights(node, 3, 0)
        acc = self._emit_conv(node, x, w, wq, node.output[0] + "_acc", "real")
        bias = None
        if len(node.input) > 8 and node.input[8]:
            bias = np.asarray(self._const_real(node.input[8])).reshape(-1)
        self._qlinear_requant(acc, bias, node.input[6], node.input[7], node.output[0], (node.input[1], node.input[4]))

    def op_QLinearMatMul(self, node: onnx.NodeProto) -> None:
        x = self._interpret_input(node, 0)
        w, wq = self._qoperator_weights(node, 3, 1)
        acc = self._emit_dense(x, w, wq, node.output[0] + "_acc", "real")
        self._qlinear_requant(acc, None, node.input[6], node.input[7], node.output[0], (node.input[1], node.input[4]))

    def op_QGemm(self, node: onnx.NodeProto) -> None:
        if self._attr(node, "transA", 0):
            raise InputError(f"node '{self._label()}': QGemm with transA=1 is not supported")
        x = self._interpret_input(node, 0)
        trans_b = bool(self._attr(node, "transB", 0))
        w, wq = self._qoperator_weights(node, 3, 0 if trans_b else 1)
        acc = self._emit_dense(x, w, wq, node.output[0] + "_acc", "real")
        alpha = float(self._attr(node, "alpha", 1.0))
        bias = (
            np.asarray(self._const_real(node.input[6])).reshape(-1) if len(node.input) > 6 and node.input[6] else None
        )
        if len(node.input) < 8 or not node.input[7]:
            raise InputError(f"node '{self._label()}': QGemm with float output is not supported")
        if alpha != 1.0:
            raise InputError(f"node '{self._label()}': QGemm with alpha != 1 is not supported")
        y_zp = node.input[8] if len(node.input) > 8 else None
        self._qlinear_requant(acc, bias, node.input[7], y_zp, node.output[0], (node.input[1], node.input[4]))

    def op_QLinearAdd(self, node: onnx.NodeProto) -> None:
        const = [i for i in (0, 3) if node.input[i] in self.consts or node.input[i] in self.qconsts]
        if len(const) == 2:
            raise InputError(f"node '{self._label()}': QLinearAdd of two constants")
        if const:  # onnxruntime's MatMul + Add: a constant (e.g. the bias) with its own scale
            data = 3 - const[0]
            a = self._interpret_input(node, data)
            c = self._qoperator_constant(node, const[0])
            c = self._per_channel(c, a, "added constant")
            self._emit_float(ir.Affine, a, node.output[0] + "_sum", mul=np.ones(1), add=c)
            const_codes = self._per_channel(np.asarray(self._const_real(node.input[const[0]])), a, "added constant")
        else:
            a = self._interpret_input(node, 0)
            b = self._interpret_input(node, 3)
            self._residual_add(node, [Value(a, "real"), Value(b, "real")], out_name=node.output[0] + "_sum")
            const_codes = None
        f32 = self._float32_sum(node, const_codes, const[0] // 3 if const else 1)
        self._qlinear_quantize(node.output[0] + "_sum", node.input[6], node.input[7], node.output[0],
                               zero_point_after_rounding=False, float32=f32)  # fmt: skip

    def _float32_sum(self, node: onnx.NodeProto, const_codes, const_input: int) -> ir.Float32Sum:
        """onnxruntime's float32 form of this QLinearAdd (see :class:`ir.Float32Sum`)."""
        f = np.float32

        def qparams(idx: int) -> tuple[np.float32, int]:
            scale = np.asarray(self._const_real(node.input[idx + 1]), dtype=f).reshape(-1)[0]
            zp_name = node.input[idx + 2] if len(node.input) > idx + 2 and node.input[idx + 2] else None
            zp = int(np.asarray(self.consts[zp_name]).reshape(-1)[0]) if zp_name else 0
            return scale, zp

        (sa, za), (sb, zb), (sy, zy) = qparams(0), qparams(3), qparams(5)
        ra, rb = f(sa / sy), f(sb / sy)
        offset = f(f(zy) - f(f(ra * f(za)) + f(rb * f(zb))))
        bits, signed = int_dtype_bits(np.asarray(self.consts[node.input[7]]).dtype) if node.input[7:8] else (8, False)
        q = ir.QType(bits, signed)
        codes = None if const_codes is None else np.asarray(const_codes).astype(np.int64)
        return ir.Float32Sum(float(ra), float(rb), float(offset), (za, zb), q.qmin, q.qmax, codes, const_input)

    def _qlinear_quantize(self, src_onnx: str, y_scale: str, y_zp: str | None, out_name: str,
                          zero_point_after_rounding: bool, float32=None) -> None:  # fmt: skip
        """Quantize a com.microsoft QLinear op's real result.

        onnxruntime's QLinearAdd and QLinearAveragePool round ``y / scale + zero_point``;
        its other QLinear kernels (like QuantizeLinear) round first and add the zero point.
        """
        v = self._dynamic(src_onnx)
        t = self.tensors[v.tensor]
        scale, zp = self._scale_zp(y_scale, y_zp)
        bits, signed = int_dtype_bits(np.asarray(self.consts[y_zp]).dtype) if y_zp else (8, False)
        qtype = ir.QType(self._check_bits(bits, "output"), signed, tuple(map(float, scale)), tuple(map(int, zp)))
        out = self._new_tensor(out_name, t.shape, "codes", qtype, t.layout)
        self._emit(ir.Quantize, [v.tensor], out, qtype=qtype, rounding="HALF_EVEN",
                   zero_point_after_rounding=zero_point_after_rounding, float32=float32)  # fmt: skip
        self._set(out_name, out, "int")

    def op_QLinearGlobalAveragePool(self, node: onnx.NodeProto) -> None:
        if int(self._attr(node, "channels_last", 0)):
            raise InputError(f"node '{self._label()}': channels_last QLinearGlobalAveragePool is not supported")
        x = self._interpret_input(node, 0)
        t = self.tensors[x]
        self._emit_avgpool(x, (t.shape[2], t.shape[3]), (1, 1), (0, 0, 0, 0), node.output[0] + "_mean")
        self._qlinear_quantize(node.output[0] + "_mean", node.input[3], node.input[4], node.output[0],
                               zero_point_after_rounding=True)  # fmt: skip

    def op_QLinearAveragePool(self, node: onnx.NodeProto) -> None:
        x = self._interpret_input(node, 0)
        kernel, strides, pads = self._pool_attrs(node, avg=True)
        self._emit_avgpool(x, kernel, strides, pads, node.output[0] + "_mean")
        self._qlinear_quantize(node.output[0] + "_mean", node.input[3], node.input[4], node.output[0],
                               zero_point_after_rounding=False)  # fmt: skip

    def op_QLinearConcat(self, node: onnx.NodeProto) -> None:
        y_scale, y_zp = node.input[0], node.input[1]
        vals = []
        for i in range(2, len(node.input), 3):
            vals.append(Value(self._interpret_input(node, i), "real"))
        scale, zp = self._scale_zp(y_scale, y_zp)
        bits, signed = int_dtype_bits(np.asarray(self.consts[y_zp]).dtype)
        qtype = ir.QType(bits, signed, tuple(map(float, scale)), tuple(map(int, zp)))
        axis = int(self._attr(node, "axis", 1))
        pending = PendingConcat(vals, axis, self._label())
        self._resolve_concat(pending, qtype, "HALF_EVEN", node.output[0], "int", zero_point_after_rounding=True)
