"""`accelgen quantize`: a float ONNX model made by torch.onnx here -> a QONNX model that accelgen
compiles exactly (golden = the qonnx executor); bad input exits 2 with a message."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from accelgen import golden
from accelgen.cli import main
from accelgen.pipeline import compile_model
from tests.data import digits_split
from tests.reference import run_reference


class _MLP(nn.Module):
    def __init__(self, sigmoid: bool = False):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 32), nn.Linear(32, 10)
        self.sigmoid = sigmoid

    def forward(self, x):
        h = self.fc1(x)
        h = torch.sigmoid(h) if self.sigmoid else F.relu(h)
        return self.fc2(h)


def _export(model: nn.Module, path, n_in: int = 64):
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, n_in),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})  # fmt: skip
    return path


@pytest.fixture(scope="module")
def float_mlp(tmp_path_factory):
    """A float MLP trained briefly on digits, its ONNX file and an .npz of (part of) the train split."""
    d = tmp_path_factory.mktemp("quant_cli")
    x, y, _, _ = digits_split()
    torch.manual_seed(0)
    model = _MLP()
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(30):
        opt.zero_grad()
        F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    np.savez(d / "data.npz", X=x[:800], y=y[:800])
    return _export(model, d / "float.onnx"), d / "data.npz"


def test_quantize_a_torch_onnx_model_into_qonnx_that_accelgen_computes_exactly(float_mlp, tmp_path, capsys):
    onnx_path, data = float_mlp
    out = tmp_path / "q.onnx"
    code = main(["quantize", str(onnx_path), "--data", str(data), "--w-bits", "2", "--a-bits", "2",
                 "--method", "lsq", "--epochs", "3", "-o", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    _, _, x_test, y_test = digits_split()
    ref = run_reference(out, x_test)
    compiled = compile_model(str(out))
    ours = next(iter(golden.run(compiled.graph, {compiled.graph.inputs[0]: x_test}).values()))
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert (ours.argmax(1) == y_test).mean() > 0.8  # W2A2 after 3 epochs, from a ~95 % float model
    weight_bits = {op.w_qtype.bits for op in compiled.graph.ops if getattr(op, "weights", None) is not None}
    assert weight_bits == {2}


def test_an_operator_it_cannot_convert_is_named(tmp_path, capsys):
    path = _export(_MLP(sigmoid=True), tmp_path / "sigmoid.onnx")
    code = main(["quantize", str(path), "--data", "digits", "-o", str(tmp_path / "q.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "Sigmoid" in err and "node '" in err and "Traceback" not in err


def test_data_that_does_not_fit_the_model_exits_2(float_mlp, tmp_path, capsys):
    onnx_path, _ = float_mlp
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((20, 50), np.float32), y=np.zeros(20, np.int64))
    code = main(["quantize", str(onnx_path), "--data", str(bad), "-o", str(tmp_path / "q.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "(50,)" in err and "(64,)" in err


def test_data_without_labels_exits_2(float_mlp, tmp_path, capsys):
    onnx_path, _ = float_mlp
    bad = tmp_path / "nolabels.npz"
    np.savez(bad, X=np.zeros((20, 64), np.float32))
    assert main(["quantize", str(onnx_path), "--data", str(bad), "-o", str(tmp_path / "q.onnx")]) == 2
    assert "no array y" in capsys.readouterr().err


@pytest.mark.parametrize("flag,value", [("--w-bits", "9"), ("--w-bits", "0"), ("--a-bits", "ternary"),
                                        ("--w-bits", "2.5"), ("--a-bits", "x")])  # fmt: skip
def test_bits_out_of_range_exit_2(float_mlp, tmp_path, capsys, flag, value):
    onnx_path, data = float_mlp
    code = main(["quantize", str(onnx_path), "--data", str(data), flag, value, "-o", str(tmp_path / "q.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and flag in err and not (tmp_path / "q.onnx").exists()
