"""Constant values during import: plain arrays and quantized constants (weights, biases)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from accelgen.errors import InputError

INT_DTYPES = {
    # ONNX integer element type name -> (bits, signed)
    "uint8": (8, False), "int8": (8, True), "uint4": (4, False), "int4": (4, True),
    "uint2": (2, False), "int2": (2, True), "uint16": (16, False), "int16": (16, True),
    "int32": (32, True), "uint32": (32, False), "int64": (64, True),
}  # fmt: skip


def int_dtype_bits(dtype: np.dtype) -> tuple[int, bool] | None:
    """(bits, signed) of an integer numpy/ml_dtypes dtype, None for anything else."""
    return INT_DTYPES.get(np.dtype(dtype).name)


def to_array(tensor: onnx.TensorProto) -> np.ndarray:
    return numpy_helper.to_array(tensor)


@dataclass(frozen=True, eq=False)
class QConst:
    """A quantized constant: real value = scale * (codes - zero_point).

    ``scale`` and ``zero_point`` are full-shape arrays (broadcast to ``codes.shape``) so
    that layout ops move them together with the codes.
    """

    codes: np.ndarray  # int64
    scale: np.ndarray  # float64, codes.shape
    zero_point: np.ndarray  # int64, codes.shape
    bits: int
    signed: bool
    narrow: bool = False
    bipolar: bool = False
    source: str = ""

    @staticmethod
    def make(codes, scale, zero_point, bits, signed, narrow=False, bipolar=False, source=""):
        codes = np.asarray(codes).astype(np.int64)
        scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), codes.shape).copy()
        zp = np.broadcast_to(np.asarray(zero_point).astype(np.int64), codes.shape).copy()
        return QConst(codes, scale, zp, int(bits), bool(signed), bool(narrow), bool(bipolar), source)

    def real(self) -> np.ndarray:
        return self.scale * (self.codes - self.zero_point)

    def map_layout(self, fn) -> QConst:
        """Apply a layout function (transpose, reshape) to codes, scale and zero point alike."""
        return QConst(
            fn(self.codes), fn(self.scale), fn(self.zero_point),
            self.bits, self.signed, self.narrow, self.bipolar, self.source,
        )  # fmt: skip

    def per_axis(self, name: str, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """Scale and zero point as one value per index of ``axis``.

        InputError when they vary along any other axis (block-wise quantization).
        """
        scale = np.moveaxis(self.scale, axis, 0).reshape(self.codes.shape[axis], -1)
        zp = np.moveaxis(self.zero_point, axis, 0).reshape(self.codes.shape[axis], -1)
        if scale.size and (np.ptp(scale, axis=1).max() > 0 or np.ptp(zp, axis=1).max() > 0):
            raise InputError(
                f"'{name}': quantization parameters vary along more than the output-channel "
                "axis (block-wise quantization is not supported); use per-tensor or "
                "per-channel quantization"
            )
        return scale[:, 0].copy(), zp[:, 0].copy()


def fold_node(node: onnx.NodeProto, inputs: list[np.ndarray | None], opset: int) -> list[np.ndarray]:
    """Evaluate a standard-domain node whose inputs are all constant."""
    vinfo = []
    feeds = {}
    names = []
    for i, (name, value) in enumerate(zip(node.input, inputs)):
        if not name:
            names.append("")
            continue
        local = f"in{i}"
        names.append(local)
        feeds[local] = value
        vinfo.append(
            onnx.helper.make_tensor_value_info(
                local, onnx.helper.np_dtype_to_tensor_dtype(np.asarray(value).dtype), None
            )
        )
    outs = [f"out{i}" for i in range(len(node.output))]
    clone = onnx.helper.make_node(node.op_type, names, outs, domain=node.domain)
    clone.attribute.extend(node.attribute)
    graph = onnx.helper.make_graph(
        [clone], "fold", vinfo, [onnx.helper.make_value_info(o, onnx.TypeProto()) for o in outs]
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    try:
        results = ReferenceEvaluator(model).run(None, feeds)
    except Exception as exc:  # onnx's reference implementation refuses the node's constants
        shapes = ", ".join(str(np.asarray(v).shape) for v in inputs if v is not None)
        raise InputError(
            f"node '{node.name or node.output[0]}' ({node.op_type}) cannot be evaluated on its constant "
            f"inputs of shape(s) {shapes}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        ) from None
    return [np.asarray(r) for r in results]
