"""The integer intermediate representation: typed tensors, frozen op dataclasses, a graph.

Every tensor is one of three kinds:

* ``codes``  integer codes of a quantized activation; its :class:`QType` says what they mean
  (real value = scale * (code - zero_point)).
* ``acc``    a wide integer accumulator (a convolution's sums); its QType carries the
  per-channel scale of one accumulator step and the accumulator width.
* ``float``  a real-valued tensor: the model's float input before its first quantizer, or
  the float tail that the host computes after the last integer layer.

Ops are frozen dataclasses. Float element-wise ops (:class:`Affine`, :class:`Relu`, ...)
read a ``codes`` or ``acc`` tensor as its real value. The passes fuse chains of them into
the producing integer layer as a :class:`FloatRequant`, then turn that into an integer
:class:`Thresholds` or :class:`MultiplyShift` requantizer. After the passes, every op is
either an integer op or marked as running on the host.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelgen.errors import InternalError
from accelgen.runtime.accelerator import HOST_KINDS, is_host

TENSOR_KINDS = ("codes", "acc", "float")

# ---------------------------------------------------------------------------------------
# Quantization type
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QType:
    """What an integer code means: value = scale * (code - zero_point).

    ``scale`` and ``zero_point`` hold one entry (per tensor) or one per channel along
    ``axis``. ``bipolar`` codes take only the values -1 and +1 (one bit in hardware).
    """

    bits: int
    signed: bool
    scale: tuple[float, ...] = (1.0,)
    zero_point: tuple[int, ...] = (0,)
    axis: int | None = None
    narrow: bool = False
    bipolar: bool = False

    def __post_init__(self) -> None:
        if self.bits < 1:
            raise InternalError(f"QType with {self.bits} bits")
        if len(self.scale) != len(self.zero_point) and len(self.zero_point) != 1:
            raise InternalError("QType scale and zero point lengths differ")

    @property
    def qmin(self) -> int:
        if self.bipolar:
            return -1
        if self.signed:
            return -(1 << (self.bits - 1)) + (1 if self.narrow else 0)
        return 0

    @property
    def qmax(self) -> int:
        if self.bipolar:
            return 1
        if self.signed:
            return (1 << (self.bits - 1)) - 1
        return (1 << self.bits) - 1 - (1 if self.narrow else 0)

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1 or len(self.zero_point) > 1

    def zero_point_array(self, channels: int = 1) -> np.ndarray:
        z = np.asarray(self.zero_point, dtype=np.int64)
        return np.broadcast_to(z, (max(channels, z.size),)).copy()

    def describe(self) -> str:
        if self.bipolar:
            kind = "bipolar"
        else:
            kind = f"{'int' if self.signed else 'uint'}{self.bits}"
        return kind + (" per-channel" if self.per_channel else "")

    def with_axis(self, axis: int | None) -> QType:
        return dataclasses.replace(self, axis=axis if self.per_channel else None)


def signed_bits_for(lo: int, hi: int) -> int:
    """Bits of the smallest two's-complement integer holding every value in [lo, hi]."""
    bits = 1
    while lo < -(1 << (bits - 1)) or hi > (1 << (bits - 1)) - 1:
        bits += 1
    return bits


def range_bits(lo: int, hi: int) -> int:
    """Width of the narrowest integer type holding [lo, hi]: unsigned when lo >= 0."""
    return max(1, int(hi).bit_length()) if lo >= 0 else signed_bits_for(lo, hi)


def centred_range(q: QType | None, padded: bool = False) -> tuple[int, int]:
    """The range of ``code - zero_point`` an integer layer computes with, over every
    channel's zero point (a bipolar code is its own value, -1 or +1; no type: 0). Padding
    contributes the zero point, that is 0, so ``padded`` widens the range to include 0.
    The one definition: the passes, the cost models and code generation all use it."""
    if q is None:
        return 0, 0
    if q.bipolar:
        lo, hi = -1, 1
    else:
        zps = [int(z) for z in q.zero_point] or [0]
        lo, hi = q.qmin - max(zps), q.qmax - min(zps)
    return (min(lo, 0), max(hi, 0)) if padded else (lo, hi)


def sum_ranges(matrix: np.ndarray, lo: int, hi: int, partial: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``matrix``, the range of ``row @ x`` for every x with entries in [lo, hi]:
    (sum of min(w*lo, w*hi), sum of max(w*lo, w*hi)). With ``partial`` every term's range
    also includes 0, so the range bounds every partial sum of the row as well (what an
    accumulator must hold whatever order it adds in). Exact integers (Python ints when
    int64 could overflow)."""
    m = np.asarray(matrix).reshape(np.shape(matrix)[0], -1) if np.ndim(matrix) else np.zeros((0, 0))
    big = m.size and int(np.abs(m).max()) * max(abs(int(lo)), abs(int(hi)), 1) * m.shape[1] >= (1 << 62)
    m = m.astype(object) if big else m.astype(np.int64)
    t1, t2 = m * int(lo), m * int(hi)
    small, large = np.minimum(t1, t2), np.maximum(t1, t2)
    if partial:
        small, large = np.minimum(small, 0), np.maximum(large, 0)
    return small.sum(axis=1), large.sum(axis=1)


# ---------------------------------------------------------------------------------------
# Tensors
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tensor:
    """A value flowing between ops. ``shape[0]`` is the batch (None when symbolic)."""

    name: str
    shape: tuple[int | None, ...]
    kind: str
    qtype: QType | None = None
    layout: str = ""  # "NCHW" or "NHWC" for 4-D feature maps, "" otherwise

    @property
    def channels(self) -> int:
        """Channel count: the dim a per-channel QType's axis points at, else the feature dim."""
        if self.qtype is not None and self.qtype.axis is not None:
            return int(self.shape[self.qtype.axis])
        if self.layout == "NHWC":
            return int(self.shape[3])
        if len(self.shape) >= 2:
            return int(self.shape[1])
        return 1

    def elements_per_sample(self) -> int:
        return int(np.prod([d for d in self.shape[1:]], dtype=np.int64))


# ---------------------------------------------------------------------------------------
# Requantizers: how an accumulator becomes the next layer's codes
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FloatStep:
    """One monotone element-wise float operation of a requantization chain.

    ``op`` is one of ``mul``, ``add`` (per-channel ``values``), ``relu``, ``clip``
    (``values`` = [lo, hi]), ``round`` (to an integer with rounding ``mode``), ``batchnorm``
    (``values`` = rows gamma, beta, mean, var, epsilon per channel: ``(x - mean) * gamma /
    sqrt(var + epsilon) + beta``, kept unfolded so that requantization can be exact).
    """

    op: str
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mode: str = ""  # rounding mode of a ``round`` step


@dataclass(frozen=True, eq=False)
class Float32Multiply:
    """onnxruntime's requantization of QLinearConv, QLinearMatMul and QGemm, in float32.

    ``code = clip(round_half_even(f32(acc + bias) * multiplier) + zero_point, lo, hi)``, every
    product rounded to float32, with ``multiplier = f32(f32(x_scale * w_scale) / y_scale)``
    per output channel (MLAS's requantize-output routine). It differs from the exact float
    result only within float32 rounding of a half-way point; a model whose reference is
    onnxruntime's integer kernels gets this arithmetic unless ``--arithmetic exact``.
    """

    bias: np.ndarray  # (C,) or (1,) int64: the layer's int32 bias (0 without one)
    multiplier: np.ndarray  # (C,) or (1,) float32
    lo: int  # the code range (the output type's, or narrower after a Clip on the codes)
    hi: int


@dataclass(frozen=True, eq=False)
class Float32Sum:
    """onnxruntime's com.microsoft QLinearAdd on x86-64 with AVX2 (MLAS's default kernel).

    ``code = clip(rint(fma(a, ratio_a, fma(b, ratio_b, offset))), lo, hi)`` on the raw input
    codes ``a`` and ``b``, in float32, with ``ratio_x = f32(x_scale / y_scale)`` and
    ``offset = f32(y_zp - (f32(ratio_a * a_zp) + f32(ratio_b * b_zp)))``; ``a`` is the ONNX
    node's first operand. ``const`` holds the codes of a constant operand (one per channel)
    and ``const_input`` which operand it is (0: a, 1: b); None when both are data.
    """

    ratio_a: float
    ratio_b: float
    offset: float
    zero_points: tuple[int, int]
    lo: int
    hi: int
    const: np.ndarray | None = None
    const_input: int = 1


@dataclass(frozen=True, eq=False)
class FloatRequant:
    """The float definition of a requantization, before the integer pass.

    ``out = quantize(steps(acc_value))`` where ``acc_value`` is the accumulator's real
    value (accumulator times its scale), ``quantize`` divides by ``divisor`` (default: the
    output scale), adds the zero point, rounds with ``rounding`` and clips to ``out_qtype``;
    with ``zero_point_after_rounding`` it rounds first and adds the zero point after.
    """

    steps: tuple[FloatStep, ...]
    out_qtype: QType
    rounding: str = "HALF_EVEN"
    divisor: float | None = None
    zero_point_after_rounding: bool = False
    #: the reference's float32 arithmetic for the same requantization (QOperator layers)
    float32: Float32Multiply | Float32Sum | None = None


@dataclass(frozen=True, eq=False)
class Thresholds:
    """out = base + step * count(direction * acc >= thresholds[c, :]), per channel c.

    Exact for any monotone function of the accumulator: each threshold is the smallest
    accumulator value that reaches the next output level.
    """

    thresholds: np.ndarray  # (C, L) int64, non-decreasing along L (C == 1: shared)
    base: np.ndarray  # (C,) or (1,) int64
    direction: np.ndarray  # (C,) or (1,) int64, +1 or -1
    step: int = 1  # 2 for bipolar outputs (-1, +1)
    reason: str = ""

    kind = "thresholds"


@dataclass(frozen=True, eq=False)
class MultiplyShift:
    """out = clip(floor((direction * acc * multiplier + offset) / 2**shift), lo, hi).

    Chosen only when it equals the float reference on the whole accumulator range.
    """

    multiplier: np.ndarray  # (C,) int64, > 0
    offset: np.ndarray  # (C,) int64
    shift: int
    lo: np.ndarray  # (C,) int64
    hi: np.ndarray  # (C,) int64
    direction: np.ndarray  # (C,) int64
    reason: str = ""

    kind = "multiply_shift"

    @property
    def multiplier_bits(self) -> int:
        return int(max(int(m) for m in self.multiplier)).bit_length() + 1


Requant = FloatRequant | Thresholds | MultiplyShift


# ---------------------------------------------------------------------------------------
# Ops
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Op:
    """Base of every op: a unique name, input and output tensor names, the ONNX source."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    source: str = ""  # the ONNX node (or nodes) this op came from

    kind = "op"
    #: element-wise float op that passes may fold into a requantizer
    elementwise_float = False

    @property
    def on_host(self) -> bool:
        """Whether the host runs every op of this kind (quantizing the input, layout at the
        boundary, the float ops); the runtime's HOST_KINDS is the one list."""
        return self.kind in HOST_KINDS

    def replace(self, **changes: Any) -> Op:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class Quantize(Op):
    """float -> codes (the host quantizes the model's float input).

    ``zero_point_after_rounding``: ONNX QuantizeLinear and the QLinear* ops compute
    ``round(x / scale) + zero_point``; QONNX Quant computes ``round(x / scale + zero_point)``.
    The two differ on exact ties when the zero point is odd.

    ``float32_quotient``: ONNX QuantizeLinear divides its float32 tensor by the scale in
    float32 (its reference implementation and onnxruntime do); QONNX Quant is defined on the
    real numbers. The float32 quotient can land on a rounding tie the real one is not on.
    """

    qtype: QType = QType(8, True)
    rounding: str = "HALF_EVEN"
    divisor: float | None = None  # divide by this instead of the scale (QONNX Trunc)
    zero_point_after_rounding: bool = False
    float32_quotient: bool = False
    float32: Float32Multiply | Float32Sum | None = None  # onnxruntime's arithmetic (QOperator)
    kind = "Quantize"


@dataclass(frozen=True, eq=False)
class Dequantize(Op):
    """codes or acc -> float (host epilogue)."""

    kind = "Dequantize"


@dataclass(frozen=True, eq=False)
class Conv(Op):
    """2-D convolution of codes with integer weights, accumulating ``code - zero_point``.

    ``weights`` is (OC, IC/groups, KH, KW) holding ``weight_code - weight_zero_point``.
    Padding contributes zero (that is, input code == zero point).
    """

    weights: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1, 1), np.int64))
    w_qtype: QType = QType(8, True)
    groups: int = 1
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    dilations: tuple[int, int] = (1, 1)
    requant: Requant | None = None
    kind = "Conv"


@dataclass(frozen=True, eq=False)
class Dense(Op):
    """Fully connected layer: acc[n, o] = sum_i (x[n, i] - zp) * weights[o, i]."""

    weights: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.int64))
    w_qtype: QType = QType(8, True)
    requant: Requant | None = None
    kind = "Dense"


@dataclass(frozen=True, eq=False)
class TTDense(Op):
    """Fully connected layer whose weight is a tensor-train (TT) matrix, never rebuilt.

    ``W[(i_1..i_d), (j_1..j_d)] = G_1[:, i_1, j_1, :] @ ... @ G_d[:, i_d, j_d, :]`` with
    core ``k`` of shape ``(r_{k-1}, m_k, n_k, r_k)``, ``r_0 = r_d = 1``; input and output
    indices are row-major over the modes (``i_1`` most significant). The layer computes
    ``acc = (x - zp) @ W`` by contracting the input with one core per step, cores taken in
    ``order`` (0-based; every prefix of ``order`` is a contiguous run of cores). After
    step ``t < d - 1`` the intermediate, an integer sum of products of the previous state
    and core ``order[t]``, is requantized by ``mid_requant[t]`` to codes of
    ``mid_qtypes[t]`` (per tensor, zero point 0); the last step's sums are the layer's
    accumulator, which ``requant`` turns into the output exactly as for :class:`Dense`.
    Every intermediate element is the same sum whatever the memory layout, so the
    semantics do not depend on how an implementation orders the state.
    """

    modes_in: tuple[int, ...] = ()
    modes_out: tuple[int, ...] = ()
    ranks: tuple[int, ...] = ()
    order: tuple[int, ...] = ()
    cores: tuple[np.ndarray, ...] = ()  # int64 ``weight_code - weight_zero_point``
    core_qtypes: tuple[QType, ...] = ()  # one per core, per tensor
    mid_qtypes: tuple[QType, ...] = ()  # d - 1 entries, state after step t
    mid_requant: tuple[Requant, ...] = ()  # d - 1 entries, step t's sums -> mid_qtypes[t]
    requant: Requant | None = None
    kind = "TTDense"

    @property
    def in_features(self) -> int:
        return math.prod(self.modes_in)

    @property
    def out_features(self) -> int:
        return math.prod(self.modes_out)

    def step_sizes(self) -> list[tuple[int, int]]:
        """Per step in ``order``: (elements of the state after it, per sample; length of each sum)."""
        return tt_step_sizes(self.modes_in, self.modes_out, self.ranks, self.order)


def tt_step_sizes(modes_in, modes_out, ranks, order) -> list[tuple[int, int]]:
    """Per step of a TT contraction in ``order``: (state elements after it, per sample; sum length).

    After contracting the run of cores [a..b] the state holds the input modes outside the
    run, the output modes inside it and the bond ranks r_a, r_{b+1}; each element sums
    over the mode and the bond(s) the step contracts, so a step costs state x sum MACs.
    """
    m, n, r = modes_in, modes_out, ranks
    run: tuple[int, int] | None = None
    out = []
    for k in order:
        summed = m[k] * (r[k] if run is not None and run[1] == k - 1 else 1)
        summed *= r[k + 1] if run is not None and run[0] == k + 1 else 1
        run = (k, k) if run is None else (min(run[0], k), max(run[1], k))
        a, b = run
        state = math.prod(m[:a]) * math.prod(m[b + 1 :]) * r[a] * math.prod(n[a : b + 1]) * r[b + 1]
        out.append((int(state), int(summed)))
    return out


@dataclass(frozen=True, eq=False)
class MaxPool(Op):
    """Max over windows of codes (exact: dequantization is increasing)."""

    kernel: tuple[int, int] = (2, 2)
    strides: tuple[int, int] = (2, 2)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    kind = "MaxPool"


@dataclass(frozen=True, eq=False)
class AvgPool(Op):
    """Window sums of ``code - zero_point``; the mean's 1/k is part of the requantizer."""

    kernel: tuple[int, int] = (2, 2)
    strides: tuple[int, int] = (2, 2)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    requant: Requant | None = None
    kind = "AvgPool"


@dataclass(frozen=True, eq=False)
class Add(Op):
    """Residual add of two code tensors.

    The integer pass picks integer input multipliers so that
    ``acc = m0 * (a - za) + m1 * (b - zb)`` orders every input pair as the real sum does,
    verified on the whole input domain; ``requant`` then maps ``acc`` to codes.
    """

    input_multipliers: tuple[int, int] = (1, 1)
    requant: Requant | None = None
    kind = "Add"


@dataclass(frozen=True, eq=False)
class Concat(Op):
    """Concatenation of code tensors of one QType along the channel axis."""

    axis: int = 1
    kind = "Concat"


@dataclass(frozen=True, eq=False)
class Requantize(Op):
    """codes -> codes of another QType (element-wise), e.g. to align Concat inputs."""

    requant: Requant | None = None
    kind = "Requantize"


@dataclass(frozen=True, eq=False)
class Reshape(Op):
    """Pure layout: the stream order of elements does not change."""

    shape: tuple[int, ...] = ()  # per-sample shape (batch excluded)
    kind = "Reshape"


@dataclass(frozen=True, eq=False)
class Resize(Op):
    """Nearest-neighbour upsampling of codes by whole factors (fh, fw) on H and W: each
    pixel becomes an fh x fw block of copies; channels, codes and QType are unchanged."""

    factors: tuple[int, int] = (1, 1)
    kind = "Resize"


@dataclass(frozen=True, eq=False)
class Transpose(Op):
    """A layout change at the model boundary (host side)."""

    perm: tuple[int, ...] = ()
    kind = "Transpose"


@dataclass(frozen=True, eq=False)
class Affine(Op):
    """Float ``x * mul + add`` per channel (bias, Mul, folded BatchNorm).

    ``batchnorm``: for a folded BatchNorm, its constants (gamma, beta, mean, var, epsilon
    rows per channel), of which ``mul`` and ``add`` are float64 roundings; a requantizer
    fused from it uses them (see :mod:`accelgen.passes.requant`).
    """

    mul: np.ndarray = field(default_factory=lambda: np.ones(1))
    add: np.ndarray = field(default_factory=lambda: np.zeros(1))
    batchnorm: np.ndarray | None = None
    kind = "Affine"
    elementwise_float = True


@dataclass(frozen=True, eq=False)
class BatchNorm(Op):
    """Float batch normalisation (folded into :class:`Affine` by a pass)."""

    gamma: np.ndarray = field(default_factory=lambda: np.ones(1))
    beta: np.ndarray = field(default_factory=lambda: np.zeros(1))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(1))
    var: np.ndarray = field(default_factory=lambda: np.ones(1))
    epsilon: float = 1e-5
    kind = "BatchNorm"
    elementwise_float = True


@dataclass(frozen=True, eq=False)
class Relu(Op):
    kind = "Relu"
    elementwise_float = True


@dataclass(frozen=True, eq=False)
class Clip(Op):
    lo: float = -math.inf
    hi: float = math.inf
    kind = "Clip"
    elementwise_float = True


@dataclass(frozen=True, eq=False)
class Round(Op):
    """Float rounding to an integer value (inside QONNX Trunc)."""

    mode: str = "HALF_EVEN"
    kind = "Round"
    elementwise_float = True


@dataclass(frozen=True, eq=False)
class Softmax(Op):
    axis: int = -1
    kind = "Softmax"


@dataclass(frozen=True, eq=False)
class Sigmoid(Op):
    kind = "Sigmoid"


OP_TYPES: dict[str, type[Op]] = {
    cls.kind: cls
    for cls in (
        Quantize, Dequantize, Conv, Dense, TTDense, MaxPool, AvgPool, Add, Concat, Requantize,
        Reshape, Transpose, Affine, BatchNorm, Relu, Clip, Round, Softmax, Sigmoid, Resize,
    )
}  # fmt: skip

#: integer layers whose accumulator a requantizer turns into codes
REQUANT_OPS = (Conv, Dense, TTDense, AvgPool, Add, Requantize)


def is_host_op(op: Op, tensors: dict[str, Tensor]) -> bool:
    """True for ops the host runs: quantizing the input, layout at the boundary, and
    everything that produces a float tensor (the float tail). The runtime's definition
    (:func:`accelgen.runtime.accelerator.is_host`), so compiler and runtime split alike."""
    return is_host(op, tensors)


# ---------------------------------------------------------------------------------------
# Graph
# ---------------------------------------------------------------------------------------


@dataclass
class Graph:
    """Ops in topological order over named tensors. Passes build new graphs."""

    name: str
    tensors: dict[str, Tensor]
    ops: list[Op]
    inputs: list[str]
    outputs: list[str]
    # ONNX-side dtype of each graph input/output ("float32", "uint8", ...)
    io_dtypes: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def producer(self, tensor: str) -> Op | None:
        for op in self.ops:
            if tensor in op.outputs:
                return op
        return None

    def consumers(self, tensor: str) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]

    def op(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(name)

    def integer_ops(self) -> Iterator[Op]:
        return (op for op in self.ops if not is_host_op(op, self.tensors))

    def copy(self, **changes: Any) -> Graph:
        base = dict(
            name=self.name,
            tensors=dict(self.tensors),
            ops=list(self.ops),
            inputs=list(self.inputs),
            outputs=list(self.outputs),
            io_dtypes=dict(self.io_dtypes),
            meta=dict(self.meta),
        )
        base.update(changes)
        return Graph(**base)

    # -- serialisation ---------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The whole graph as JSON-compatible data (arrays as nested lists)."""
        return self._serialise(None)

    def to_program(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The graph as the runtime's program: JSON data plus the arrays it references.

        Arrays appear in the JSON as ``{"$array": key}`` with ``key`` into the second
        result (saved as .npz); :mod:`accelgen.runtime.program` loads the pair back.
        """
        arrays: dict[str, np.ndarray] = {}
        data = self._serialise(arrays)
        data["format"] = PROGRAM_FORMAT
        data["version"] = PROGRAM_VERSION
        return data, arrays

    def _serialise(self, arrays: dict[str, np.ndarray] | None) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "io_dtypes": self.io_dtypes,
            "tensors": {n: _jsonable(t, arrays) for n, t in self.tensors.items()},
            "ops": [{"type": op.kind, **_jsonable(op, arrays)} for op in self.ops],
            "meta": _jsonable(self.meta, arrays),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=False)


PROGRAM_FORMAT = "accelgen-program"
PROGRAM_VERSION = 1


def _jsonable(value: Any, arrays: dict[str, np.ndarray] | None = None) -> Any:
    """JSON-compatible form; with ``arrays``, numpy arrays are stored there by reference."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _jsonable(getattr(value, f.name), arrays) for f in dataclasses.fields(value)}
        if isinstance(value, (Thresholds, MultiplyShift)):
            out["kind"] = value.kind
        return out
    if isinstance(value, np.ndarray):
        if arrays is None:
            return value.tolist()
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"$array": key}
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value) and arrays is None:
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, arrays) for v in value]
    return value


# ---------------------------------------------------------------------------------------
# Verification: the invariants every pass must keep
# ---------------------------------------------------------------------------------------


def verify(graph: Graph, *, lowered: bool = False) -> None:
    """Check the graph's invariants; raise InternalError naming the op that breaks one.

    Always: every op input is produced before it is used; tensor names are unique;
    codes/acc tensors carry a QType; codes fit 1..8 bits; weights are integers within
    their QType. ``lowered``: every requantizer is integer and no float op remains
    between integer ops.
    """
    known = set(graph.inputs)
    names: set[str] = set()
    for name in graph.inputs:
        if name not in graph.tensors:
            raise InternalError(f"graph input '{name}' has no tensor")
    for op in graph.ops:
        if op.name in names:
            raise InternalError(f"duplicate op name '{op.name}'")
        names.add(op.name)
        for tin in op.inputs:
            if tin not in known:
                raise InternalError(f"op '{op.name}' reads '{tin}' before it is produced")
        for tout in op.outputs:
            if tout in known:
                raise InternalError(f"tensor '{tout}' produced twice (op '{op.name}')")
            if tout not in graph.tensors:
                raise InternalError(f"op '{op.name}' output '{tout}' has no tensor")
            known.add(tout)
        _verify_op(graph, op, lowered)
    for name in graph.outputs:
        if name not in known:
            raise InternalError(f"graph output '{name}' is never produced")
    for t in graph.tensors.values():
        if t.kind not in TENSOR_KINDS:
            raise InternalError(f"tensor '{t.name}' has unknown kind '{t.kind}'")
        if t.kind in ("codes", "acc") and t.qtype is None:
            raise InternalError(f"{t.kind} tensor '{t.name}' has no QType")
        if t.kind == "codes" and t.qtype is not None and t.qtype.bits > 8 and t.name in known:
            # wide codes are allowed only where the model itself exposes integer I/O
            if t.name not in graph.inputs and t.name not in graph.outputs:
                raise InternalError(f"codes tensor '{t.name}' is {t.qtype.bits} bits wide")


def _verify_op(graph: Graph, op: Op, lowered: bool) -> None:
    tensors = graph.tensors
    ins = [tensors[t] for t in op.inputs]
    out = tensors[op.outputs[0]]
    if isinstance(op, (Conv, Dense)):
        if ins[0].kind != "codes":
            raise InternalError(f"{op.kind} '{op.name}' input is not codes")
        w = op.weights
        if w.dtype.kind not in "iu":
            raise InternalError(f"{op.kind} '{op.name}' weights are not integers")
        if isinstance(op, Conv):
            if w.ndim != 4:
                raise InternalError(f"Conv '{op.name}' weights are not 4-D")
            cin = ins[0].shape[3] if ins[0].layout == "NHWC" else ins[0].shape[1]
            if cin != w.shape[1] * op.groups:
                raise InternalError(f"Conv '{op.name}' input channels {cin} != weights")
        else:
            if w.ndim != 2 or ins[0].shape[-1] != w.shape[1]:
                raise InternalError(f"Dense '{op.name}' weights {w.shape} vs input {ins[0].shape}")
    if isinstance(op, TTDense):
        _verify_tt(op, ins[0], lowered)
    if isinstance(op, REQUANT_OPS):
        rq = op.requant
        want = "codes" if rq is not None else "acc"
        if out.kind != want:
            raise InternalError(f"{op.kind} '{op.name}' output kind {out.kind}, expected {want}")
        if lowered and isinstance(rq, FloatRequant):
            raise InternalError(f"{op.kind} '{op.name}' still has a float requantizer")
        if isinstance(rq, Thresholds) and np.any(np.diff(rq.thresholds, axis=1) < 0):
            raise InternalError(f"{op.kind} '{op.name}' thresholds are not sorted")
    if isinstance(op, (MaxPool, Concat)) and any(t.kind != "codes" for t in ins):
        raise InternalError(f"{op.kind} '{op.name}' input is not codes")
    if isinstance(op, Resize):
        _verify_resize(op, ins[0], out)
    if isinstance(op, Concat) and len({_qkey(t.qtype) for t in ins}) != 1:
        raise InternalError(f"Concat '{op.name}' inputs have different QTypes")
    if lowered and op.elementwise_float and not is_host_op(op, tensors):
        raise InternalError(f"float op '{op.name}' left between integer layers")


def _verify_resize(op: Resize, x: Tensor, out: Tensor) -> None:
    """Codes in, the same QType out, H and W multiplied by whole factors >= 1."""
    fh, fw = op.factors
    hw = (1, 2) if x.layout == "NHWC" else (2, 3)
    want = list(x.shape)
    want[hw[0]], want[hw[1]] = int(x.shape[hw[0]]) * fh, int(x.shape[hw[1]]) * fw
    if x.kind != "codes" or out.qtype != x.qtype or min(fh, fw) < 1 or list(out.shape) != want:
        raise InternalError(f"Resize '{op.name}': {x.kind} {x.shape} x {op.factors} -> {out.kind} {out.shape}")


def is_contiguous_order(order: tuple[int, ...], d: int) -> bool:
    """Whether ``order`` is a permutation of 0..d-1 whose every prefix is a contiguous run."""
    if sorted(order) != list(range(d)):
        return False
    return all(max(order[: t + 1]) - min(order[: t + 1]) == t for t in range(d))


def _verify_tt(op: TTDense, x: Tensor, lowered: bool) -> None:
    """The TT layer's invariants: modes, ranks and cores agree; the order is legal."""
    d = len(op.modes_in)
    where = f"TTDense '{op.name}'"
    if x.kind != "codes":
        raise InternalError(f"{where} input is not codes")
    if d < 1 or len(op.modes_out) != d or len(op.ranks) != d + 1 or len(op.cores) != d:
        raise InternalError(
            f"{where}: {d} input modes, {len(op.modes_out)} output modes, {len(op.ranks)} ranks and "
            f"{len(op.cores)} cores; need d, d, d + 1 and d"
        )
    if min((*op.modes_in, *op.modes_out, *op.ranks)) < 1:
        raise InternalError(f"{where}: a mode or rank is < 1 (modes {op.modes_in} x {op.modes_out}, ranks {op.ranks})")
    if op.ranks[0] != 1 or op.ranks[-1] != 1:
        raise InternalError(f"{where}: ranks {op.ranks} must start and end with 1")
    if x.shape[-1] != op.in_features or len(x.shape) != 2:
        raise InternalError(f"{where}: input {x.shape} vs modes {op.modes_in} ({op.in_features} features)")
    for k, core in enumerate(op.cores):
        want = (op.ranks[k], op.modes_in[k], op.modes_out[k], op.ranks[k + 1])
        if tuple(core.shape) != want:
            raise InternalError(f"{where}: core {k} has shape {tuple(core.shape)}, expected {want}")
        if core.dtype.kind not in "iu":
            raise InternalError(f"{where}: core {k} is not integer")
    if not is_contiguous_order(tuple(op.order), d):
        raise InternalError(f"{where}: order {op.order} is not a permutation whose prefixes are contiguous runs")
    if len(op.core_qtypes) != d or any(q.per_channel for q in op.core_qtypes):
        raise InternalError(f"{where}: needs one per-tensor QType per core")
    for k, (core, q) in enumerate(zip(op.cores, op.core_qtypes)):
        zp = 0 if q.bipolar else q.zero_point[0]
        if core.size and (core.min() < q.qmin - zp or core.max() > q.qmax - zp):
            raise InternalError(f"{where}: core {k} holds values outside its {q.describe()} type")
    if len(op.mid_qtypes) != d - 1 or len(op.mid_requant) != d - 1:
        raise InternalError(
            f"{where}: {len(op.mid_qtypes)} intermediate QTypes and {len(op.mid_requant)} requantizers for "
            f"{d} cores; need {d - 1} of each"
        )
    for t, (q, rq) in enumerate(zip(op.mid_qtypes, op.mid_requant)):
        if q.per_channel or q.zero_point != (0,) or q.bits > 8:
            raise InternalError(f"{where}: intermediate {t} must be per tensor, zero point 0, at most 8 bits")
        if rq is None or (lowered and isinstance(rq, FloatRequant)):
            raise InternalError(f"{where}: intermediate requantizer {t} is {'missing' if rq is None else 'float'}")


def _qkey(q: QType | None) -> tuple:
    if q is None:
        return ()
    return (q.bits, q.signed, q.scale, q.zero_point, q.narrow, q.bipolar)
