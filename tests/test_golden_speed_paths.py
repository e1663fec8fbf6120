"""The golden interpreter's fast routes give the integer formulas' results, code for code.

Each route (a Dense layer's zero point folded into its multiply-shift offset, depthwise
convolutions as one matrix product per channel, one-channel convolutions through a
transposed window matrix, clips with scalar or vector bounds, quantizers written in place,
the short-row softmax maximum) is checked against numpy int64 or Python arithmetic written
here, at the route's bounds, and with the bound missed so that the fallback is taken; the
route taken is asserted through ``interpreter.dense_path`` / ``conv_path``. Two fixture
models that take the routes are compared with onnxruntime, code for code.
"""

from __future__ import annotations

import numpy as np
import pytest

from accelgen import golden
from accelgen.runtime import interpreter, numeric
from accelgen.runtime.program import Node
from tests.reference import run_reference
from tests.test_fidelity import compare, prepared


def _qtype(bits: int, signed: bool, zero_point: int) -> Node:
    return Node(bits=bits, signed=signed, narrow=False, bipolar=False, zero_point=np.array([zero_point]), axis=None)


def _multiply_shift(rng, oc: int, multiplier_bits: int, shift: int, lo: int, hi: int) -> Node:
    return Node(kind="multiply_shift", multiplier=rng.integers(1 << (multiplier_bits - 1), 1 << multiplier_bits, oc),
                offset=rng.integers(-(1 << (shift + 2)), 1 << (shift + 2), oc), shift=shift,
                lo=np.full(oc, lo), hi=rng.integers(hi // 2, hi + 1, oc), direction=rng.choice([-1, 1], oc))  # fmt: skip


def _requantized(acc: np.ndarray, rq: Node) -> np.ndarray:
    """clip((d * acc * m + off) >> shift, lo, hi) in Python integers (no float, no int64 wrap);
    checked to leave most codes unclipped (a test of saturated codes would prove little)."""
    out = np.empty(acc.shape, dtype=object)
    inside = 0
    for idx in np.ndindex(acc.shape):
        c = idx[-1]
        y = (int(rq.direction[c]) * int(acc[idx]) * int(rq.multiplier[c]) + int(rq.offset[c])) >> int(rq.shift)
        out[idx] = max(int(rq.lo[c]), min(int(rq.hi[c]), y))
        inside += int(rq.lo[c]) < y < int(rq.hi[c])
    assert inside >= acc.size // 3
    return out.astype(np.int64)


def _dense_case(k: int, oc: int, q: Node, w_max: int, multiplier_bits: int, shift: int, seed: int):
    rng = np.random.default_rng(seed)
    qmin, qmax = numeric.qrange(q)
    w = rng.integers(-w_max, w_max + 1, (oc, k))
    w[0] = w_max  # one row at the bound, every input at an end of the range
    x = rng.integers(qmin, qmax + 1, (7, k))
    x[0], x[1] = qmax, qmin
    rq = _multiply_shift(rng, oc, multiplier_bits, shift, lo=qmin if q.signed else 0, hi=qmax)
    op = Node(kind="Dense", name="d", inputs=["x"], outputs=["y"], weights=w, requant=rq)
    graph = Node(tensors={"x": Node(qtype=q, shape=(None, k))})
    acc = (x - int(q.zero_point[0])) @ w.T  # numpy's integer matmul (no BLAS)
    return op, graph, x, _requantized(acc, rq)


@pytest.mark.parametrize(
    "bits, signed, zero_point",
    [(8, True, -128), (8, False, 128), (8, False, 3), (4, True, -5)],
)
def test_dense_zero_point_folded_into_the_offset(bits, signed, zero_point):
    """(x - z) @ w = x @ w - z * sum(w): the fold gives the centered layer's codes, every row."""
    op, graph, x, want = _dense_case(
        64, 12, _qtype(bits, signed, zero_point), 127, 20, 30 + (bits < 8), seed=bits + abs(zero_point)
    )
    got = interpreter._dense(op, [x.astype(np.float32)], graph)  # (codes as float32, as within a run)
    assert interpreter.dense_path(op, graph) == "float32, folded zero point"
    assert np.array_equal(np.asarray(got, dtype=np.int64), want)


def test_dense_without_zero_point_is_not_folded():
    op, graph, x, want = _dense_case(64, 8, _qtype(8, True, 0), 127, 20, 30, seed=1)
    got = interpreter._dense(op, [x], graph)
    assert interpreter.dense_path(op, graph) == "float32, centered"
    assert np.array_equal(np.asarray(got, dtype=np.int64), want)


def test_dense_fold_refused_when_the_folded_offset_leaves_float64():
    """A multiplier of 2**40 puts d * m * z * sum(w) beyond 2**53: the input is centered and
    the requantizer takes its int64 path; the codes are the same."""
    op, graph, x, want = _dense_case(64, 6, _qtype(8, True, -128), 127, 41, 51, seed=2)
    got = interpreter._dense(op, [x], graph)
    assert interpreter.dense_path(op, graph) == "float32, centered"
    assert not interpreter._plan(op, graph, interpreter._dense_plan)[3].float  # the int64 requantizer
    assert np.array_equal(np.asarray(got, dtype=np.int64), want)


def test_dense_beyond_2_53_takes_python_integers():
    """Weights near 2**30 on 24-bit codes (partial sums up to 2**57): no float type is exact;
    Python integers, the same accumulators."""
    q = _qtype(24, True, -5)
    rng = np.random.default_rng(3)
    k, oc = 16, 4
    w = rng.choice([-(1 << 30) + 1, (1 << 30) - 1], (oc, k))
    x = rng.integers(-(1 << 23), 1 << 23, (5, k))
    op = Node(kind="Dense", name="d", inputs=["x"], outputs=["y"], weights=w, requant=None)
    graph = Node(tensors={"x": Node(qtype=q, shape=(None, k))})
    got = interpreter._dense(op, [x], graph)
    assert interpreter.dense_path(op, graph) == "python integers"
    want = [[sum((int(a) + 5) * int(b) for a, b in zip(row, col)) for col in w] for row in x]
    assert got.astype(object).tolist() == want


def _conv_reference(x: np.ndarray, w: np.ndarray, zp: int, strides, pads, dilations, groups: int) -> np.ndarray:
    """NHWC convolution of x - zp (padded with zeros) in int64, output by output."""
    top, left, bottom, right = pads
    xc = np.pad(x - zp, ((0, 0), (top, bottom), (left, right), (0, 0)))
    oc, icg, kh, kw = w.shape
    (sh, sw), (dh, dw) = strides, dilations
    oh = (xc.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (xc.shape[2] - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, oc), dtype=np.int64)
    ocg = oc // groups
    for o in range(oc):
        g = o // ocg
        for i in range(kh):
            for j in range(kw):
                tap = xc[:, i * dh : i * dh + (oh - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw,
                         g * icg : (g + 1) * icg]  # fmt: skip
                out[..., o] += tap @ w[o, :, i, j]
    return out


def _conv_case(shape, w_shape, groups, strides, pads, dilations, seed, w_max=7, requant=True):
    rng = np.random.default_rng(seed)
    q = _qtype(8, False, 3)
    n, h, wd, c = shape
    x = rng.integers(0, 256, shape)
    x[0] = 255  # a whole image at the end of the range
    w = rng.integers(-w_max, w_max + 1, w_shape)
    rq = _multiply_shift(rng, w_shape[0], 16, 20, lo=0, hi=255) if requant else None
    op = Node(kind="Conv", name="c", inputs=["x"], outputs=["y"], weights=w, requant=rq, strides=strides,
              pads=pads, dilations=dilations, groups=groups)  # fmt: skip
    graph = Node(tensors={"x": Node(qtype=q, shape=(None, h, wd, c), layout="NHWC")})
    acc = _conv_reference(x, w, 3, strides, pads, dilations, groups)
    return op, graph, x, acc if rq is None else _requantized(acc, rq)


@pytest.mark.parametrize(
    "strides, pads, dilations",
    [((1, 1), (1, 1, 1, 1), (1, 1)), ((2, 2), (1, 1, 1, 1), (1, 1)), ((2, 1), (0, 2, 1, 0), (1, 1)),
     ((1, 1), (2, 2, 2, 2), (2, 2))],
)  # fmt: skip
def test_depthwise_matrices_equal_the_integer_convolution(strides, pads, dilations):
    op, graph, x, want = _conv_case((5, 8, 8, 6), (6, 1, 3, 3), 6, strides, pads, dilations, seed=sum(pads))
    got = interpreter._conv(op, [x.astype(np.float32)], graph)
    assert interpreter.conv_path(op, graph) == "float32, depthwise matrices"
    assert np.array_equal(np.asarray(got, dtype=np.int64), want)


@pytest.mark.parametrize("w_max, dtype", [(7311, "float32"), (7400, "float64")])
def test_depthwise_matrices_at_the_float32_bound(w_max, dtype):
    """Raw accumulators (no requantizer) with every weight at w_max and an image at code 255
    (|255 - 3| = 252): 9 * 252 * 7311 = 16,581,348 < 2**24 <= 9 * 252 * 7400, reached inside
    the image; float32 below the bound, float64 above it."""
    op, graph, x, _ = _conv_case((3, 6, 6, 4), (4, 1, 3, 3), 4, (1, 1), (1, 1, 1, 1), (1, 1), seed=9, requant=False)
    op.weights[:] = w_max
    want = _conv_reference(x, op.weights, 3, (1, 1), (1, 1, 1, 1), (1, 1), 4)
    got = interpreter._conv(op, [x.astype(np.float32)], graph)
    assert interpreter.conv_path(op, graph) == f"{dtype}, depthwise matrices"
    assert int(np.abs(want).max()) == 9 * 252 * w_max  # the bound reached
    assert np.array_equal(got, want)


def test_large_depthwise_takes_the_taps():
    """Beyond DEPTHWISE_MATRIX_MAX_PIXELS input pixels the taps run; the same codes."""
    side = int(np.sqrt(interpreter.DEPTHWISE_MATRIX_MAX_PIXELS)) + 2
    op, graph, x, want = _conv_case((3, side, side, 4), (4, 1, 3, 3), 4, (1, 1), (1, 1, 1, 1), (1, 1), seed=4)
    got = interpreter._conv(op, [x.astype(np.float32)], graph)
    assert interpreter.conv_path(op, graph) == "float32, depthwise taps"
    assert np.array_equal(np.asarray(got, dtype=np.int64), want)


@pytest.mark.parametrize("requant", [True, False])
def test_one_channel_convolution_through_the_transposed_window_matrix(requant):
    op, graph, x, want = _conv_case((4, 7, 9, 1), (5, 1, 3, 3), 1, (1, 1), (1, 0, 1, 2), (1, 1), seed=5,
                                    requant=requant)  # fmt: skip
    got = interpreter._conv(op, [x.astype(np.float32)], graph)
    assert interpreter.conv_path(op, graph).endswith("window matrix")
    assert np.array_equal(np.asarray(got, dtype=np.int64), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_clip_with_scalar_and_vector_bounds(dtype):
    rng = np.random.default_rng(6)
    x = rng.integers(-300, 300, (9, 8)).astype(dtype)
    for lo, hi in [(0, 255), (np.arange(8) - 4, 100), (-3, np.arange(8) * 20), (np.full(8, -1), np.full(8, 1))]:
        lo_b, hi_b = numeric._bounds(np.asarray(lo, dtype=dtype), np.asarray(hi, dtype=dtype))
        assert np.ndim(lo_b) == np.ndim(hi_b)  # never one scalar and one vector
        out = np.empty_like(x)
        numeric._clip(x, lo_b, hi_b, out)
        assert np.array_equal(out, np.minimum(np.maximum(x, lo), hi))


@pytest.mark.parametrize("mode", numeric.ROUNDING_MODES)
@pytest.mark.parametrize("after", [False, True])
def test_codes_written_in_place_equal_new_arrays(mode, after):
    scaled = np.array([-130.5, -2.5, -1.5, -0.5, -0.2, 0.0, 0.5, 1.5, 2.5, 3.49, 126.5, 300.0], dtype=np.float32)
    zp = np.float32(3)
    want = numeric.to_codes(scaled.copy(), zp, -128, 127, mode, after)
    into = scaled.copy()
    got = numeric.to_codes(into, zp, -128, 127, mode, after, out=into)
    assert got is into
    assert np.array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("shape", [(360, 10), (5, 3, 7), (4, 1), (4, 40), (6,)])
def test_short_row_maximum(shape):
    x = np.random.default_rng(7).normal(size=shape)
    assert np.array_equal(interpreter._row_max(x), x.max(axis=-1, keepdims=True))


@pytest.mark.parametrize(
    "file, route",
    [("qdq_mlp_s8.onnx", ("Dense", "float32, folded zero point")),
     ("qop_dscnn_perchannel.onnx", ("Conv", "float32, depthwise matrices"))],
)  # fmt: skip
def test_fixture_models_on_the_fast_routes_match_onnxruntime(file, route):
    path, graph, x, _, step = prepared(file)
    ours = next(iter(golden.run(graph, x).values()))
    kind, how = route
    describe = interpreter.conv_path if kind == "Conv" else interpreter.dense_path
    assert how in [describe(op, graph) for op in graph.ops if op.kind == kind]
    r = compare(ours, run_reference(path, x, ort_optimize=False), step)
    assert r["identical"] == 1.0


@pytest.mark.parametrize("kernel", [(2, 2), (3, 3), (4, 4), (2, 3), (1, 2)])
@pytest.mark.parametrize("shape", [(3, 5, 7, 4), (2, 4, 4, 3), (1, 6, 6, 1)])
def test_tiled_pools_equal_their_windows(kernel, shape):
    """Pools whose windows tile the map (strides = kernel, no padding), reduced along axes:
    max and sum of every window, against int64 loops over the windows (trailing rows and
    columns that fill no window are dropped, as by the windows)."""
    x = np.random.default_rng(sum(shape)).integers(-128, 128, shape)
    kh, kw = kernel
    oh, ow = shape[1] // kh, shape[2] // kw
    op = Node(kernel=kernel, strides=kernel, pads=(0, 0, 0, 0))
    for fn, reduce in ((np.maximum, np.max), (np.add, np.sum)):
        want = np.zeros((shape[0], oh, ow, shape[3]), dtype=np.int64)
        for i in range(oh):
            for j in range(ow):
                want[:, i, j] = reduce(x[:, i * kh : (i + 1) * kh, j * kw : (j + 1) * kw], axis=(1, 2))
        for dtype in (np.int64, np.float32):
            got = interpreter._pooled(x.astype(dtype), op, fn)
            assert got.dtype == dtype
            assert np.array_equal(got, want)


def _grid_thresholds(rng, channels: int, levels: int) -> np.ndarray:
    """Thresholds t0_c + j * spacing_c of a uniform integer grid (a uniform quantizer whose
    output step is a whole number of accumulator steps)."""
    t0 = rng.integers(-3000, 3000, (channels, 1))
    spacing = rng.integers(50, 400, (channels, 1))
    return t0 + np.arange(levels) * spacing


def _counted(v: np.ndarray, T: np.ndarray, base: np.ndarray, step: int) -> np.ndarray:
    """base_c + step * count(T_c <= v) per channel (last axis), in int64."""
    return base + step * (v.astype(np.int64)[..., None] >= T).sum(axis=-1)


@pytest.mark.parametrize("step, seed", [(1, 0), (2, 1), (1, 2)])
def test_thresholds_as_exact_affine_codes(step, seed):
    """Distinct thresholds on a uniform grid: the codes from trunc(v * a + b), no table; every
    accumulator near each threshold and far beyond the ends, as int64 and as float32."""
    rng = np.random.default_rng(seed)
    channels, levels = 6, 15
    T = _grid_thresholds(rng, channels, levels)
    base = rng.integers(-8, 8, channels)
    prepared = numeric.PreparedThresholds(T, base, np.ones(channels, dtype=np.int64), step, channels)
    assert prepared.mode == "affine"
    near = (T[:, :, None] + np.arange(-2, 3)).reshape(channels, -1).T  # (every value near a threshold)
    far = np.array([[-(1 << 23)] * channels, [(1 << 23) - 1] * channels, [0] * channels])
    v = np.concatenate([near, far, rng.integers(-20000, 20000, (50, channels))])
    want = _counted(v, T, base, step)
    assert np.array_equal(np.asarray(prepared(v), dtype=np.int64), want)
    assert np.array_equal(np.asarray(prepared(v.astype(np.float32)), dtype=np.int64), want)


def test_thresholds_with_repeats_or_off_grid_use_a_table():
    """A repeated threshold (two levels at once) or thresholds off any line: no affine codes;
    the table gives the same counts."""
    rng = np.random.default_rng(5)
    T = _grid_thresholds(rng, 4, 7)
    T[0, 3] = T[0, 2]  # a repeat
    T[1] = [-900, -899, -10, 0, 1, 700, 5000]  # off any line
    base = np.zeros(4, dtype=np.int64)
    prepared = numeric.PreparedThresholds(T, base, np.ones(4, dtype=np.int64), 1, 4)
    assert prepared.mode != "affine"
    v = rng.integers(-6000, 6000, (400, 4))
    assert np.array_equal(np.asarray(prepared(v), dtype=np.int64), _counted(v, T, base, 1))


def test_clip_bounds_that_no_value_crosses_become_one_value():
    """A per-channel hi below the common 255 is kept unless the channel never exceeds it;
    the requantizer's codes over each channel's whole accumulator range stay the formula's."""
    rng = np.random.default_rng(8)
    channels = 5
    m = rng.integers(1 << 14, 1 << 15, channels)
    shift = 20
    off = rng.integers(0, 1 << 20, channels)
    lo_acc, hi_acc = [-9000] * channels, [7000] * channels
    reach = [(int(mc) * 7000 + int(o)) >> shift for mc, o in zip(m, off)]  # each channel's greatest code
    hi = np.array([255, reach[1], reach[2] + 1, 255, reach[4]])  # channels 1, 2, 4: never above hi_c
    rq = Node(kind="multiply_shift", multiplier=m, offset=off, shift=shift, lo=np.zeros(channels, dtype=np.int64),
              hi=hi, direction=np.ones(channels, dtype=np.int64))  # fmt: skip
    acc = np.arange(-9000, 7001)[:, None].repeat(channels, axis=1)  # every accumulator of the range
    want = _requantized_all(acc, rq)
    relaxed = numeric.PreparedMultiplyShift(m, off, shift, rq.lo, hi, rq.direction, channels, 1 << 14,
                                            (lo_acc, hi_acc))  # fmt: skip
    assert np.ndim(relaxed.hi_f) == 0 and relaxed.hi_f == 255  # one scalar bound
    assert np.array_equal(np.asarray(relaxed(acc.astype(np.float32)), dtype=np.int64), want)
    hi[2] = reach[2] - 1  # channel 2 now clipped below its reach: its bound must stay
    rq.hi = hi
    kept = numeric.PreparedMultiplyShift(m, off, shift, rq.lo, hi, rq.direction, channels, 1 << 14, (lo_acc, hi_acc))
    assert np.ndim(kept.hi_f) == 1
    assert np.array_equal(np.asarray(kept(acc.astype(np.float32)), dtype=np.int64), _requantized_all(acc, rq))


def _requantized_all(acc: np.ndarray, rq: Node) -> np.ndarray:
    """clip((d * acc * m + off) >> shift, lo, hi) per channel in int64 (no saturation check)."""
    y = (rq.direction * acc.astype(np.int64) * rq.multiplier + rq.offset) >> rq.shift
    return np.clip(y, rq.lo, rq.hi)


def test_thresholds_trimmed_to_the_accumulator_range():
    """Thresholds clipped to each channel's accumulator range (repeats at both ends, as the
    compiler leaves them): with the range known, those at or below its least value join the
    base and those above its greatest go, and the affine codes hold; every accumulator of
    the range against int64 counts of the untrimmed thresholds."""
    rng = np.random.default_rng(11)
    channels, levels = 4, 15
    T = _grid_thresholds(rng, channels, levels)
    least, greatest = T[:, 2] - 5, T[:, -3] + 5  # a range that leaves thresholds at both ends
    T = np.clip(T, least[:, None], greatest[:, None] + 1)  # repeats at least and greatest + 1
    base = rng.integers(-4, 4, channels)
    ones = np.ones(channels, dtype=np.int64)
    assert numeric.PreparedThresholds(T, base, ones, 1, channels).mode != "affine"  # the repeats
    prepared = numeric.PreparedThresholds(T, base, ones, 1, channels, acc_range=(list(least), list(greatest)))
    assert prepared.mode == "affine"
    v = np.stack([np.arange(a, b + 1)[: int(min(greatest - least)) + 1] for a, b in zip(least, greatest)], axis=1)
    assert np.array_equal(np.asarray(prepared(v.astype(np.float32)), dtype=np.int64), _counted(v, T, base, 1))


@pytest.mark.parametrize("seed", [2, 5, 6])
def test_thresholds_on_a_real_grid_take_the_narrowest_line(seed):
    """ceil(t0 + j * spacing) with a real spacing, where neither line through two thresholds
    is exact but the line of narrowest spread is: affine codes, equal to int64 counts near
    every threshold and far beyond both ends."""
    rng = np.random.default_rng(seed)
    T = np.ceil(rng.uniform(-3000, 3000, (1, 1)) + np.arange(15) * rng.uniform(50, 400, (1, 1))).astype(np.int64)
    rows = [np.unique(T[0], return_counts=True)]
    assert all(numeric._Estimate._fit(rows, 1, inner, 0, 0, None) is None for inner in (True, False))
    base = np.zeros(1, dtype=np.int64)
    prepared = numeric.PreparedThresholds(T, base, np.ones(1, dtype=np.int64), 1, 1)
    assert prepared.mode == "affine"
    v = np.concatenate([(T[0][:, None] + np.arange(-2, 3)).reshape(-1), [-(1 << 23), (1 << 23) - 1]])[:, None]
    assert np.array_equal(np.asarray(prepared(v), dtype=np.int64), _counted(v, T, base, 1))
