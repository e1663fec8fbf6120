"""ONNX ``Resize`` (opsets 10-19) as nearest-neighbour upsampling of codes by whole factors.

Accepted: mode ``nearest`` on a 4-D (N, C, H, W) tensor of codes, N and C unscaled, H and
W multiplied by whole factors >= 1 (given as ``scales`` or ``sizes``, with or without
``axes``), under a ``coordinate_transformation_mode`` / ``nearest_mode`` pair that makes
every output pixel a copy of input pixel ``(y // fh, x // fw)``. The pair is checked by
evaluating the ONNX coordinate formula exactly on each axis, so e.g. ``asymmetric`` +
``floor`` (PyTorch's ``nearest``) and ``half_pixel`` + ``round_prefer_floor`` (the
default) pass at any factor, ``align_corners`` + rounding at factor 2 and ``floor``
after ``half_pixel`` never. Copying codes needs no requantization: the
output keeps the input's QType, in QONNX (Quant -> Resize), QDQ (DQ -> Resize -> Q) and
QOperator (Resize on the uint8 / int8 codes) models alike.

``resize(imp, node)`` is the handler, registered for ``Resize``; ``imp`` is the import
context (:class:`accelgen.frontend.base.ImportContext`).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import onnx

from accelgen import ir
from accelgen.errors import InputError
from accelgen.frontend.base import ImportContext
from accelgen.frontend.registry import handler

SUPPORTED = (
    "accelgen builds nearest-neighbour upsampling by whole factors on H and W of a quantized (N, C, H, W) "
    "tensor: mode 'nearest', scales (1, 1, fh, fw) or the matching sizes, and a "
    "coordinate_transformation_mode / nearest_mode that copies each pixel (asymmetric + floor, "
    "half_pixel / pytorch_half_pixel / half_pixel_symmetric + round_prefer_floor or round_prefer_ceil, ...)"
)
#: nearest_mode -> rounding of an exact source coordinate (ties go the preferred way)
ROUNDING = {
    "round_prefer_floor": lambda v: math.ceil(v - Fraction(1, 2)),
    "round_prefer_ceil": lambda v: math.floor(v + Fraction(1, 2)),
    "floor": math.floor,
    "ceil": math.ceil,
}
#: coordinate_transformation_mode values whose formula is evaluated (tf_crop_and_resize reads a roi)
TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
              "tf_half_pixel_for_nn")  # fmt: skip
#: stands for the batch when checking the coordinate map on N (any batch >= 2 maps alike)
BATCH_PROBE = 2


@handler("Resize")
def resize(imp: ImportContext, node: onnx.NodeProto) -> None:
    """The handler: one :class:`ir.Resize` (nothing for factors 1 x 1), codes in, same codes out."""
    where = f"node '{imp.label()}' (Resize)"
    v = imp.dynamic(node.input[0])
    t = imp.tensors[v.tensor]
    if t.kind != "codes" or v.tensor in imp.uninterpreted:
        what = {"float": "a float tensor", "acc": "an unquantized accumulator"}.get(t.kind, "codes without a scale")
        raise InputError(f"{where}: its input '{node.input[0]}' is {what}; put a quantizer (Quant / QuantizeLinear) "
                         f"in front of the Resize. {SUPPORTED}")  # fmt: skip
    if len(t.shape) != 4 or t.layout != "NCHW":
        raise InputError(f"{where}: input of shape {t.shape} is not a 4-D (N, C, H, W) feature map. {SUPPORTED}")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    mode = _text(attrs.get("mode", "nearest"))
    if mode != "nearest":
        raise InputError(f"{where}: mode '{mode}' interpolates between pixels. {SUPPORTED}")
    scales = _scales(imp, node, t, attrs, where)
    _check_copies(imp, t, scales, attrs, where)
    fh, fw = int(scales[2]), int(scales[3])
    if (fh, fw) == (1, 1):
        imp.values[node.output[0]] = v
        return
    n, c, h, w = t.shape
    out = imp.new_tensor(node.output[0], (n, c, h * fh, w * fw), "codes", t.qtype, t.layout)
    imp.emit(ir.Resize, [v.tensor], out, factors=(fh, fw))
    imp.set(node.output[0], out, v.view)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _const(imp, node: onnx.NodeProto, index: int) -> np.ndarray | None:
    """Input ``index`` as a flat constant; None when absent or empty."""
    if len(node.input) <= index or not node.input[index]:
        return None
    arr = np.asarray(imp.const_real(node.input[index])).reshape(-1)
    return arr if arr.size else None


def _scales(imp, node: onnx.NodeProto, t: ir.Tensor, attrs: dict, where: str) -> list[Fraction]:
    """One exact scale per axis (N, C, H, W), from ``scales`` or ``sizes`` (and ``axes``); N, C must be 1."""
    given = _const(imp, node, 1 if imp.opset < 11 else 2)
    sizes = None if imp.opset < 11 else _const(imp, node, 3)
    if (given is None) == (sizes is None):
        raise InputError(f"{where}: give exactly one of the inputs 'scales' and 'sizes', as constants. {SUPPORTED}")
    axes = [int(a) % 4 for a in attrs.get("axes", range(4))]
    values = given if sizes is None else sizes
    if len(values) != len(axes):
        raise InputError(f"{where}: {len(values)} {'scales' if sizes is None else 'sizes'} for {len(axes)} axes")
    scale = [Fraction(1)] * 4
    if sizes is None:
        for a, s in zip(axes, given):
            scale[a] = Fraction(float(s))
    else:
        dims = [_batch(imp, where) if a == 0 else int(t.shape[a]) for a in axes]
        ratios = [Fraction(int(o), d) for o, d in zip(sizes, dims)]
        policy = _text(attrs.get("keep_aspect_ratio_policy", "stretch"))
        if policy in ("not_larger", "not_smaller"):  # one scale for every listed axis
            ratios = [min(ratios) if policy == "not_larger" else max(ratios)] * len(ratios)
        for a, r in zip(axes, ratios):
            scale[a] = r
    names = "NCHW"
    for a in (0, 1):
        if scale[a] != 1:
            raise InputError(f"{where}: scales the {'batch' if a == 0 else 'channel'} axis {names[a]} by "
                             f"{float(scale[a]):.9g}; only H and W may be resized. {SUPPORTED}")  # fmt: skip
    for a in (2, 3):
        if scale[a].denominator != 1 or scale[a] < 1:
            raise InputError(f"{where}: factor {float(scale[a]):.9g} on axis {names[a]} is not a whole number >= 1 "
                             f"(input {names[a]} = {t.shape[a]}). {SUPPORTED}")  # fmt: skip
    return scale


def _batch(imp, where: str) -> int:
    """The model's fixed batch size, which ``sizes`` must repeat (refused when it is symbolic)."""
    fixed = {int(d.dim_value) for vi in imp.model.graph.input if vi.name not in imp.consts
             for d in vi.type.tensor_type.shape.dim[:1] if d.HasField("dim_value") and d.dim_value > 0}  # fmt: skip
    if len(fixed) != 1:
        raise InputError(f"{where}: 'sizes' fixes the batch dimension but the model's batch is not one fixed size; "
                         "give 'scales' (1, 1, fh, fw), or 'sizes' of H and W only with axes = [2, 3] (opset 18)")  # fmt: skip
    return fixed.pop()


def _check_copies(imp, t: ir.Tensor, scale: list[Fraction], attrs: dict, where: str) -> None:
    """Every axis must map output index i to input index i // factor under the node's formulas."""
    if imp.opset < 11:  # Resize-10: x / scale, truncated (onnxruntime's nearest for opset 10)
        transform, nearest = "asymmetric", "floor"
    else:
        transform = _text(attrs.get("coordinate_transformation_mode", "half_pixel"))
        nearest = _text(attrs.get("nearest_mode", "round_prefer_floor"))
    if transform not in TRANSFORMS or nearest not in ROUNDING:
        raise InputError(f"{where}: coordinate_transformation_mode '{transform}' with nearest_mode '{nearest}' "
                         f"is not supported. {SUPPORTED}")  # fmt: skip
    for a, s in enumerate(scale):
        length = BATCH_PROBE if a == 0 else int(t.shape[a])
        for i in range(length * int(s)):
            src = _source_index(transform, ROUNDING[nearest], i, s, length)
            if src != i // int(s):
                raise InputError(
                    f"{where}: coordinate_transformation_mode '{transform}' with nearest_mode '{nearest}' maps "
                    f"output {'NCHW'[a]} = {i} to input {src} instead of repeating each pixel "
                    f"(input {i // int(s)}). {SUPPORTED}"
                )


def _source_index(transform: str, rounding, i: int, s: Fraction, length: int) -> int:
    """The input index ONNX Resize reads for output index ``i`` (exact), clamped as onnxruntime does."""
    out = length * s
    if transform in ("half_pixel", "half_pixel_symmetric"):  # symmetric == half_pixel when out = length * s
        x = (i + Fraction(1, 2)) / s - Fraction(1, 2)
    elif transform == "pytorch_half_pixel":
        x = (i + Fraction(1, 2)) / s - Fraction(1, 2) if out > 1 else Fraction(0)
    elif transform == "align_corners":
        x = Fraction(0) if out == 1 else Fraction(i * (length - 1)) / (out - 1)
    elif transform == "asymmetric":
        x = i / s
    else:  # tf_half_pixel_for_nn
        x = (i + Fraction(1, 2)) / s
    return min(max(rounding(x), 0), length - 1)
