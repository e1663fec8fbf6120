"""The golden interpreter's integer products stay exact at the ends of the value ranges.

``_matmul_exact`` uses float32 BLAS below 2**24, float64 below 2**53 and Python integers
beyond; the references here are numpy's integer matmul (no floating point) and Python
integers. The whole-model checks drive the fixture CNNs (regular, depthwise and residual
convolutions) with inputs that quantize to the ends of the input range, against the ONNX
semantics (onnxruntime with graph optimisations off; for QDQ models also ONNX's reference
implementation in float64).
"""

from __future__ import annotations

import numpy as np
import pytest

from accelgen import golden
from accelgen.runtime import interpreter
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
