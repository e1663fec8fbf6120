"""The golden interpreter's integer products stay exact at the ends of the value ranges.

``_matmul_exact`` uses float32 BLAS below 2**24, float64 below 2**53 and Python integers
beyond; the references here are numpy's integer matmul (no floating point) and Python
integers. The whole-model checks drive the fixture CNNs (regular, depthwise and residual
convolutions) with inputs that quantize to the ends of the input range, against the ONNX
semantics (onnxruntime with graph optimisations off; for QDQ models also ONNX's reference
implementation in float64). The fixtures on which onnxruntime agrees with the golden
model code for code are compared output by output, and a layer whose accumulator bound
exceeds 2**53 is checked to take the integer path.
"""

from __future__ import annotations

import numpy as np
import pytest

from accelgen import golden, ir
from accelgen.runtime import interpreter, numeric
from tests.reference import run_onnx_float64, run_reference
from tests.test_fidelity import compare, prepared


def _extreme_operands(k: int, a_max: int, b_max: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(8, k) and (k, 5) integer operands at +-a_max / +-b_max, with rows and columns of one
    sign so that some partial sums reach k * a_max * b_max exactly."""
    rng = np.random.default_rng(seed)
    a = rng.choice([-a_max, a_max], (8, k)).astype(np.int64)
    b = rng.choice([-b_max, b_max], (k, 5)).astype(np.int64)
    a[0], b[:, 0] = a_max, b_max
    a[1], b[:, 1] = -a_max, b_max
    return a, b


@pytest.mark.parametrize(
    "k, a_max, b_max",
    [  # odd magnitudes: a partial sum past a format's exact range is then not representable
        (1031, 127, 127),  # 16,662,961 < 2**24: float32 BLAS
        (1041, 127, 127),  # 16,790,289 > 2**24: float64 BLAS
        (127, 2**23 - 1, 2**23 + 1),  # just below 2**53: float64 BLAS
        (129, 2**23 - 1, 2**23 + 1),  # just above 2**53: Python integers
        (4097, 2**24 + 1, 2**24 - 1),  # near 2**60: Python integers
    ],
)
def test_matmul_is_exact_at_the_bounds_of_each_path(k, a_max, b_max):
    a, b = _extreme_operands(k, a_max, b_max, seed=k + a_max)
    want = np.array([[sum(int(x) * int(y) for x, y in zip(row, col)) for col in b.T] for row in a], dtype=object)
    got = interpreter._matmul_exact(a, b)
    assert got.dtype == np.int64
    assert np.array_equal(got.astype(object), want)
    assert int(np.abs(want).max()) == k * a_max * b_max  # the bound is reached
    if k * a_max * b_max < 2**62:
        assert np.array_equal(got, a @ b)  # numpy's integer matmul (no BLAS)


def test_depthwise_taps_are_exact_at_the_float32_bound():
    """The depthwise path sums kh*kw products per output in float32 when the bound allows."""
    k, a_max, b_max = 9, 1365, 1365  # 9 * 1365**2 = 16,769,025 < 2**24
    a, b = _extreme_operands(k, a_max, b_max, seed=3)
    assert np.array_equal(interpreter._matmul_exact(a, b), a @ b)


CNNS = ["qdq_cnn_perchannel_residual.onnx", "qop_dscnn_perchannel.onnx", "qdq_dscnn_s8w4_msdomain.onnx",
        "qop_cnn_perchannel_residual.onnx", "qcdq_cnn_w3a3.onnx"]  # fmt: skip


@pytest.mark.parametrize("file", CNNS)
def test_cnns_at_the_ends_of_the_input_range_match_the_onnx_semantics(file):
    path, graph, x, _, step = prepared(file)
    rng = np.random.default_rng(5)
    big = np.float32(1e4)  # far beyond every input scale: every code at qmin or qmax
    batches = [
        np.full_like(x[:4], big),
        np.full_like(x[:4], -big),
        np.where(rng.random(x[:64].shape) < 0.5, big, -big).astype(np.float32),
        np.where(rng.random(x[:64].shape) < 0.5, big, np.float32(0)).astype(np.float32),
    ]
    for xb in batches:
        ours = next(iter(golden.run(graph, xb).values()))
        ref = run_reference(path, xb, ort_optimize=False)
        r = compare(ours, ref, step)
        assert round(r["max_steps"]) <= 1, (file, r)
        if r["identical"] < 1.0:  # onnxruntime's float32 arithmetic: the float64 semantics decide
            assert file.startswith(("qdq", "qcdq")), (file, r)
            exact = compare(ours, run_onnx_float64(path, xb), step)
            assert exact["identical"] == 1.0, (file, exact)


# -- the prepared requantizers and plans (accelgen/runtime/numeric.py, interpreter.py) ------


def _count_reference(acc, T, base, direction, step):
    """base + step * count(direction * acc >= T[c]) in Python integers, element by element."""
    rows, channels = T.shape[0], acc.shape[-1]
    b = np.broadcast_to(base, (channels,))
    d = np.broadcast_to(direction, (channels,))
    out = np.empty(acc.shape, dtype=np.int64)
    for idx in np.ndindex(acc.shape):
        c = idx[-1]
        v = int(d[c]) * int(acc[idx])
        out[idx] = int(b[c]) + step * sum(1 for t in T[c if rows > 1 else 0] if v >= int(t))
    return out


@pytest.mark.parametrize("lut_entries, mode", [(1 << 19, "lut"), (512, "bucket"), (0, "search")])
@pytest.mark.parametrize("shared", [False, True])
def test_prepared_thresholds_count_exactly_at_every_threshold(lut_entries, mode, shared):
    """Every threshold, one below and one above it, the ends of int64's useful range, each
    channel's own direction and base: the table, the bucketed search and the one-array search
    all give the count."""
    rng = np.random.default_rng(11)
    channels, levels = 4, 15
    rows = 1 if shared else channels
    T = np.sort(rng.integers(-300, 300, (rows, levels)), axis=1)
    T[0, 3:5] = T[0, 3]  # a repeated threshold (a skipped output level)
    T[:, 0] = T[:, 1] - 1  # a gap of 1: buckets of one key, so the table is the lookup table
    base = rng.integers(-8, 0, (channels,))
    direction = np.array([1, -1, 1, -1])
    step = 2
    probes = np.unique(np.concatenate([T.reshape(-1) + o for o in (-1, 0, 1)] + [[-(2**62), 2**62, 0]]))
    acc = np.stack([probes, -probes, probes, -probes], axis=-1)
    prepared = numeric.PreparedThresholds(T, base, direction, step, channels, lut_entries)
    assert prepared.mode == mode
    want = _count_reference(acc, T, base, direction, step)
    assert np.array_equal(prepared(acc), want)
    assert np.array_equal(prepared(acc[:64].astype(np.float64)), want[:64])  # float accumulators
    assert np.array_equal(numeric.apply_requant(acc, ir.Thresholds(T, base, direction, step)), want)
    # every direction +1: float accumulators keyed in float (the lookup table), or as int64
    ones = np.ones(channels, dtype=np.int64)
    plain = numeric.PreparedThresholds(T, base, ones, step, channels, lut_entries)
    assert ("float_keys" in plain.__dict__) == (mode == "lut" and not shared)
    want = _count_reference(acc, T, base, ones, step)
    for dtype in (np.float32, np.float64):
        assert np.array_equal(plain(acc.astype(dtype)), want)


@pytest.mark.parametrize("jitter", [0.0, 0.8])
@pytest.mark.parametrize("shared", [False, True])
def test_prepared_thresholds_estimate_counts_exactly_at_every_threshold(shared, jitter):
    """Thresholds of an affine requantizer (evenly spaced up to rounding, a cluster at each
    end as a clipped range leaves, a repeated one) too spread for a lookup table: the
    corrected affine estimate, at every threshold, one below and one above, and the ends of
    int64's useful range, against Python integers; a spacing no affine estimate follows
    within one level falls back to the search. Evenly spaced (a skipped level included),
    the estimate needs one comparison; up to 0.8 of a level off their line, two."""
    channels, levels = 4, 255
    scale = np.array([4100.3] if shared else [732.4, 1000.7, 513.3, 2048.0])[:, None]  # beyond 2**19 keys
    # (thresholds drifting off their line by up to 0.8 of a level: the estimate needs both
    # corrections)
    T = np.floor((np.arange(levels) + jitter * np.sin(np.arange(levels) / 10)) * scale - 90_000).astype(np.int64)
    T[:, :40] = T[:, 40:41]  # the lowest 40 levels at one threshold (a clipped range)
    T[:, -30:] = T[:, -31:-30]
    if not shared and not jitter:
        T[0, 100:102] = T[0, 100]  # a skipped output level: a gap of two levels
    base = np.array([-128, 0, -5, 3])
    direction = np.array([1, -1, 1, -1])
    step = 1 if shared else 2
    probes = np.unique(np.concatenate([T.reshape(-1) + o for o in (-1, 0, 1)] + [[-(2**62), 2**62, 0]]))
    acc = np.stack([probes, -probes, probes, -probes], axis=-1)
    prepared = numeric.PreparedThresholds(T, base, direction, step, channels)
    assert prepared.mode == "estimate" and prepared.estimate.one_sided == (not jitter)
    want = _count_reference(acc, T, base, direction, step)
    assert np.array_equal(prepared(acc), want)
    assert np.array_equal(prepared(acc[1:-1].astype(np.float32)), want[1:-1])  # float32 accumulators
    # with a bound on |acc| (that of every probe but the ends of int64's range): guard entries
    # instead of the clip
    bound = int(np.abs(acc[1:-1]).max())
    guarded = numeric.PreparedThresholds(T, base, direction, step, channels, acc_bound=bound)
    assert guarded.mode == "estimate" and guarded.estimate.guard > 0
    for dtype in (np.int64, np.float32, np.float64):
        assert np.array_equal(guarded(acc[1:-1].astype(dtype)), want[1:-1])
    T[0, 120:] += 200_000  # one jump far wider than a level: the estimate is off by many
    assert numeric.PreparedThresholds(T, base, direction, step, channels).mode != "estimate"


def test_prepared_thresholds_with_unsorted_rows_fall_back_to_the_loop():
    T = np.array([[5, 1, 9]])
    prepared = numeric.PreparedThresholds(T, np.array([0]), np.array([1]), 1, 1)
    assert prepared.mode == "loop"
    acc = np.arange(-2, 12).reshape(-1, 1)
    assert np.array_equal(prepared(acc), np.searchsorted(T[0], acc, side="right"))  # the loop's own rule


@pytest.mark.parametrize("margin", [-1, 0])
def test_prepared_multiply_shift_uses_float64_only_below_2_53(margin):
    """acc * multiplier + offset reaches 2**53 - 1 (float64 path, exact) or 2**53 (int64 path);
    odd values so that a rounding float64 would be off by one after the shift."""
    m, shift = (1 << 31) - 1, 20
    acc_bound = ((1 << 53) - 1) // m
    offset = (1 << 53) - 1 - acc_bound * m + 1 + margin  # acc_bound * m + offset = 2**53 + margin
    acc = np.array([[acc_bound], [acc_bound - 1], [-acc_bound], [0], [1], [-1]], dtype=np.int64)
    prepared = numeric.PreparedMultiplyShift([m], [offset], shift, [-(1 << 40)], [1 << 40], [1], 1, acc_bound=acc_bound)
    assert prepared.float == (margin < 0)
    want = np.array([[max(-(1 << 40), min(1 << 40, (int(a) * m + offset) >> shift))] for a in acc[:, 0]])
    assert np.array_equal(prepared(acc), want)
    assert np.array_equal(prepared(acc.astype(np.float64)), want)
    assert np.array_equal(
        prepared(acc), numeric.apply_multiply_shift(acc, [m], [offset], shift, [-(1 << 40)], [1 << 40], [1])
    )


@pytest.mark.parametrize("k, dtype", [(1048, np.float32), (1049, np.float64)])
def test_dense_plan_picks_the_float_type_from_the_row_bound(k, dtype):
    """int8 codes (zero point -1: |x - zp| <= 128) and weights of +-125: 1048 * 128 * 125 =
    16,768,000 < 2**24 < 1049 * 128 * 125; the extreme row reaches the bound."""
    from accelgen.runtime.program import Node

    q = Node(bits=8, signed=True, narrow=False, bipolar=False, zero_point=np.array([-1]), axis=None)
    graph = Node(tensors={"x": Node(qtype=q)})
    rng = np.random.default_rng(k)
    w = rng.choice([-125, 125], (3, k)).astype(np.int64)
    w[0] = 125
    op = Node(kind="Dense", name="d", inputs=["x"], outputs=["y"], weights=w, requant=None)
    x = rng.choice([-128, 127], (6, k)).astype(np.int64)
    x[0] = 127
    got = interpreter._dense(op, [x], graph)
    assert interpreter._PLANS[id(op)][2][2].dtype == dtype  # the transposed weights
    want = (x + 1) @ w.T  # numpy's integer matmul
    assert int(np.abs(want).max()) == k * 128 * 125  # the extreme row: all at 127 - (-1) = 128
    assert np.array_equal(got, want)


@pytest.mark.parametrize("margin", [-1, 0])
def test_multiply_shift_folded_into_the_weights_only_below_2_53(margin):
    """A Dense whose multiply-shift is folded into float64 weights when
    sum|w| * max|x - zp| * multiplier + |offset| < 2**53: here 128 * (2**46 - 1) + 128 + margin
    is 2**53 - 1 (folded) or 2**53 (not); every int8 code, both weight signs, against Python
    integers."""
    from accelgen.runtime.program import Node

    q = Node(bits=8, signed=True, narrow=False, bipolar=False, zero_point=np.array([0]), axis=None)
    graph = Node(tensors={"x": Node(qtype=q)})
    m, offset, shift = (1 << 46) - 1, 128 + margin, 40
    rq = Node(kind="multiply_shift", multiplier=np.array([m, m]), offset=np.array([offset, offset]), shift=shift,
              lo=np.array([-(1 << 20)] * 2), hi=np.array([1 << 20] * 2), direction=np.array([1, -1]))  # fmt: skip
    op = Node(kind="Dense", name="d", inputs=["x"], outputs=["y"], weights=np.array([[1], [-1]]), requant=rq)
    assert (interpreter._fused_shift(op, op.weights, 128) is not None) == (margin < 0)
    x = np.arange(-128, 128).reshape(-1, 1)
    got = interpreter._dense(op, [x], graph)
    want = [[(d * w * int(v) * m + offset) >> shift for w, d in ((1, 1), (-1, -1))] for v in x[:, 0]]
    assert np.array_equal(got, np.array(want))


@pytest.mark.parametrize(
    "mult, strides, dilations", [(1, (1, 1), (1, 1)), (1, (2, 2), (1, 1)), (1, (2, 3), (2, 2)), (2, (1, 2), (2, 1))]
)
def test_depthwise_taps_match_an_integer_convolution(mult, strides, dilations):
    """The depthwise path (taps in float32, a few images at a time, channels merged with the
    width, the columns split by phase for a stride across) against a loop over output pixels in int64, at the
    ends of the int8 range (a batch of 70: chunks of unequal size)."""
    from accelgen.runtime.program import Node

    rng = np.random.default_rng(mult + strides[1])
    c, kh, kw = 8, 3, 3
    q = Node(bits=8, signed=True, narrow=False, bipolar=False, zero_point=np.array([3]), axis=None)
    graph = Node(tensors={"x": Node(qtype=q)})
    w = rng.choice([-127, -1, 0, 1, 127], (c * mult, 1, kh, kw)).astype(np.int64)
    op = Node(kind="Conv", name="dw", inputs=["x"], outputs=["y"], weights=w, groups=c, strides=strides,
              pads=(1, 2, 1, 0), dilations=dilations, requant=None)  # fmt: skip
    x = rng.choice([-128, 127, 3, 0], (70, 9, 7, c)).astype(np.int64)
    got = interpreter._conv(op, [x], graph)
    xp = np.pad(x - 3, ((0, 0), (1, 1), (2, 0), (0, 0)))
    oh = (xp.shape[1] - (kh - 1) * dilations[0] - 1) // strides[0] + 1
    ow = (xp.shape[2] - (kw - 1) * dilations[1] - 1) // strides[1] + 1
    want = np.zeros((70, oh, ow, c * mult), dtype=np.int64)
    for y in range(oh):
        for z in range(ow):
            for i in range(kh):
                for j in range(kw):
                    v = xp[:, y * strides[0] + i * dilations[0], z * strides[1] + j * dilations[1], :]
                    want[:, y, z, :] += np.repeat(v, mult, axis=-1) * w[:, 0, i, j]
    assert got.shape == want.shape
    assert np.array_equal(got, want)


def test_reused_buffers_never_change_a_returned_value():
    """Intermediates live in buffers reused from one run of a graph to the next: what a run
    returned (outputs, or every tensor with ``keep``) must not change when the graph runs
    again on other inputs; and each run equals a run on a freshly compiled graph (no buffer)."""
    from accelgen.pipeline import compile_model
    from tests.data import as_images, digits_split

    path = "tests/models/qdq_cnn_perchannel_residual.onnx"
    graph = compile_model(path).graph
    _, _, x_test, _ = digits_split()
    a, b = as_images(x_test[:40]), as_images(x_test[40:80])
    first = golden.run(graph, a)
    kept = {name: value.copy() for name, value in golden.run(graph, a, keep=True).items()}
    kept_live = golden.run(graph, a, keep=True)
    second = golden.run(graph, b)
    again = golden.run(graph, a)
    fresh_b = golden.run(compile_model(path).graph, b)
    for name in graph.outputs:
        assert np.array_equal(first[name], again[name]), name
        assert np.array_equal(second[name], fresh_b[name]), name
        assert not np.array_equal(first[name], second[name]), "inputs chosen to differ"
    for name, value in kept.items():
        assert np.array_equal(kept_live[name], value), f"a kept tensor '{name}' was overwritten"


@pytest.mark.parametrize("dialect", ["qonnx", "qdq"])
def test_the_host_quantizer_divides_as_its_dialect_defines(tmp_path, dialect):
    """QONNX Quant rounds x / scale as the real number it is; ONNX QuantizeLinear divides its
    float32 tensor in float32 (onnxruntime, ONNX's reference implementation). Inputs one
    float32 step either side of each rounding tie (k + 1/2) * scale, and on it, with a scale
    that is not a power of two: the float32 quotient lands on the tie for some of them and
    rounds to even, one code off the real one (x = 1.5436499 / 0.0123 is 125.49999697)."""
    from fractions import Fraction

    from accelgen.pipeline import compile_model
    from tests.builders import qdq_mlp, qonnx_quant_mlp, save

    scale = np.float32(0.0123)
    model = qonnx_quant_mlp(act_bits=8.0, scale=float(scale)) if dialect == "qonnx" else qdq_mlp(float(scale))
    graph = compile_model(save(model, tmp_path / "m.onnx")).graph
    (quantize,) = [op for op in graph.ops if op.kind == "Quantize"]
    ties = (np.arange(255, dtype=np.float64) + 0.5) * float(scale)
    x = np.concatenate([np.nextafter(ties.astype(np.float32), np.float32(d)) for d in (-np.inf, np.inf)])
    x = np.concatenate([x, ties.astype(np.float32)])
    x = np.resize(x, (-(-x.size // 16), 16)).astype(np.float32)
    got = golden.run(graph, x, keep=True)[quantize.outputs[0]]

    def exact(v: float) -> int:
        q = Fraction(v) / Fraction(float(scale))
        k = q.numerator // q.denominator
        k += (q - k > Fraction(1, 2)) or (q - k == Fraction(1, 2) and k % 2 == 1)
        return min(max(k, 0), 255)

    real = np.array([[exact(float(v)) for v in row] for row in x])
    float32 = np.clip(np.round(x / scale), 0, 255)
    assert np.sum(float32 != real) >= 20
    np.testing.assert_array_equal(got, real if dialect == "qonnx" else float32)


@pytest.mark.parametrize("kind", ["Dense", "Conv"])
@pytest.mark.parametrize("codes_dtype", [np.int64, np.float32])
def test_accumulators_beyond_2_53_take_the_integer_path(kind, codes_dtype):
    """A layer whose accumulator bound (sum |w| * max |x - zp|) exceeds 2**53 is summed in
    Python integers: here the row sums to 254 * (2**47 + 1) + 1, odd and beyond 2**54, which
    no float64 holds (float64 BLAS would round it). Its input as int64 codes or as the
    float32 codes the interpreter holds between layers; against Python integers."""
    from accelgen.runtime.program import Node

    q = Node(bits=8, signed=True, narrow=False, bipolar=False, zero_point=np.array([0]), axis=None)
    graph = Node(tensors={"x": Node(qtype=q)})
    w = np.array([[(1 << 47) + 1, (1 << 47) + 1, 1], [1, -1, 3]], dtype=np.int64)
    x = np.array([[127, 127, 1], [-128, 127, -3], [0, 1, 0]], dtype=np.int64)
    want = np.array([[sum(int(a) * int(b) for a, b in zip(row, col)) for col in w] for row in x])
    assert int(want[0, 0]) == 254 * ((1 << 47) + 1) + 1 and int(float(want[0, 0])) != int(want[0, 0])
    if kind == "Dense":
        op = Node(kind="Dense", name="d", inputs=["x"], outputs=["y"], weights=w, requant=None)
        got = interpreter._dense(op, [x.astype(codes_dtype)], graph)
        assert interpreter._PLANS[id(op)][2][1] is None  # no float centering: the integer path
    else:  # the same products as a 1x3 convolution over a 1x3 image
        op = Node(kind="Conv", name="c", inputs=["x"], outputs=["y"], weights=w.reshape(2, 3, 1, 1)[:, :, :, :],
                  groups=1, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), requant=None)  # fmt: skip
        got = interpreter._conv(op, [x.reshape(3, 1, 1, 3).astype(codes_dtype)], graph).reshape(3, 2)
        assert interpreter._PLANS[id(op)][2][1] is None  # no float type: the integer path
    assert got.dtype == np.int64
    assert np.array_equal(got.astype(object), want.astype(object))


#: the QDQ / QOperator fixtures on which the golden model and onnxruntime (graph
#: optimisations off) agree on every output code; the other two (resnet8, dscnn msdomain)
#: differ by one step where onnxruntime requantizes in float (see test_fidelity)
ORT_EXACT = ["qdq_mlp_pertensor.onnx", "qdq_mlp_s8.onnx", "qdq_cnn_perchannel_residual.onnx",
             "qop_mlp_pertensor.onnx", "qop_cnn_perchannel_residual.onnx", "torch_qdq_mlp.onnx",
             "qcdq_mlp_w4a4.onnx", "qcdq_cnn_w3a3.onnx", "torch_ao_qat_mlp_opset13.onnx",
             "torch_ao_qat_mlp_opset20.onnx", "qop_dscnn_perchannel.onnx", "qop_mlp_matmul_add.onnx"]  # fmt: skip


@pytest.mark.parametrize("file", ORT_EXACT)
def test_golden_equals_onnxruntime_code_for_code(file):
    """The digits test split, random inputs over the input's range and beyond, and inputs at
    the ends of the input range (every code at qmin or qmax, or mixed): every output the
    same code as onnxruntime's (below half a step apart: float noise of a float tail only);
    run twice, so that the second run reuses the first's buffers."""
    path, graph, x, _, step = prepared(file)
    rng = np.random.default_rng(7)
    big = np.float32(1e4)
    batches = [
        x[:360],
        (rng.standard_normal(x[:97].shape) * np.abs(x).max()).astype(np.float32),
        np.full_like(x[:4], big),
        np.full_like(x[:4], -big),
        np.where(rng.random(x[:64].shape) < 0.5, big, -big).astype(np.float32),
    ]
    for xb in batches:
        ref = run_reference(path, xb, ort_optimize=False)
        for _ in range(2):
            ours = next(iter(golden.run(graph, xb).values()))
            r = compare(ours, ref, step)
            assert r["max_steps"] < 0.5, (file, r)
