"""Integer requantization against a float reference written here, on whole accumulator ranges."""

from __future__ import annotations

import numpy as np
import pytest

from accelgen import ir
from accelgen.config import CompileConfig
from accelgen.errors import InputError
from accelgen.passes.requant import (
    apply_requant,
    fit_multiply_shift,
    integer_requant,
    levels,
    search_thresholds,
)


def reference_chain(acc, scale, mul, add, relu, clip, q: ir.QType):
    """The float semantics, spelled out independently of accelgen: value -> code."""
    v = acc.astype(np.float64) * scale * mul + add
    if relu:
        v = np.maximum(v, 0.0)
    if clip is not None:
        v = np.clip(v, *clip)
    if q.bipolar:
        return np.where(v >= 0, 1, -1)
    code = np.round(v / q.scale[0] + q.zero_point[0])  # numpy rounds half to even
    return np.clip(code, q.qmin, q.qmax).astype(np.int64)


def _qtypes():
    out = []
    for bits in range(1, 9):
        for signed in (False, True):
            if bits == 1 and signed:
                out.append(ir.QType(1, True, (0.37,), (0,), bipolar=True))
                continue
            zp = 0 if signed else min(3, (1 << bits) - 1)
            out.append(ir.QType(bits, signed, (0.0173 * (1 + bits),), (zp,)))
    return out


@pytest.mark.parametrize("q", _qtypes(), ids=lambda q: q.describe())
@pytest.mark.parametrize("chain", ["affine", "negative", "relu", "clip6", "pow2"])
def test_thresholds_exact_on_whole_range(q, chain):
    rng = np.random.default_rng(hash((q.bits, q.signed, chain)) % 2**32)
    channels = 5
    lo = -rng.integers(200, 3000, channels)
    hi = rng.integers(200, 3000, channels)
    scale = 2.0**-7 if chain == "pow2" else 0.00731
    mul = rng.uniform(0.5, 2.0, channels) * (-1 if chain == "negative" else 1)
    if chain == "pow2":
        mul = 2.0 ** rng.integers(-2, 2, channels)
    add = rng.uniform(-1, 1, channels) if chain != "pow2" else rng.integers(-4, 4, channels) / 8
    relu = chain in ("relu", "clip6")
    clip = (0.0, 6.0 * q.scale[0]) if chain == "clip6" else None
    direction = np.where(mul < 0, -1, 1)

    def fn(a, ch):
        return reference_chain(direction[ch] * a, scale, mul[ch], add[ch], relu, clip, q)

    lo_d = np.where(direction > 0, lo, -hi)
    hi_d = np.where(direction > 0, hi, -lo)
    T = search_thresholds(fn, lo_d, hi_d, q)
    base, step, count = levels(q)
    th = ir.Thresholds(T, np.array([base]), direction, step)
    for c in range(channels):
        acc = np.arange(lo[c], hi[c] + 1)
        want = reference_chain(acc, scale, mul[c], add[c], relu, clip, q)
        got = apply_requant(acc[:, None], ir.Thresholds(T[c : c + 1], th.base, direction[c : c + 1], step))[:, 0]
        assert np.array_equal(got, want), f"channel {c}: first mismatch at acc {acc[np.argmax(got != want)]}"
    fit = fit_multiply_shift(T, lo_d, hi_d, q, 32)
    if fit is None:
        # a multiply-shift must exist for a plain affine chain with wide output
        assert q.bipolar or chain == "pow2", "no multiply-shift found for a tie-free chain"
        return
    m, b, s, olo, ohi = fit
    ms = ir.MultiplyShift(m, b, s, olo, ohi, direction)
    for c in range(channels):
        acc = np.arange(lo[c], hi[c] + 1)
        want = reference_chain(acc, scale, mul[c], add[c], relu, clip, q)
        one = ir.MultiplyShift(m[c : c + 1], b[c : c + 1], s, olo[c : c + 1], ohi[c : c + 1], direction[c : c + 1])
        got = apply_requant(acc[:, None], one)[:, 0]
        assert np.array_equal(got, want), f"multiply-shift channel {c}: mismatch at {acc[np.argmax(got != want)]}"
    assert ms.multiplier_bits <= 32


def test_half_even_ties_need_thresholds():
    """Power-of-two scales hit exact .5 ties; half-to-even is not an affine floor."""
    q = ir.QType(8, True, (1.0,), (0,))
    lo, hi = np.array([-64]), np.array([64])

    def fn(a, ch):
        return reference_chain(a, 0.5, 1.0, 0.0, False, None, q)  # round(a / 2), ties to even

    T = search_thresholds(fn, lo, hi, q)
    assert fit_multiply_shift(T, lo, hi, q, 32) is None
    acc = np.arange(-64, 65)
    th = ir.Thresholds(T, np.array([q.qmin]), np.array([1]))
    assert np.array_equal(apply_requant(acc[:, None], th)[:, 0], np.round(acc / 2).astype(np.int64))


def _dense_graph(weights, x_q, requant):
    tensors = {
        "x": ir.Tensor("x", (None, weights.shape[1]), "codes", x_q),
        "y": ir.Tensor("y", (None, weights.shape[0]), "codes", requant.out_qtype),
    }
    op = ir.Dense(name="fc", inputs=("x",), outputs=("y",), source="fc", weights=weights,
                  w_qtype=ir.QType(4, True, tuple(np.linspace(0.01, 0.05, weights.shape[0])), (0,), axis=0),
                  requant=requant)  # fmt: skip
    return ir.Graph("t", tensors, [op], ["x"], ["y"])


@pytest.mark.parametrize("policy", ["auto", "thresholds", "multiply_shift"])
def test_dense_layer_matches_numpy(policy):
    rng = np.random.default_rng(7)
    w = rng.integers(-8, 8, (6, 20))
    x_q = ir.QType(8, False, (0.02,), (128,))
    w_scale = np.linspace(0.01, 0.05, 6)
    bias = rng.uniform(-0.3, 0.3, 6)
    out_q = ir.QType(8, False, (0.011,), (0,))
    fr = ir.FloatRequant((ir.FloatStep("add", bias), ir.FloatStep("relu")), out_q)
    g = _dense_graph(w, x_q, fr)
    g2, changed = integer_requant(g, CompileConfig(requant=policy))
    assert changed
    rq = g2.ops[0].requant
    assert rq.kind == ("thresholds" if policy == "thresholds" else "multiply_shift")
    x = rng.integers(0, 256, (500, 20))
    acc = (x - 128) @ w.T
    real = acc * 0.02 * w_scale + bias
    want = np.clip(np.round(np.maximum(real, 0) / 0.011), 0, 255)
    assert np.array_equal(apply_requant(acc, rq), want)


def test_multiply_shift_policy_names_layer_when_impossible():
    q = ir.QType(8, True, (1.0,), (0,))
    fr = ir.FloatRequant((), q)
    w = np.ones((1, 4), dtype=np.int64)
    g = _dense_graph(w, ir.QType(8, True, (0.5,), (0,)), fr)  # acc * 0.5 * w_scale: ties occur
    g = g.copy(ops=[g.ops[0].replace(w_qtype=ir.QType(4, True, (1.0,), (0,)))])
    with pytest.raises(InputError, match="layer 'fc'.*--requant thresholds"):
        integer_requant(g, CompileConfig(requant="multiply_shift"))


@pytest.mark.parametrize(
    "epsilon, var",
    [
        (2.0**-60, 4.0),  # sqrt(4 + 2**-60) is 2 in float64: ties there, just below them in the reals
        (0.0, 4.0),  # exact ties: rounded half to even
        (1e-5, 3.99999),  # no tie near: the float64 chain alone decides
    ],
)
def test_batchnorm_chains_round_like_the_real_numbers(tmp_path, epsilon, var):
    """Conv -> BatchNorm -> Relu -> Quant at (near-)ties: the requantizer's codes are those of
    the model's constants in exact arithmetic (Fractions here, sqrt compared by squares), on
    every input code: code = round(x * 32 / 8 / sqrt(var + epsilon) / 0.25) for channel 0. The
    exact evaluator the MLPerf Tiny networks are checked with (tests/exact_qonnx.py) agrees."""
    from fractions import Fraction

    from accelgen import golden
    from accelgen.pipeline import compile_model
    from tests import exact_qonnx
    from tests.builders import qonnx_conv_bn, save

    f32 = lambda v: Fraction(float(np.float32(v)))  # noqa: E731
    path = save(qonnx_conv_bn(epsilon, var=[var, var], gamma=[1.0, 3.0]), tmp_path / "bn.onnx")
    codes = np.arange(-128, 128)
    x = (codes.astype(np.float32) * np.float32(2**-4)).reshape(-1, 1, 1, 16)
    (got,) = golden.run(compile_model(path).graph, x).values()
    got = np.rint(got / 0.25).astype(np.int64)

    def exact(code: int, gamma: float) -> int:
        num = Fraction(code * 32, 2**7) * f32(gamma) / Fraction(1, 4)  # t = num / sqrt(v)
        v = f32(var) + f32(epsilon)
        if num <= 0:
            return 0
        k = 0
        while (k + 1) ** 2 * v <= num * num:  # k = floor(t)
            k += 1
        half = num * num - (k + Fraction(1, 2)) ** 2 * v
        return min(255, k + (half > 0 or (half == 0 and k % 2 == 1)))

    want = np.array([[exact(int(c), g) for c in codes] for g in (1.0, 3.0)]).T.reshape(-1, 16, 2).transpose(0, 2, 1)
    np.testing.assert_array_equal(got.reshape(-1, 2, 16), want)
    env, decided = exact_qonnx.run(path, x)
    np.testing.assert_array_equal(env["y"].codes.reshape(-1, 2, 16), want)
    assert decided["y"] > 0 or epsilon == 1e-5  # the ties went through its rational path
