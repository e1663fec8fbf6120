"""The integer interpreter: what the hardware computes, element for element.

``run(graph, inputs)`` evaluates a lowered graph: the compiler's IR graph, or the same
graph loaded from the JSON program in a build's driver directory (:mod:`.program`). Ops
are told apart by ``op.kind``. Integer convolutions and matrix products run over
``code - zero_point``; requantizers are integer (thresholds or multiply-shift); pools,
residual adds and concatenations are exact. The host's quantizer rounds x / scale as the
model's dialect defines it (see ``_quantize``); the float tail computes in float32 as
onnxruntime and the qonnx executor do.

For speed, integer arithmetic runs in float BLAS and float ufuncs wherever a bound proves
it exact (every integer involved below 2**24 for float32, 2**53 for float64; bounds from
the weights and the code ranges, computed once per op), and integer tensors are held as
float32 codes between the ops that compute in float; beyond the bounds, int64 or Python
integers. The results are the integer formulas' either way.

Part of the standalone runtime: numpy only, Python >= 3.8, no import from the compiler.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from .numeric import (
    SCRATCH,
    PreparedMultiplyShift,
    _bounds,
    _codes_dtype,
    _compact,
    _floor_clip,
    _in_blocks,
    _per_channel,
    _Tiled,
    _widen,
    apply_requant,
    prepare_requant,
    qrange,
    round_mode,
    to_codes,
)

FLOAT64_EXACT = 1 << 53
FLOAT32_EXACT = 1 << 24
SMALL_INT_TYPES = ("int4", "uint4", "int2", "uint2")
#: the longest dot product whose multiply-shift is folded into float64 weights: beyond, the
#: float64 products cost more than the separate multiply they save (measured: a 3x3 conv of
#: one input channel gains 15%, a 3x3 conv of 16 channels runs 2.7x slower)
FUSE_MAX_K = 9
#: the most input pixels per image, per output pixel of a stride, for which a depthwise
#: convolution runs as one matrix product per channel (see ``_depthwise_matrices``): its
#: products per output grow with the input's pixels, the taps' passes with the kernel only
#: (measured on 360 images of 32 channels, 3x3, matrices against taps: 8x8 3.2 / 3.6 ms and
#: 11x11 9.4 / 8.0 ms at stride 1; 8x8 0.8 / 1.7 ms, 11x11 3.8 / 5.7 ms and 16x16 10.4 /
#: 9.9 ms at stride 2)
DEPTHWISE_MATRIX_MAX_PIXELS = 64


class InputValidationError(ValueError):
    """The caller's input does not match what the model expects."""


class OpFailure(RuntimeError):
    """Evaluating an op failed: a bug, or a graph from a newer compiler. Names the op."""


def run(graph, inputs, keep: bool = False) -> dict:
    """Evaluate ``graph`` on a batch: {output name: array} (every tensor if ``keep``).

    ``inputs`` maps each graph input name to an array whose first axis is the batch; a
    bare array is accepted for single-input graphs. Arrays use the model's own ONNX
    layout and dtype.
    """
    env = input_env(graph, inputs)
    if keep:
        evaluate_ops(graph, graph.ops, env)
        return env
    evaluate_ops(graph, graph.ops, env, _arena(graph))
    return {name: to_output(graph, name, env[name]) for name in graph.outputs}  # copies


_ARENAS = threading.local()


def _arena(graph) -> tuple:
    """(graph's arena, the tensors whose outputs may live in it): the buffers of the
    intermediate tensors, reused from one run of the graph to the next in this thread.

    Large arrays freed and allocated again are returned to the system and faulted back in
    page by page (measured: a third of a small CNN's batch time); an intermediate's value
    never leaves a run (the outputs are copied by ``to_output``; ``keep`` runs use no arena),
    so its buffer can serve the next run. Kept while the graph lives.
    """
    arenas = getattr(_ARENAS, "by_graph", None)
    if arenas is None:
        arenas = _ARENAS.by_graph = {}
    key = id(graph)
    entry = arenas.get(key)
    if entry is None or entry[0]() is not graph:
        inner = frozenset(op.outputs[0] for op in graph.ops) - set(graph.outputs)
        try:
            ref = weakref.ref(graph, lambda _ref, key=key, arenas=arenas: arenas.pop(key, None))
        except TypeError:  # not weak-referenceable: no arena
            return None
        entry = arenas[key] = (ref, {}, inner)
    return entry[1], entry[2]


def input_env(graph, inputs) -> dict:
    """The checked input batches by name (a bare array for single-input graphs)."""
    if not isinstance(inputs, dict):
        if len(graph.inputs) != 1:
            raise InputValidationError(f"the model has {len(graph.inputs)} inputs; pass a dict {{name: array}}")
        inputs = {graph.inputs[0]: inputs}
    env = {}
    for name in graph.inputs:
        if name not in inputs:
            raise InputValidationError(f"missing input '{name}' (the model's inputs: {', '.join(graph.inputs)})")
        try:
            x = np.asarray(inputs[name])
        except ValueError as exc:  # nested lists of different lengths
            raise InputValidationError(
                f"input '{name}' is not a rectangular array (ragged nested lists?): {exc}"
            ) from None
        if x.dtype == object:
            raise InputValidationError(f"input '{name}' is not a numeric array (ragged nested lists or objects)")
        env[name] = check_input(graph, name, x)
    return env


def evaluate_ops(graph, ops, env: dict, arena: tuple | None = None) -> None:
    """Evaluate ``ops`` (a part of ``graph``, in order) on the tensors in ``env``, in place.

    With ``arena`` (see :func:`_arena`), the outputs it lists may be written into buffers of
    the graph's previous run: only for values that never leave the run.

    Within a run, an integer tensor may be held as float32 codes (exact: requantizers produce
    float32 only for codes below 2**24 in magnitude): the matrix products take them in the
    float type they compute in, so the codes are never cast to int64 and back between
    layers. Ops not in ``_TAKES_FLOAT_CODES`` get them as int64, and every tensor that may
    leave the run (all of them without ``arena``) is int64 in ``env`` afterwards.
    """
    buffers, inner = arena if arena is not None else (None, ())
    tensors = graph.tensors
    for op in ops:
        fn = _EVAL.get(op.kind)
        if fn is None:
            raise OpFailure(f"no evaluation for {op.kind} ('{op.name}')")
        out = op.outputs[0]
        args = [env[t] for t in op.inputs]
        if op.kind not in _TAKES_FLOAT_CODES:
            args = [_int_codes(tensors[t], a) for t, a in zip(op.inputs, args)]
        SCRATCH.slot = (buffers, out) if out in inner else None
        try:
            env[out] = fn(op, args, graph)
        except Exception as exc:  # name the op: this is a bug or a foreign graph
            raise OpFailure(f"{op.kind} '{op.name}': {exc!r}") from exc
        finally:
            SCRATCH.slot = None
    for op in ops:
        out = op.outputs[0]
        if out not in inner:
            env[out] = _int_codes(tensors[out], env[out])


def _int_codes(t, x: np.ndarray) -> np.ndarray:
    """An integer tensor's codes as int64 (held as float32 within a run: see ``evaluate_ops``)."""
    if x.dtype.kind == "f" and t.kind != "float":
        return x.astype(np.int64)
    return x


def check_input(graph, name: str, x: np.ndarray) -> np.ndarray:
    """Validate one input batch against the graph (shape, dtype, finite, code range)."""
    t = graph.tensors[name]
    want = tuple(t.shape[1:])
    if x.ndim != len(t.shape) or tuple(x.shape[1:]) != want:
        raise InputValidationError(
            f"input '{name}' has shape {x.shape}; the model expects (batch, {', '.join(map(str, want))})"
        )
    if t.kind == "float":
        if x.dtype.kind not in "fiu":
            raise InputValidationError(f"input '{name}' has dtype {x.dtype}; expected float")
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise InputValidationError(f"input '{name}' contains NaN or infinite values")
        return x
    if x.dtype.kind not in "iu" and np.dtype(x.dtype).name not in SMALL_INT_TYPES:
        raise InputValidationError(f"input '{name}' has dtype {x.dtype}; the model expects integer codes")
    x = x.astype(np.int64)
    qmin, qmax = qrange(t.qtype)
    if x.size and (x.min() < qmin or x.max() > qmax):
        raise InputValidationError(f"input '{name}' has values outside [{qmin}, {qmax}]")
    return x


def to_output(graph, name: str, value: np.ndarray) -> np.ndarray:
    dtype = graph.io_dtypes.get(name, "float32")
    return value.astype(np.dtype(dtype) if dtype not in SMALL_INT_TYPES else _ml(dtype))


def _ml(name: str):
    import ml_dtypes  # numpy's 4- and 2-bit types (a dependency of onnx)

    return getattr(ml_dtypes, name)


# -- helpers ---------------------------------------------------------------------------------


def _per_axis(values: tuple, ndim: int, axis: int | None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size == 1 or axis is None:
        return arr.reshape(()) if arr.size == 1 else arr
    shape = [1] * ndim
    shape[axis] = arr.size
    return arr.reshape(shape)


def _centered(x: np.ndarray, q: object) -> np.ndarray:
    """code - zero_point (bipolar codes are their own value)."""
    if q.bipolar:
        return x
    zp = _per_axis(q.zero_point, x.ndim, q.axis).astype(np.int64)
    # (float codes in float64, whatever numpy's casting rules for a zero-dimensional zp)
    return np.subtract(x, zp, dtype=np.float64) if x.dtype.kind == "f" else x - zp


def _matmul_exact(a: np.ndarray, b: np.ndarray, b_max: int | None = None, a_max: int | None = None) -> np.ndarray:
    """Exact integer ``a @ b`` for a (M, K) and b (K, N).

    Every partial sum of the K products, in whatever order the BLAS adds them, is an
    integer of magnitude at most ``K * max|a| * max|b|``. Below 2**24 every such integer
    (and every product) is a float32, below 2**53 a float64, so float32 / float64 BLAS is
    exact there; beyond, the products are summed as Python integers.
    """
    if a_max is None:
        a_max = int(np.abs(a).max(initial=0))
    if b_max is None:
        b_max = int(np.abs(b).max(initial=0))
    bound = a.shape[-1] * a_max * b_max
    if bound < FLOAT32_EXACT:
        return (a.astype(np.float32, copy=False) @ b.astype(np.float32, copy=False)).astype(np.int64)
    if bound < FLOAT64_EXACT:
        return (a.astype(np.float64, copy=False) @ b.astype(np.float64, copy=False)).astype(np.int64)
    return a.astype(object).dot(b.astype(object)).astype(np.int64)


def _float_dtype(bound: int):
    """float32 / float64 when every integer up to ``bound`` is exact in it, else None."""
    if bound < FLOAT32_EXACT:
        return np.float32
    if bound < FLOAT64_EXACT:
        return np.float64
    return None


# -- prepared plans --------------------------------------------------------------------------
#
# What an op needs besides its inputs (weights transposed and in the float type their
# exactness bound allows, prepared requantizers, bounds) is built on the op's first run and
# kept for the op's lifetime, keyed by the op's identity (IR ops are frozen and rebuilt by
# ``replace``; a loaded Program's ops are never changed) and checked against the identity of
# its input tensors' descriptions. The graph is read-only once run: changing an op's arrays
# in place would not be seen.

_PLANS: dict = {}


def _plan(op, graph, build):
    key = id(op)
    entry = _PLANS.get(key)
    if entry is not None and entry[0]() is op:
        tensors = graph.tensors
        for name, dep in zip(op.inputs, entry[1]):
            if tensors[name] is not dep:
                break
        else:
            return entry[2]
    deps = tuple(graph.tensors[t] for t in op.inputs)
    plan = build(op, graph)
    try:
        ref = weakref.ref(op, lambda _ref, key=key: _PLANS.pop(key, None))
    except TypeError:  # not weak-referenceable: no cache
        return plan
    _PLANS[key] = (ref, deps, plan)
    return plan


def _code_bound(q) -> int:
    """max |code - zero_point| over the code range (Python integer)."""
    qmin, qmax = qrange(q)
    if q.bipolar:
        return 1
    zps = [int(z) for z in np.asarray(q.zero_point).reshape(-1)] or [0]
    return max(max(abs(qmin - z), abs(qmax - z)) for z in zps)


def _centering(q, ndim: int, dtype):
    """A function x -> code - zero_point in ``dtype``, for inputs of ``ndim`` axes, given that
    every |code - zero_point| is exact in ``dtype``.

    Cast first, then subtract, when the codes and zero points are themselves exact in the
    float type (|v| < 2**24 for float32, 2**53 for float64); else subtract in int64 first.
    """
    qmin, qmax = qrange(q)
    zp = np.zeros(1) if q.bipolar else np.asarray(q.zero_point)
    limit = FLOAT32_EXACT if dtype == np.float32 else FLOAT64_EXACT
    if max(abs(qmin), abs(qmax), int(np.abs(zp).max(initial=0))) >= limit:
        return lambda x: _centered(x, q).astype(dtype)
    if not np.any(zp != 0):  # (read only: no copy when the codes are already in dtype)
        return lambda x: x.astype(dtype, copy=False)
    zpf = _per_axis(q.zero_point, ndim, q.axis).astype(dtype)
    return lambda x: np.subtract(x, zpf, dtype=dtype)


def _row_bounds(w2: np.ndarray, x_max: int) -> int:
    """max over output rows of sum_k |w[row, k]| * x_max: bounds |acc| and every partial sum
    of a row's products (in Python integers)."""
    if w2.size == 0:
        return 0
    sums = (
        np.abs(w2).astype(object).sum(axis=1)
        if int(np.abs(w2).max()) * w2.shape[1] >= 1 << 62
        else np.abs(w2).sum(axis=1)
    )
    return int(max(sums)) * x_max


class _Requantizer:
    """An op's requantizer, prepared on first use for the accumulator's channel count (its
    last axis), the static bound on |acc| and, when known, each channel's accumulator range."""

    def __init__(self, rq, acc_bound, acc_range=None) -> None:
        self.rq, self.acc_bound, self.acc_range, self.prepared = rq, acc_bound, acc_range, {}

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        channels = acc.shape[-1] if acc.ndim else 1
        fn = self.prepared.get(channels)
        if fn is None:
            known = self.acc_range is not None and len(self.acc_range[0]) == channels
            acc_range = self.acc_range if known else None
            fn = self.prepared[channels] = prepare_requant(self.rq, channels, self.acc_bound, acc_range=acc_range)
        return fn(acc)


def _prepared_requant(op, acc_bound, acc_range=None):
    return None if op.requant is None else _Requantizer(op.requant, acc_bound, acc_range)


def _acc_range(w2: np.ndarray, lo: int, hi: int, padded: bool = False) -> tuple:
    """(least, greatest) of sum_k w_ck * v_k per weight row c (Python integers), over every
    v_k in [lo, hi], and 0 for the taps that may read padding (``padded``): each term at the
    end of its own range."""
    big = int(np.abs(w2).max(initial=0)) * max(abs(lo), abs(hi)) * max(1, w2.shape[1]) >= 1 << 62
    w2 = w2.astype(object) if big else w2
    ends = np.stack([w2 * lo, w2 * hi])
    least, greatest = ends.min(axis=0), ends.max(axis=0)
    if padded:
        least, greatest = np.minimum(least, 0), np.maximum(greatest, 0)
    return [int(v) for v in least.sum(axis=1)], [int(v) for v in greatest.sum(axis=1)]


def _centered_range(q):
    """(least, greatest) code - zero point of a per-tensor quantization type, or None."""
    zps = [int(z) for z in np.ravel(q.zero_point)] or [0]
    if len(zps) != 1:
        return None
    qmin, qmax = qrange(q)
    return (qmin, qmax) if q.bipolar else (qmin - zps[0], qmax - zps[0])


# -- integer ops -----------------------------------------------------------------------------


def _padded(x: np.ndarray, pads, pad_value=0) -> np.ndarray:
    """An NHWC tensor padded (top, left, bottom, right) with ``pad_value``: into a reused
    buffer (read within the op only), or the tensor itself without padding."""
    top, left, bottom, right = pads
    if not (top or left or bottom or right):
        return x
    n, h, w, c = x.shape
    padded = SCRATCH.take("pad", (n, top + h + bottom, left + w + right, c), x.dtype)
    padded[:, :top] = pad_value
    padded[:, top + h :] = pad_value
    padded[:, top : top + h, :left] = pad_value
    padded[:, top : top + h, left + w :] = pad_value
    padded[:, top : top + h, left : left + w] = x
    return padded


def _windows(x: np.ndarray, kernel, strides, pads, dilations=(1, 1), pad_value=0) -> np.ndarray:
    """(N, OH, OW, C, KH, KW) windows of an NHWC tensor (views of it, padded by _padded)."""
    x = _padded(x, pads, pad_value)
    kh, kw = kernel
    dh, dw = dilations
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    win = np.lib.stride_tricks.sliding_window_view(x, (ekh, ekw), axis=(1, 2))
    return win[:, :: strides[0], :: strides[1], :, ::dh, ::dw]


class _FusedShift:
    """The end of a multiply-shift whose multiplier and 2**-shift are folded into the weights."""

    def __init__(self, bias, lo, hi, out_dtype) -> None:
        self.tiled, self.out_dtype = _Tiled(bias, lo, hi), out_dtype

    @staticmethod
    def _codes(y, out, bias, lo, hi):
        y += bias  # in place: y is the op's own product matrix
        _floor_clip(y, lo, hi, out)

    def __call__(self, y: np.ndarray) -> np.ndarray:
        wide, k = _widen(y, y.shape[-1])
        return _in_blocks(self._codes, wide, self.out_dtype, self.tiled, k).reshape(y.shape)


def _fused_shift(op, w2: np.ndarray, x_max: int):
    """(per-output-channel weight scale, finisher) folding a multiply-shift into float64
    products, or None.

    With s = direction * multiplier * 2**-shift per output channel c, the products
    x_k * (w_ck * s_c) are the integers x_k * w_ck * d_c * m_c moved by 2**-shift, and every
    partial sum (in whatever order the BLAS adds) is an integer of magnitude at most
    sum_k |w_ck| * x_max * m_c, moved likewise; adding offset_c * 2**-shift gives at most
    that plus |offset_c|. Below 2**53 every such value is a float64 (shift < 1000 keeps the
    lowest bit above 2**-1074), so the products, sums and the added bias are exact, and
    floor of the result is ``(d * acc * m + offset) >> shift``.
    """
    rq = op.requant
    if rq is None or rq.kind != "multiply_shift" or int(rq.shift) >= 1000 or w2.shape[1] > FUSE_MAX_K:
        return None
    oc = w2.shape[0]
    dm = _per_channel(np.asarray(rq.direction, dtype=np.int64), oc) * _per_channel(
        np.asarray(rq.multiplier, dtype=np.int64), oc
    )
    off = _per_channel(np.asarray(rq.offset, dtype=np.int64), oc)
    rows = np.abs(w2).astype(object).sum(axis=1) if w2.size else np.zeros(oc, dtype=object)
    worst = max((int(r) * x_max * abs(int(m)) + abs(int(o)) for r, m, o in zip(rows, dm, off)), default=0)
    if worst >= FLOAT64_EXACT:
        return None
    scale = 2.0 ** -int(rq.shift)
    lo = _per_channel(np.asarray(rq.lo, dtype=np.int64), oc)
    hi = _per_channel(np.asarray(rq.hi, dtype=np.int64), oc)
    codes = _codes_dtype(lo, hi)
    bounds = np.float32 if codes == np.float32 else np.float64  # (see _floor_clip)
    fin = _FusedShift(_compact(off.astype(np.float64) * scale), *_bounds(lo.astype(bounds), hi.astype(bounds)), codes)
    return dm.astype(np.float64) * scale, fin


def _conv_plan(op, graph):
    q = graph.tensors[op.inputs[0]].qtype
    w = np.asarray(op.weights, dtype=np.int64)
    oc, icg, kh, kw = w.shape
    # every partial sum of an output's icg*kh*kw products is bounded by its row's sum of
    # |w| times max|x - zp| (the input's codes lie in its type's range)
    x_max = _code_bound(q)
    bound = _row_bounds(w.reshape(oc, -1), x_max)
    dtype = _float_dtype(bound)
    span = _centered_range(q)
    rq = _prepared_requant(op, bound, None if span is None else _acc_range(w.reshape(oc, -1), *span, any(op.pads)))
    depthwise = icg == 1 and op.groups > 1
    # (not for depthwise taps: float64 taps cost twice the float32 ones, more than the
    # multiply-shift they would save)
    fused = _fused_shift(op, w.reshape(oc, -1), x_max) if dtype is not None and not depthwise else None
    scale = np.ones(oc)
    if fused is not None:
        dtype, (scale, rq) = np.float64, fused
    mats = None
    if dtype is not None and depthwise:
        wd = (w.reshape(op.groups, oc // op.groups, kh, kw) * scale.reshape(op.groups, -1, 1, 1)).astype(dtype)
        mats = [np.ascontiguousarray(wd[:, :, i, j]) for i in range(kh) for j in range(kw)]
    elif dtype is not None:
        # rows ordered (kh, kw, c) like the window matrix (see _conv): the same products
        ocg = oc // op.groups
        ws = w.transpose(0, 2, 3, 1).reshape(oc, -1).T * scale  # (K, oc): column c scaled by s_c
        mats = [np.ascontiguousarray(ws[:, g * ocg : (g + 1) * ocg].astype(dtype)) for g in range(op.groups)]
    center = None if dtype is None else _centering(q, 4, dtype)
    in_hw = tuple(getattr(graph.tensors[op.inputs[0]], "shape", (None,) * 3)[1:3])  # (NHWC: H, W)
    if dtype is not None and depthwise and oc == op.groups and all(isinstance(v, (int, np.integer)) for v in in_hw):
        if in_hw[0] * in_hw[1] <= DEPTHWISE_MATRIX_MAX_PIXELS * op.strides[0] * op.strides[1]:
            mats = _depthwise_matrices(op, w[:, 0].astype(dtype), in_hw)
    return center, dtype, depthwise, mats, rq


def _depthwise_matrices(op, w: np.ndarray, in_hw) -> tuple:
    """(T, (OH, OW)) for a depthwise convolution with one output per channel, as one matrix
    product per channel: acc[c, n, q] = sum_p x[c, n, p] * T[c, p, q] over the input pixels p
    (row-major, unpadded) of image n, for output pixel q.

    T[c, p, q] is the weight w[c, i, j] of the tap (i, j) of output q that reads pixel p, and
    0 where no tap does (padding reads none: the padded value, code - zero point, is 0). An
    output's taps read distinct pixels, so its column of T holds its kh*kw products' weights
    once each; every partial sum of the product, in whatever order the BLAS adds, is a sum of
    some of those products and zeros, bounded as the taps' sums are (the row bound of
    ``_conv_plan``): exact in the float type chosen from it.
    """
    h, w_in = (int(v) for v in in_hw)
    kh, kw = w.shape[1:]
    (sh, sw), (dh, dw), (top, left, bottom, right) = op.strides, op.dilations, op.pads
    oh = (h + top + bottom - (kh - 1) * dh - 1) // sh + 1
    ow = (w_in + left + right - (kw - 1) * dw - 1) // sw + 1
    t = np.zeros((w.shape[0], h * w_in, oh * ow), dtype=w.dtype)
    for oy in range(oh):
        for ox in range(ow):
            for i in range(kh):
                for j in range(kw):
                    y, x = oy * sh + i * dh - top, ox * sw + j * dw - left
                    if 0 <= y < h and 0 <= x < w_in:
                        t[:, y * w_in + x, oy * ow + ox] = w[:, i, j]
    return t, (oh, ow)


def _conv(op, ins, graph) -> np.ndarray:
    center, dtype, depthwise, mats, rq = _plan(op, graph, _conv_plan)
    oc, icg, kh, kw = op.weights.shape
    if dtype is None:
        return _conv_exact(op, ins, graph, rq)
    xc = center(ins[0])
    if isinstance(mats, tuple):  # depthwise, one matrix product per channel
        return _depthwise_product(xc, *mats, rq)
    if kh == kw == 1 and len(mats) == 1 and tuple(op.strides) == (1, 1) and not any(op.pads):
        # pointwise: the NHWC input is already the window matrix
        n, h, w = xc.shape[:3]
        acc = SCRATCH.take("acc", (n * h * w, oc), dtype)
        np.matmul(xc.reshape(n * h * w, icg), mats[0], out=acc)
        acc = acc.reshape(n, h, w, oc)
        return acc.astype(np.int64) if rq is None else rq(acc)
    # the windows are taken of the input already in the float type the products need (no
    # copy of the larger window matrix in int64 first); padding adds zeros only
    xp = _padded(xc, op.pads)
    win = _windows(xp, (kh, kw), op.strides, (0, 0, 0, 0), op.dilations)
    n, oh, ow = win.shape[:3]
    if depthwise:  # tap by tap: kh * kw multiply-adds over the whole map, exact below the bound
        mult = oc // op.groups
        (sh, sw), (dh, dw) = op.strides, op.dilations
        if mult == 1:
            # a tap's (ow, C) block as one contiguous axis of ow * C, with the weights tiled
            # ow times, so that numpy's inner loop runs over ow * C elements: the padded
            # input's columns split by their phase modulo the stride across (one copy; the
            # input itself at stride 1), tap (i, j) reads phase j * dw % sw from column
            # j * dw // sw on
            phases = xp[:, :, None]
            if sw > 1:
                wp = xp.shape[2]
                phases = SCRATCH.take("phases", (n, xp.shape[1], sw, -(-wp // sw), oc), dtype)
                for ph in range(sw):
                    cols = xp[:, :, ph::sw]
                    phases[:, :, ph, : cols.shape[2]] = cols
            acc = SCRATCH.take("acc", (n, oh, ow * oc), dtype)  # (read by rq only)
            taps = [np.tile(wt[:, 0], ow) for wt in mats]
        else:
            acc = np.empty((n, oh, ow, op.groups, mult), dtype=dtype)
        # a few images at a time, so that the accumulator and the product stay in cache (the
        # same products, added in the same tap order)
        chunk = max(1, (1 << 16) // max(1, oh * ow * oc))
        tmp = SCRATCH.take("taps", (min(chunk, n),) + acc.shape[1:], dtype)
        for s in range(0, n, chunk):
            a, p = acc[s : s + chunk], tmp[: min(chunk, n - s)]
            for t in range(kh * kw):
                i, j = divmod(t, kw)
                if mult == 1:
                    r, c = i * dh, j * dw
                    tap = phases[s : s + chunk, r : r + (oh - 1) * sh + 1 : sh, c % sw, c // sw : c // sw + ow]
                    tap, wt = tap.reshape(a.shape), taps[t]
                else:
                    tap, wt = win[s : s + chunk, ..., i, j][..., None], mats[t]
                np.multiply(tap, wt, out=a if t == 0 else p)
                if t:
                    a += p
        acc = acc.reshape(n, oh, ow, oc)
    else:
        # the window matrix with rows (kh, kw, c): its copy moves runs of c contiguous values
        win = win.transpose(0, 1, 2, 4, 5, 3)
        if len(mats) == 1 and icg == 1:
            # one input channel: the window matrix built transposed, one contiguous row per
            # tap (a copy of runs of ow values, against runs of kw: measured 2x faster), and
            # multiplied as its transpose (the same products and sums)
            cols = SCRATCH.take("cols", (kh, kw, n, oh, ow), dtype)
            np.copyto(cols, win[..., 0].transpose(3, 4, 0, 1, 2))
            acc = SCRATCH.take("acc", (n * oh * ow, oc), dtype)
            np.matmul(cols.reshape(kh * kw, n * oh * ow).T, mats[0], out=acc)
        elif len(mats) == 1:  # window and product matrices in reused buffers (see SCRATCH)
            cols = SCRATCH.take("cols", (n, oh, ow, kh, kw, icg), dtype)
            np.copyto(cols, win)
            acc = SCRATCH.take("acc", (n * oh * ow, oc), dtype)
            np.matmul(cols.reshape(n * oh * ow, kh * kw * icg), mats[0], out=acc)
        else:
            parts = []
            for g, wt in enumerate(mats):
                xs = win[..., g * icg : (g + 1) * icg].reshape(n * oh * ow, kh * kw * icg)
                parts.append(xs @ wt)
            acc = np.concatenate(parts, axis=1)
        acc = acc.reshape(n, oh, ow, oc)
    return acc.astype(np.int64) if rq is None else rq(acc)


def _depthwise_product(xc: np.ndarray, t: np.ndarray, out_hw, rq) -> np.ndarray:
    """A depthwise convolution of the centered NHWC input by the matrices of
    ``_depthwise_matrices``: channels first for the batched product, then back to NHWC."""
    n, h, w, c = xc.shape
    oh, ow = out_hw
    xt = SCRATCH.take("dw_in", (c, n, h * w), t.dtype)
    _transpose_into(xt.reshape(c, -1), xc.reshape(-1, c))
    yt = SCRATCH.take("dw_out", (c, n, oh * ow), t.dtype)
    np.matmul(xt, t, out=yt)
    acc = SCRATCH.take("acc", (n, oh, ow, c), t.dtype)  # (read by rq only)
    _transpose_into(acc.reshape(-1, c), yt.reshape(c, -1))
    return acc.astype(np.int64) if rq is None else rq(acc)


#: rows of the long side moved per step by ``_transpose_into`` (measured on 23,040 x 32
#: float32: 350 us in steps of 256 against 625 us in one copy)
TRANSPOSE_STEP = 256


def _transpose_into(dst: np.ndarray, src: np.ndarray) -> None:
    """dst = src.T for 2-D arrays, a slice of the longer side at a time (the slices of both
    stay in cache)."""
    if src.shape[0] >= src.shape[1]:
        for s in range(0, src.shape[0], TRANSPOSE_STEP):
            np.copyto(dst[:, s : s + TRANSPOSE_STEP], src[s : s + TRANSPOSE_STEP].T)
    else:
        for s in range(0, src.shape[1], TRANSPOSE_STEP):
            np.copyto(dst[s : s + TRANSPOSE_STEP], src[:, s : s + TRANSPOSE_STEP].T)


def conv_path(op, graph) -> str:
    """How the Conv ``op`` of ``graph`` computes its products, for tests and diagnostics:
    "python integers" beyond the float bounds, else the float type and the method ("float32,
    depthwise matrices", "float32, depthwise taps", "float64, window matrix", ...)."""
    center, dtype, depthwise, mats, _ = _plan(op, graph, _conv_plan)
    if center is None:
        return "python integers"
    how = "depthwise matrices" if isinstance(mats, tuple) else "depthwise taps" if depthwise else "window matrix"
    return f"{np.dtype(dtype).name}, {how}"


def _conv_exact(op, ins, graph, rq) -> np.ndarray:
    """Accumulators beyond 2**53: products summed as Python integers."""
    x = _centered(ins[0].astype(np.int64, copy=False), graph.tensors[op.inputs[0]].qtype)
    w = op.weights
    oc, icg, kh, kw = w.shape
    x_max, w_max = int(np.abs(x).max(initial=0)), int(np.abs(w).max(initial=0))
    win = _windows(x, (kh, kw), op.strides, op.pads, op.dilations)
    n, oh, ow = win.shape[:3]
    if icg == 1 and op.groups > 1:  # depthwise (with channel multiplier)
        mult = oc // op.groups
        wd = w.reshape(op.groups, mult, kh * kw)
        flat = win.reshape(n * oh * ow, op.groups, kh * kw)
        acc = np.stack([_matmul_exact(flat[:, c, :], wd[c].T, w_max, x_max) for c in range(op.groups)], axis=1)
    else:
        ocg = oc // op.groups
        parts = []
        for g in range(op.groups):
            xs = win[:, :, :, g * icg : (g + 1) * icg].reshape(n * oh * ow, icg * kh * kw)
            wg = w[g * ocg : (g + 1) * ocg].reshape(ocg, icg * kh * kw)
            parts.append(_matmul_exact(xs, wg.T, w_max, x_max))
        acc = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    acc = acc.reshape(n, oh, ow, oc)
    return acc if rq is None else rq(acc)


def _dense_plan(op, graph):
    q = graph.tensors[op.inputs[0]].qtype
    w = np.asarray(op.weights, dtype=np.int64)
    x_max = _code_bound(q)
    bound = _row_bounds(w, x_max)  # bounds every partial sum, as for Conv
    dtype = _float_dtype(bound)
    folded = _folded_zero_point(op, w, q) if dtype is not None else None
    if folded is not None:
        dtype, rq = folded
        wt = np.ascontiguousarray(w.T.astype(dtype))
        return q, lambda x: x.astype(dtype, copy=False), wt, rq, "folded zero point"
    # (the accumulator's channels are the weights' rows: prepared now, not on first use)
    span = _centered_range(q)
    acc_range = None if span is None else _acc_range(w, *span)
    rq = None if op.requant is None else prepare_requant(op.requant, w.shape[0], bound, acc_range=acc_range)
    fused = _fused_shift(op, w, x_max) if dtype is not None else None
    scale = np.ones(w.shape[0])
    if fused is not None:
        dtype, (scale, rq) = np.float64, fused
    wt = None if dtype is None else np.ascontiguousarray((w.T * scale).astype(dtype))
    center = None if dtype is None else _centering(q, 2, dtype)
    return q, center, wt, rq, "fused shift" if fused is not None else "centered"


def _folded_zero_point(op, w: np.ndarray, q):
    """(float type, requantizer) for a Dense layer computed from its raw input codes, the
    zero point folded into the multiply-shift's offset; or None.

    With one zero point z, (x - z) @ w_c = x @ w_c - z * sum_k w_ck for output channel c, so
    ``(d * acc * m + off) >> shift`` is ``(d * (x @ w_c) * m + off') >> shift`` with
    off'_c = off_c - d_c * m_c * z * sum_k w_ck (Python integers: exact). Every partial sum
    of x @ w_c is an integer of magnitude at most sum_k |w_ck| * max|code| (the codes lie in
    their type's range), so a float BLAS computes it exactly below 2**24 (float32) or 2**53
    (float64); the fold is taken only then, and only when the requantizer with off' takes its
    exact float64 path (:class:`PreparedMultiplyShift`, bounded by the same partial-sum
    bound); otherwise the input is centered first, as before. The same integers either way:
    it saves the subtraction of z from every input code.
    """
    rq = op.requant
    zps = [int(z) for z in np.ravel(q.zero_point)]
    if q.bipolar or rq is None or rq.kind != "multiply_shift" or len(zps) != 1 or zps[0] == 0:
        return None
    z, oc = zps[0], w.shape[0]
    qmin, qmax = qrange(q)
    code_max = max(abs(qmin), abs(qmax))
    dtype = _float_dtype(max(_row_bounds(w, code_max), code_max))  # (the codes exact in it too)
    if dtype is None:
        return None
    d, m, off = (_per_channel(np.asarray(v, dtype=np.int64), oc) for v in (rq.direction, rq.multiplier, rq.offset))
    row_sums = [sum(int(v) for v in row) for row in w]
    folded = [int(o) - int(dc) * int(mc) * z * r for o, dc, mc, r in zip(off, d, m, row_sums)]
    if max((abs(v) for v in folded), default=0) >= FLOAT64_EXACT:
        return None
    prepared = PreparedMultiplyShift(
        rq.multiplier, np.array(folded, dtype=np.int64), rq.shift, rq.lo, rq.hi, rq.direction, oc,
        _row_bounds(w, code_max), _acc_range(w, qmin, qmax),
    )  # fmt: skip
    return (dtype, prepared) if prepared.float else None


def dense_path(op, graph) -> str:
    """How the Dense ``op`` of ``graph`` computes its products, for tests and diagnostics:
    "python integers" beyond the float bounds, else the float type and how the input zero
    point and requantizer are applied ("float32, centered", "float64, fused shift",
    "float32, folded zero point", ...)."""
    _, center, wt, _, how = _plan(op, graph, _dense_plan)
    return "python integers" if center is None else f"{np.dtype(wt.dtype).name}, {how}"


def _dense(op, ins, graph) -> np.ndarray:
    q, center, wt, rq, _ = _plan(op, graph, _dense_plan)
    if center is None:
        acc = _matmul_exact(_centered(ins[0].astype(np.int64, copy=False), q), op.weights.T)
        return acc if rq is None else rq(acc)
    x = center(ins[0])
    if rq is None:
        return (x @ wt).astype(np.int64)
    acc = SCRATCH.take("acc", (x.shape[0], wt.shape[1]), wt.dtype)  # (read by rq only)
    return rq(np.matmul(x, wt, out=acc))


def _tt_dense(op, ins, graph) -> np.ndarray:
    """A TT layer, one core per step in ``op.order``; the state is requantized between steps.

    The state of the contracted run of cores [a..b] is held in the axis order
    (batch, m_0..m_{a-1}, r_a, n_a..n_b, r_{b+1}, m_{b+1}..m_{d-1}).
    """
    x = _centered(ins[0], graph.tensors[op.inputs[0]].qtype)
    d = len(op.modes_in)
    state = x.reshape((x.shape[0],) + tuple(int(m) for m in op.modes_in))
    labels = [("m", k) for k in range(d)]
    run = None
    for t, k in enumerate(op.order):
        k = int(k)
        core = np.asarray(op.cores[k], dtype=np.int64)
        core_labels = [("r", k), ("m", k), ("n", k), ("r", k + 1)]
        summed = [lab for lab in core_labels if lab in labels]
        state, labels = _contract(state, labels, core, core_labels, summed)
        run = (k, k) if run is None else (min(run[0], k), max(run[1], k))
        state, labels = _to_canonical(state, labels, run, d)
        if t < d - 1:
            flat = state.reshape(-1, 1)
            state = apply_requant(flat, op.mid_requant[t], channel_axis=-1).reshape(state.shape)
    return _requant(op, state.reshape(state.shape[0], -1))


def _contract(state, labels, core, core_labels, summed):
    """Sum ``state`` (axes ``labels`` after the batch) against ``core`` over the ``summed`` axes, exactly."""
    kept = [lab for lab in labels if lab not in summed]
    perm = [0] + [1 + labels.index(lab) for lab in kept + summed]
    st = np.transpose(state, perm)
    kept_shape = st.shape[: 1 + len(kept)]
    core_kept = [lab for lab in core_labels if lab not in summed]
    cperm = [core_labels.index(lab) for lab in summed + core_kept]
    ct = np.transpose(core, cperm)
    k = int(np.prod(ct.shape[: len(summed)], dtype=np.int64))
    out = _matmul_exact(st.reshape(-1, k), ct.reshape(k, -1))
    return out.reshape(tuple(kept_shape) + ct.shape[len(summed) :]), kept + core_kept


def _to_canonical(state, labels, run, d):
    a, b = run
    want = [("m", k) for k in range(a)] + [("r", a)] + [("n", k) for k in range(a, b + 1)] + [("r", b + 1)]
    want += [("m", k) for k in range(b + 1, d)]
    perm = [0] + [1 + labels.index(lab) for lab in want]
    return np.transpose(state, perm), want


def _requant(op, acc: np.ndarray) -> np.ndarray:
    if op.requant is None:
        return acc
    return apply_requant(acc, op.requant, channel_axis=-1)


def _taps(win: np.ndarray, fn, out_dtype=None) -> np.ndarray:
    """Reduce (..., KH, KW) windows tap by tap with the ufunc ``fn`` (maximum, add)."""
    kh, kw = win.shape[-2:]
    acc = np.array(win[..., 0, 0], dtype=out_dtype or win.dtype)
    for t in range(1, kh * kw):
        fn(acc, win[..., t // kw, t % kw], out=acc)
    return acc


def _pooled(x: np.ndarray, op, fn, pad_value=0) -> np.ndarray:
    """An NHWC tensor's (KH, KW) windows reduced with the ufunc ``fn`` (maximum, or add on
    integers exact in ``x``'s type: any order of the taps gives the same values).

    Windows that tile the map (strides equal to the kernel, no padding) as the kernel's rows
    then its columns reduced along axes of a reshaped view: kh + kw - 1 passes, the first over
    runs of ow * kw * C contiguous values (measured 2x faster than tap by tap); else tap by tap.
    """
    kh, kw = op.kernel
    if tuple(op.strides) != (kh, kw) or any(op.pads):
        return _taps(_windows(x, op.kernel, op.strides, op.pads, pad_value=pad_value), fn)
    n, h, w, c = x.shape
    oh, ow = h // kh, w // kw
    tiles = x[:, : oh * kh, : ow * kw].reshape(n, oh, kh, ow * kw * c)
    rows = _fold(fn, [tiles[:, :, i] for i in range(kh)])
    cols = rows.reshape(n, oh, ow, kw, c)
    return _fold(fn, [cols[:, :, :, j] for j in range(kw)])


def _fold(fn, parts: list) -> np.ndarray:
    """fn(...fn(fn(parts[0], parts[1]), parts[2])..., parts[-1]) into a new array (binary
    ufunc calls: numpy's reduce along a short middle axis costs several times more)."""
    acc = fn(parts[0], parts[1]) if len(parts) > 1 else parts[0].copy()
    for part in parts[2:]:
        fn(acc, part, out=acc)
    return acc


def _maxpool(op, ins, graph) -> np.ndarray:
    q = graph.tensors[op.inputs[0]].qtype
    return _pooled(ins[0], op, np.maximum, pad_value=qrange(q)[0] - 1)


def _avgpool_plan(op, graph):
    q = graph.tensors[op.inputs[0]].qtype
    bound = _code_bound(q) * int(np.prod(op.kernel))
    rq = _prepared_requant(op, bound)
    # float codes (see evaluate_ops) summed in the float type every partial sum is exact in
    dtype = _float_dtype(bound)
    center = _centering(q, 4, dtype) if rq is not None and dtype is not None else None
    return q, rq, center


def _avgpool(op, ins, graph) -> np.ndarray:
    q, rq, center = _plan(op, graph, _avgpool_plan)
    if center is not None and ins[0].dtype.kind == "f":
        return rq(_pooled(center(ins[0]), op, np.add))
    x = _centered(ins[0].astype(np.int64, copy=False), q)
    acc = _pooled(x, op, np.add)  # int64: exact
    return acc if rq is None else rq(acc)


def _add_plan(op, graph):
    qa, qb = (graph.tensors[t].qtype for t in op.inputs)
    ma, mb = (int(m) for m in op.input_multipliers)
    bound = abs(ma) * _code_bound(qa) + abs(mb) * _code_bound(qb)
    rq = _prepared_requant(op, bound)
    # in float64 when every intermediate (code - zero point, times its multiplier, the sum)
    # is an integer below 2**53 in magnitude: the same integers, exact
    zps = [_float_zero_point(q, len(graph.tensors[t].shape)) for q, t in zip((qa, qb), op.inputs)]
    in_float = rq is not None and bound < FLOAT64_EXACT and all(z is not False for z in zps)
    return qa, qb, ma, mb, rq, zps if in_float else None


def _float_zero_point(q, ndim: int):
    """A quantization type's zero points in float64 for inputs of ``ndim`` axes (None when
    there are none to subtract), or False when a code or zero point is not exact in float64."""
    qmin, qmax = qrange(q)
    zp = np.zeros(1) if q.bipolar else np.asarray(q.zero_point)
    if max(abs(qmin), abs(qmax), int(np.abs(zp).max(initial=0))) >= FLOAT64_EXACT:
        return False
    return _per_axis(q.zero_point, ndim, q.axis).astype(np.float64) if np.any(zp != 0) else None


def _add(op, ins, graph) -> np.ndarray:
    qa, qb, ma, mb, rq, zps = _plan(op, graph, _add_plan)
    if zps is not None and ins[0].shape == ins[1].shape:
        acc, other = (SCRATCH.take(role, ins[0].shape, np.float64) for role in ("add", "add_other"))
        for dst, x, zp, m in ((acc, ins[0], zps[0], ma), (other, ins[1], zps[1], mb)):
            if zp is None:
                np.copyto(dst, x)
            else:
                np.subtract(x, zp, out=dst, dtype=np.float64)
            if m != 1:
                dst *= m
        acc += other
        return rq(acc)
    ins = [x.astype(np.int64, copy=False) for x in ins]
    acc = _centered(ins[0], qa)  # int64, in place: the same integers as the formula
    if acc is ins[0]:  # bipolar codes are their own value: never change the input
        acc = acc.copy()
    if ma != 1:
        acc *= ma
    other = _centered(ins[1], qb)
    if mb != 1:
        other *= mb
    acc += other
    return acc if rq is None else rq(acc)


def _requantize_plan(op, graph):
    q = graph.tensors[op.inputs[0]].qtype
    span, channels = _centered_range(q), getattr(graph.tensors[op.inputs[0]], "shape", (None,))[-1]
    known = span is not None and isinstance(channels, (int, np.integer))
    rq = _prepared_requant(op, _code_bound(q), ([span[0]] * channels, [span[1]] * channels) if known else None)
    # codes held in float (see evaluate_ops) are centered in float64: exact when the codes
    # and zero points are (|code - zp| is then bounded by _code_bound, below them)
    zp = _float_zero_point(q, len(graph.tensors[op.inputs[0]].shape)) if rq is not None else False
    return q, rq, zp


def _requantize(op, ins, graph) -> np.ndarray:
    q, rq, zp = _plan(op, graph, _requantize_plan)
    x = ins[0]
    if x.dtype.kind == "f" and zp is not False:
        return rq(x if zp is None else np.subtract(x, zp, dtype=np.float64))
    acc = _centered(x.astype(np.int64, copy=False), q)
    return acc if rq is None else rq(acc)


def _concat(op, ins, graph) -> np.ndarray:
    return np.concatenate(ins, axis=op.axis)


def _reshape(op, ins, graph) -> np.ndarray:
    return ins[0].reshape((ins[0].shape[0], *op.shape))


def _resize(op, ins, graph) -> np.ndarray:
    """Nearest-neighbour upsampling: every pixel repeated fh times down and fw times across."""
    fh, fw = (int(f) for f in op.factors)
    h_axis = 1 if graph.tensors[op.inputs[0]].layout == "NHWC" else 2
    return np.repeat(np.repeat(ins[0], fh, axis=h_axis), fw, axis=h_axis + 1)


# -- host ops --------------------------------------------------------------------------------


def _quantize_constants(op, ndim: int):
    q = op.qtype
    dtype = np.float32 if _float32_quotient(op) else np.float64
    divisor = dtype(op.divisor) if op.divisor is not None else _per_axis(q.scale, ndim, q.axis).astype(dtype)
    zp = _per_axis(q.zero_point, ndim, q.axis).astype(dtype)
    # (0-d constants as scalars of their dtype: the same arithmetic, without numpy's slower
    # handling of 0-d arrays)
    divisor, zp = (v[()] if np.ndim(v) == 0 else v for v in (divisor, zp))
    return divisor, zp, qrange(q), bool(np.all(zp == np.round(zp)))


def _float32_quotient(op) -> bool:
    """Whether the op divides in float32 (ONNX QuantizeLinear); programs written before the
    field existed did so for every quantizer."""
    return getattr(op, "float32_quotient", True)


def _quantize_plan(op, graph):
    return _quantize_constants(op, len(graph.tensors[op.inputs[0]].shape))


def _quantize(op, ins, graph) -> np.ndarray:
    """Float -> codes: the rounding of x / scale (+ zero point), as the model's quantizer defines it.

    ONNX QuantizeLinear divides in float32, as onnxruntime does (``float32_quotient``). QONNX
    Quant rounds the real quotient: the input is float32 and a model's scales are float32 (or
    powers of two), so x / scale is at least 2**-25 away from every rounding tie it is not on
    (both have 24-bit mantissas), and its float64 quotient and sum with the integer zero
    point err by less while |x / scale| < 2**26 (beyond, every code range of up to 26 bits
    is saturated anyway). A float32 division, the qonnx executor's, can land on a tie and
    round to the wrong side: x = -1.56825 with scale 0.0123 is -127.4999994, not -127.5.
    """
    divisor, zp, (qmin, qmax), integral = _plan(op, graph, _quantize_plan)
    if np.ndim(divisor) not in (0, ins[0].ndim) or np.ndim(zp) not in (0, ins[0].ndim):  # another rank
        divisor, zp, _, integral = _quantize_constants(op, ins[0].ndim)
    scaled = np.divide(ins[0], divisor, dtype=divisor.dtype)  # a new array: the input is not changed
    # (the codes in place of the quotient, unless the zero points broadcast it further)
    out = scaled if np.broadcast_shapes(scaled.shape, np.shape(zp)) == scaled.shape else None
    codes = to_codes(scaled, zp, qmin, qmax, op.rounding, op.zero_point_after_rounding, integral, out=out)
    if max(-qmin, qmax) < FLOAT32_EXACT:  # integer codes held as float32 (exact)
        return codes.astype(np.float32, copy=False)
    return codes.astype(np.int64)


def _dequantize(op, ins, graph) -> np.ndarray:
    return _as_float(ins[0], graph.tensors[op.inputs[0]]).astype(np.float32)


def _channel_vec(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    if values.size == 1:
        return values.reshape(())
    return values.reshape((1,) * (x.ndim - 1) + (-1,))


def _affine(op, ins, graph) -> np.ndarray:
    x = _as_float(ins[0], graph.tensors[op.inputs[0]])
    return (x * _channel_vec(op.mul, x) + _channel_vec(op.add, x)).astype(np.float32)


def _as_float(x: np.ndarray, t: object) -> np.ndarray:
    """The real value of a tensor (float tensors are their own value)."""
    if t.kind == "float":
        return x.astype(np.float64)
    if x.dtype.kind == "f":  # float codes (see evaluate_ops): in float64 first, so that the
        x = x.astype(np.float64)  # arithmetic below is float64 under numpy 1's casting rules too
    q = t.qtype
    # (no zero point to subtract: x - 0 is x, signed zeros included)
    c = x if q.bipolar or not np.any(q.zero_point) else x - _per_axis(q.zero_point, x.ndim, q.axis)
    return c * _per_axis(q.scale, x.ndim, q.axis)


def _relu(op, ins, graph):
    return np.maximum(_as_float(ins[0], graph.tensors[op.inputs[0]]), 0).astype(np.float32)


def _clip(op, ins, graph):
    return np.clip(_as_float(ins[0], graph.tensors[op.inputs[0]]), op.lo, op.hi).astype(np.float32)


def _round(op, ins, graph):
    return round_mode(_as_float(ins[0], graph.tensors[op.inputs[0]]), op.mode).astype(np.float32)


def _softmax(op, ins, graph):
    x = _as_float(ins[0], graph.tensors[op.inputs[0]])  # a new array: changed in place
    x -= _row_max(x)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x.astype(np.float32)


def _row_max(x: np.ndarray) -> np.ndarray:
    """x.max(axis=-1, keepdims=True): for a few columns, over the leading axis of a transposed
    copy (numpy's reduction over a short last axis costs several times more: measured 15 us
    against 3.5 us on 360 rows of 10; a maximum is exact in any order)."""
    if x.ndim < 2 or not 1 < x.shape[-1] <= 32:
        return x.max(axis=-1, keepdims=True)
    rows = x.reshape(-1, x.shape[-1])
    return np.ascontiguousarray(rows.T).max(axis=0).reshape(x.shape[:-1] + (1,))


def _sigmoid(op, ins, graph):
    x = _as_float(ins[0], graph.tensors[op.inputs[0]])
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _transpose(op, ins, graph):
    return np.ascontiguousarray(np.transpose(ins[0], op.perm))


#: the ops that take integer tensors held as float32 codes (see ``evaluate_ops``): they
#: compute in float (exact: codes and their differences below 2**24), compare or move values
_TAKES_FLOAT_CODES = frozenset(
    ("Conv", "Dense", "Add", "Requantize", "AvgPool", "MaxPool", "Concat", "Reshape", "Resize", "Transpose", "Dequantize", "Affine", "Relu", "Clip",
     "Round", "Softmax", "Sigmoid")
)  # fmt: skip

_EVAL = {
    "Conv": _conv,
    "Dense": _dense,
    "TTDense": _tt_dense,
    "MaxPool": _maxpool,
    "AvgPool": _avgpool,
    "Add": _add,
    "Requantize": _requantize,
    "Concat": _concat,
    "Reshape": _reshape,
    "Resize": _resize,
    "Quantize": _quantize,
    "Dequantize": _dequantize,
    "Affine": _affine,
    "Relu": _relu,
    "Clip": _clip,
    "Round": _round,
    "Softmax": _softmax,
    "Sigmoid": _sigmoid,
    "Transpose": _transpose,
}
