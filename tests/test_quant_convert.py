"""Float torch models to Brevitas: per-layer bit widths (mixed precision), residual adds and
pools, exported and compiled exactly (golden = the qonnx executor = torch)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from accelgen import golden
from accelgen.errors import InputError
from accelgen.pipeline import compile_model
from accelgen.quant import freeze_weights_, to_brevitas
from accelgen.quant.train import calibrate, export_qonnx
from tests.reference import run_reference


class _MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(16, 12), nn.Linear(12, 4)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.pool, self.gap, self.fc = nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Linear(4, 3)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = F.relu(x + self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


def _weight_bits(path) -> list[float]:
    model = onnx.load(str(path))
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node if n.op_type == "Constant"})
    return [float(consts[n.input[3]]) for n in model.graph.node if n.op_type == "Quant" and n.input[0] in consts]


def _export_and_compare(qmodel, x, path):
    calibrate(qmodel, x)
    freeze_weights_(qmodel)
    export_qonnx(qmodel, x[:1], path)
    with torch.no_grad():
        expected = qmodel.eval()(x).numpy()
    ref = run_reference(path, x.numpy())
    np.testing.assert_allclose(ref, expected, atol=1e-5)
    compiled = compile_model(str(path))
    ours = next(iter(golden.run(compiled.graph, {compiled.graph.inputs[0]: x.numpy()}).values()))
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_per_layer_bits_reach_the_exported_quantizers(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(32, 16)
    q = to_brevitas(_MLP(), "ul2q", {"fc1": 4, "default": 2}, {"default": 3})
    _export_and_compare(q, x, tmp_path / "mixed.onnx")
    assert _weight_bits(tmp_path / "mixed.onnx") == [5.0, 3.0]  # µL2Q k bits -> (k+1)-bit narrow Quant


def test_unknown_layer_in_the_bits_dict_is_an_error():
    with pytest.raises(InputError, match="no layer named fc9"):
        to_brevitas(_MLP(), "lsq", {"fc9": 2, "default": 2}, 2)
    with pytest.raises(InputError, match="out of range"):
        to_brevitas(_MLP(), "lsq", 12, 2)


@pytest.mark.parametrize("method", ["ul2q", "lsq"])
def test_residual_add_pools_and_batchnorm_export_exactly(tmp_path, method):
    torch.manual_seed(1)
    x = torch.rand(16, 1, 8, 8)
    _export_and_compare(to_brevitas(_Residual(), method, 2, 2), x, tmp_path / "res.onnx")
