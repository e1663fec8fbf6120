"""Pass-through and pure-layout ops: Identity, Dropout, Cast, Flatten, Reshape, (Un)Squeeze, Transpose."""

from __future__ import annotations

import numpy as np
import onnx

from accelgen import ir
from accelgen.errors import InputError


class LayoutHandlers:
    """Handler mixin of the importer (``op_<OpType>`` methods)."""

    # -- pass-through and layout -------------------------------------------------------

    def op_Constant(self, node: onnx.NodeProto) -> None:  # evaluated in _import_node
        raise AssertionError("unreachable")

    def op_Identity(self, node: onnx.NodeProto) -> None:
        self.values[node.output[0]] = self.values[node.input[0]]

    op_Dropout = op_Identity

    def op_Cast(self, node: onnx.NodeProto) -> None:
        v = self._dynamic(node.input[0])
        to = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(self._attr(node, "to")))
        t = self.tensors[v.tensor]
        if to.kind == "f":
            if v.view == "int" and t.kind == "codes" and v.tensor in self.uninterpreted:
                raise InputError(f"node '{self._label()}': Cast of integer input without a scale")
            if v.view == "int" and t.kind == "codes" and any(z != 0 for z in t.qtype.zero_point):
                raise InputError(f"node '{self._label()}': Cast of codes with a zero point is not supported")
            if v.view == "int" and t.kind == "codes" and any(s != 1.0 for s in t.qtype.scale):
                raise InputError(f"node '{self._label()}': Cast of scaled codes to float is not supported")
            self._set(node.output[0], v.tensor, "real")
        else:
            raise InputError(f"node '{self._label()}': Cast to {to.name} inside the network is not supported")

    def _reshape(self, node: onnx.NodeProto, new_sample_shape: tuple[int, ...]) -> None:
        v = self._dynamic(node.input[0])
        t = self.tensors[v.tensor]
        if int(np.prod(new_sample_shape)) != t.elements_per_sample():
            raise InputError(
                f"node '{self._label()}': reshape of {t.shape[1:]} to {new_sample_shape} "
                "changes the number of elements per sample"
            )
        if tuple(new_sample_shape) == tuple(t.shape[1:]):
            self.values[node.output[0]] = v
            return
        qtype = t.qtype
        if qtype is not None and qtype.per_channel and t.kind == "codes":
            raise InputError(f"node '{self._label()}': reshaping a per-channel quantized tensor is not supported")
        if qtype is not None and qtype.per_channel:
            qtype = qtype.with_axis(1)
            if len(new_sample_shape) < 1:
                raise InputError(f"node '{self._label()}': reshape to a scalar")
        shape = (None, *new_sample_shape)
        out = self._new_tensor(node.output[0], shape, t.kind, qtype, "NCHW" if len(shape) == 4 else "")
        self._emit(ir.Reshape, [v.tensor], out, shape=tuple(int(d) for d in new_sample_shape))
        self._set(node.output[0], out, v.view)

    def op_Flatten(self, node: onnx.NodeProto) -> None:
        t = self.tensors[self._dynamic(node.input[0]).tensor]
        axis = int(self._attr(node, "axis", 1))
        if axis % len(t.shape) != 1:
            raise InputError(f"node '{self._label()}': Flatten with axis {axis} would mix the batch; use axis=1")
        self._reshape(node, (t.elements_per_sample(),))

    def op_Reshape(self, node: onnx.NodeProto) -> None:
        t = self.tensors[self._dynamic(node.input[0]).tensor]
        target = [int(d) for d in np.asarray(self._const_real(node.input[1])).reshape(-1)]
        sample = list(t.shape[1:])
        if not target:
            raise InputError(f"node '{self._label()}': reshape to a scalar")
        # the first target dim is the batch: -1, 0 (copy) or the exporter's fixed batch size
        rest = target[1:]
        for i, d in enumerate(rest):
            if d == 0:
                rest[i] = sample[i]
        if rest.count(-1) > 1 or (target[0] == -1 and -1 in rest):
            raise InputError(f"node '{self._label()}': reshape target {target} is ambiguous per sample")
        if -1 in rest:
            known = int(np.prod([d for d in rest if d != -1]))
            rest[rest.index(-1)] = t.elements_per_sample() // max(known, 1)
        self._reshape(node, tuple(rest))

    def op_Squeeze(self, node: onnx.NodeProto) -> None:
        t = self.tensors[self._dynamic(node.input[0]).tensor]
        axes = self._attr(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(a) for a in np.asarray(self._const_real(node.input[1])).reshape(-1)]
        nd = len(t.shape)
        axes = [a % nd for a in axes] if axes else [i for i, d in enumerate(t.shape) if d == 1]
        if 0 in axes:
            raise InputError(f"node '{self._label()}': Squeeze of the batch dimension")
        self._reshape(node, tuple(d for i, d in enumerate(t.shape) if i not in axes and i > 0))

    def op_Unsqueeze(self, node: onnx.NodeProto) -> None:
        t = self.tensors[self._dynamic(node.input[0]).tensor]
        axes = self._attr(node, "axes")
        if axes is None:
            axes = [int(a) for a in np.asarray(self._const_real(node.input[1])).reshape(-1)]
        nd = len(t.shape) + len(axes)
        axes = sorted(a % nd for a in axes)
        if 0 in axes:
            raise InputError(f"node '{self._label()}': Unsqueeze in front of the batch dimension")
        shape = list(t.shape)
        for a in axes:
            shape.insert(a, 1)
        self._reshape(node, tuple(shape[1:]))

    def op_Transpose(self, node: onnx.NodeProto) -> None:
        t = self.tensors[self._dynamic(node.input[0]).tensor]
        perm = list(self._attr(node, "perm", list(reversed(range(len(t.shape))))))
        if perm[0] != 0:
            raise InputError(f"node '{self._label()}': Transpose that moves the batch dimension is not supported")
        moved = [p for p in perm if t.shape[p] != 1]
        if moved != sorted(moved):
            raise InputError(
                f"node '{self._label()}': Transpose with perm {perm} reorders data; accelgen "
                "supports only layout-preserving transposes (that move size-1 dimensions)"
            )
        self._reshape(node, tuple(t.shape[p] for p in perm[1:]))
