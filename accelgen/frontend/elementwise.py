"""Float element-wise ops that the passes fold into requantizers or leave to the host tail."""

from __future__ import annotations

import numpy as np
import onnx

from accelgen import ir
from accelgen.errors import InputError
from accelgen.frontend.values import (
    Value,
)


class ElementwiseHandlers:
    """Handler mixin of the importer (``op_<OpType>`` methods)."""

    # -- float element-wise ops --------------------------------------------------------

    def _binary_const(self, node: onnx.NodeProto) -> tuple[Value, np.ndarray, bool] | None:
        a, b = node.input[0], node.input[1]
        a_const = a in self.consts or a in self.qconsts
        b_const = b in self.consts or b in self.qconsts
        if a_const == b_const:
            return None
        if a_const:
            return self._dynamic(b), self._const_real(a), True
        return self._dynamic(a), self._const_real(b), False

    def op_Add(self, node: onnx.NodeProto) -> None:
        pair = self._binary_const(node)
        if pair is not None:
            v, c, _ = pair
            c = self._per_channel(c, v.tensor, "added constant")
            self._emit_float(ir.Affine, v.tensor, node.output[0], mul=np.ones(1), add=c)
            return
        self._residual_add(node, [self._dynamic(n) for n in node.input[:2]])

    def op_Sub(self, node: onnx.NodeProto) -> None:
        pair = self._binary_const(node)
        if pair is None:
            raise InputError(f"node '{self._label()}': Sub of two data tensors is not supported")
        v, c, const_first = pair
        c = self._per_channel(c, v.tensor, "subtracted constant")
        mul = np.array([-1.0]) if const_first else np.ones(1)
        add = c if const_first else -c
        self._emit_float(ir.Affine, v.tensor, node.output[0], mul=mul, add=add)

    def op_Mul(self, node: onnx.NodeProto) -> None:
        pair = self._binary_const(node)
        if pair is None:
            raise InputError(f"node '{self._label()}': Mul of two data tensors is not supported")
        v, c, _ = pair
        c = self._per_channel(c, v.tensor, "multiplier")
        self._emit_float(ir.Affine, v.tensor, node.output[0], mul=c, add=np.zeros(1))

    def op_Div(self, node: onnx.NodeProto) -> None:
        pair = self._binary_const(node)
        if pair is None or pair[2]:
            raise InputError(f"node '{self._label()}': only division by a constant is supported")
        v, c, _ = pair
        c = self._per_channel(c, v.tensor, "divisor")
        if np.any(c == 0):
            raise InputError(f"node '{self._label()}': division by zero")
        self._emit_float(ir.Affine, v.tensor, node.output[0], mul=1.0 / c, add=np.zeros(1))

    def op_BatchNormalization(self, node: onnx.NodeProto) -> None:
        v = self._dynamic(node.input[0])
        channels = self.tensors[v.tensor].shape[1]
        vals = [np.asarray(self._const_real(n), dtype=np.float64).reshape(-1) for n in node.input[1:5]]
        if any(a.size not in (1, channels) for a in vals):
            raise InputError(f"node '{self._label()}': BatchNorm parameters do not match {channels} channels")
        self._emit_float(ir.BatchNorm, v.tensor, node.output[0], gamma=vals[0], beta=vals[1],
                         mean=vals[2], var=vals[3], epsilon=float(self._attr(node, "epsilon", 1e-5)))  # fmt: skip

    def op_Relu(self, node: onnx.NodeProto) -> None:
        self._emit_float(ir.Relu, self._real_input(node.input[0], "input"), node.output[0])

    def op_Clip(self, node: onnx.NodeProto) -> None:
        v = self._dynamic(node.input[0])
        if v.view == "int" and self.tensors[v.tensor].kind == "codes":
            self._clip_codes(node, v)  # QCDQ: a Clip on codes narrows the quantizer
            return
        lo, hi = self._clip_bounds(node)
        self._emit_float(ir.Clip, self._real_input(node.input[0], "input"), node.output[0], lo=lo, hi=hi)

    def op_Softmax(self, node: onnx.NodeProto) -> None:
        src = self._real_input(node.input[0], "input")
        axis = int(self._attr(node, "axis", -1 if self.opset >= 13 else 1))
        if axis % len(self.tensors[src].shape) != len(self.tensors[src].shape) - 1:
            raise InputError(f"node '{self._label()}': Softmax over axis {axis}; only the last axis is supported")
        self._emit_float(ir.Softmax, src, node.output[0], axis=-1)

    def op_Sigmoid(self, node: onnx.NodeProto) -> None:
        self._emit_float(ir.Sigmoid, self._real_input(node.input[0], "input"), node.output[0])
