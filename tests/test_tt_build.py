"""Tensor-train layers end to end: QONNX TT chain -> `accelgen build` (C-simulation) -> `accelgen run`.

The models come from tests/tt_models.py (a TT contraction written as Reshape / Transpose /
MatMul between QONNX quantizers). Each is built for Ultra96 with C-simulation, which must
be bit-exact against the golden model on every layer, and the emulated hardware's outputs
(``accelgen run OUTDIR``, C-simulation backend) must equal, on every element of a random
batch, the numpy integer reference of tests/test_tt_frontend.py (exact rounding), and the
qonnx executor within its float32 arithmetic (at most one output step, on a few ties of the
784-term dense sums).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from accelgen.cli import main
from tests.reference import run_reference
from tests.test_tt_frontend import codes_of, f32, output_codes, quant_codes, reference_codes
from tests.tt_models import tt_model

pytestmark = pytest.mark.csim

CASES = {
    # name: (modes_in, modes_out, ranks, order, keyword arguments)
    "d2_left_to_right_dense_tail": ((4, 4), (3, 2), (1, 3, 1), (0, 1), {"dense_out": 5}),
    "d3_inside_out": ((2, 3, 2), (2, 2, 3), (1, 3, 4, 1), (1, 0, 2), {"core_bits": 3}),
    "d4_784_to_512_rank8": ((4, 7, 4, 7), (4, 4, 8, 4), (1, 8, 8, 8, 1), None, {"dense_out": 10, "core_bits": 4}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_tt_model_builds_and_emulated_hardware_equals_qonnx(name, tmp_path, capsys):
    modes_in, modes_out, ranks, order, kw = CASES[name]
    model, spec = tt_model(modes_in, modes_out, ranks, order, seed=3, **kw)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(5).uniform(-0.5, 1.5, (40, int(np.prod(modes_in)))).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    assert main(["build", str(path), "-b", "ultra96", "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["csim"]["passed"] is True and report["csim"]["mismatches"] == 0
    tt_layers = [la for la in report["layers"] if la["op"] == "TTDense"]
    assert len(tt_layers) == 1 and tt_layers[0]["kernel"] == "tt"
    assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    got = np.load(tmp_path / "y.npy")
    want = reference_codes(spec, x)
    scale = spec.out_scale
    if spec.dense is not None:
        dq = spec.dense
        w_codes = codes_of(dq["w"], f32(dq["w_scale"]), dq["w_bits"], True, narrow=True)
        acc = want @ w_codes
        want = quant_codes(acc * (f32(spec.out_scale) * f32(dq["w_scale"])) / f32(dq["out_scale"]), 1.0, 8, True)
        scale = dq["out_scale"]
    np.testing.assert_array_equal(output_codes(got, scale), want)
    assert len(np.unique(want)) > 3  # the outputs are not clipped flat
    steps = np.abs(got - run_reference(path, x)) / f32(scale)
    assert round(float(steps.max())) <= 1 and (steps < 0.5).mean() >= 0.99
