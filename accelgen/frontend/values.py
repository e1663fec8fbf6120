"""What the importer tracks per ONNX tensor, and the limits it enforces."""

from __future__ import annotations

from dataclasses import dataclass

from accelgen import ir

MAX_BITS = 8
FLOAT_INPUT_DTYPES = ("float16", "float32", "float64")
LAYOUT_OPS = {"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"}
#: ops whose every input may be constant; they are evaluated at import time
FOLDABLE = LAYOUT_OPS | {
    "Shape", "Gather", "Concat", "Cast", "Mul", "Div", "Add", "Sub", "Constant", "Slice",
    "ConstantOfShape", "Sqrt", "Neg", "Pow", "Floor", "Ceil", "Round", "Clip", "Equal",
    "Where", "Expand", "Range",
}  # fmt: skip


@dataclass(frozen=True)
class Value:
    """What one ONNX tensor is in the IR: tensor ``tensor`` read as ``view``."""

    tensor: str
    view: str  # "real": the ONNX tensor holds real values; "int": it holds the codes


@dataclass
class PendingConcat:
    """A Concat of code tensors with different QTypes: resolved by the quantizer after it."""

    values: list[Value]
    axis: int
    node: str


def int_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    q = ir.QType(bits, signed, narrow=narrow)
    return q.qmin, q.qmax
