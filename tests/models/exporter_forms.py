"""Fixtures in the forms real exporters write beyond the plain dialects (issue 9).

Called by ``make_models.py`` (its ``Builder`` trains, exports, checks and records):

* Brevitas ``export_onnx_qcdq``: QuantizeLinear -> Clip -> DequantizeLinear for every
  sub-8-bit quantizer (a 4-bit MLP, a 3-bit CNN);
* torch.ao eager quantization-aware training (``prepare_qat`` with reduce-range uint8
  activations 0..127 and per-channel int8 weights) exported by ``torch.onnx.export`` at
  opset 13 and at opset 20, the newest the TorchScript exporter writes;
* onnxruntime ``quantize_static`` with symmetric int8 activations and int4 weights: a
  ResNet-8-like CNN at opset 21 (ONNX QuantizeLinear / DequantizeLinear) and a
  depthwise-separable CNN in the ``com.microsoft`` Q/DQ form;
* onnxruntime QOperator of the same depthwise-separable CNN (QLinearConv, per-channel) and
  of an MLP written as MatMul + Add (QLinearMatMul + com.microsoft QLinearAdd with a
  constant bias);
* Brevitas ``export_qonnx`` of a CNN whose head is a mean over H and W (ReduceMean).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F
from torch import nn

# -- models ---------------------------------------------------------------------------------


class BrevitasCNN3(nn.Module):
    """[N,1,8,8]: QuantIdentity 8b -> (QuantConv 3x3 3b per-channel -> BN -> QuantReLU 3b) ->
    MaxPool 2 -> (QuantConv 3x3 3b -> BN -> QuantReLU 3b) -> MaxPool 2 -> Flatten -> QuantLinear 3b."""

    def __init__(self):
        super().__init__()
        import brevitas.nn as qnn
        from brevitas import quant as bq

        rqt = {"return_quant_tensor": True}
        wq = {"weight_quant": bq.Int8WeightPerChannelFloat, "weight_bit_width": 3}
        self.inp = qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFloat, bit_width=8, **rqt)
        self.conv1 = qnn.QuantConv2d(1, 16, 3, padding=1, bias=False, **wq)
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFloat, bit_width=3, **rqt)
        self.conv2 = qnn.QuantConv2d(16, 32, 3, padding=1, bias=False, **wq)
        self.bn2 = nn.BatchNorm2d(32)
        self.act2 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFloat, bit_width=3, **rqt)
        self.fc = qnn.QuantLinear(128, 10, bias=True, weight_quant=bq.Int8WeightPerTensorFloat, weight_bit_width=3)

    def forward(self, x):
        x = F.max_pool2d(self.act1(self.bn1(self.conv1(self.inp(x)))), 2)
        x = F.max_pool2d(self.act2(self.bn2(self.conv2(x))), 2)
        return self.fc(torch.flatten(x, 1))


class BrevitasMeanHead(nn.Module):
    """[N,1,8,8]: QuantIdentity 8b -> QuantConv 3x3 4b -> BN -> QuantReLU 4b -> QuantConv 3x3
    stride 2 4b -> BN -> QuantReLU 4b -> mean over H, W -> QuantIdentity 8b -> QuantLinear 4b."""

    def __init__(self):
        super().__init__()
        import brevitas.nn as qnn
        from brevitas import quant as bq

        rqt = {"return_quant_tensor": True}
        wq = {"weight_quant": bq.Int8WeightPerChannelFloat, "weight_bit_width": 4}
        self.inp = qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFloat, bit_width=8, **rqt)
        self.conv1 = qnn.QuantConv2d(1, 16, 3, padding=1, bias=False, **wq)
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFloat, bit_width=4, **rqt)
        self.conv2 = qnn.QuantConv2d(16, 32, 3, stride=2, padding=1, bias=False, **wq)
        self.bn2 = nn.BatchNorm2d(32)
        self.act2 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFloat, bit_width=4, return_quant_tensor=False)
        self.pooled = qnn.QuantIdentity(act_quant=bq.Uint8ActPerTensorFloat, bit_width=8, **rqt)
        self.fc = qnn.QuantLinear(32, 10, bias=True, weight_quant=bq.Int8WeightPerTensorFloat, weight_bit_width=4)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(self.inp(x))))
        x = self.act2(self.bn2(self.conv2(x)))
        return self.fc(self.pooled(x.mean(dim=(2, 3))))


class TorchAoMLP(nn.Module):
    """64-64-32-10 MLP for torch.ao eager QAT: QuantStub -> (Linear+ReLU) x2 -> Linear -> DeQuantStub."""

    def __init__(self):
        super().__init__()
        import torch.ao.quantization as tq

        self.quant = tq.QuantStub()
        self.fc1, self.relu1 = nn.Linear(64, 64), nn.ReLU()
        self.fc2, self.relu2 = nn.Linear(64, 32), nn.ReLU()
        self.fc3 = nn.Linear(32, 10)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.relu2(self.fc2(self.relu1(self.fc1(self.quant(x)))))
        return self.dequant(self.fc3(x))


class ResNet8(nn.Module):
    """ResNet-8-like (MLPerf Tiny's image classifier, scaled to 8x8 digits): conv 3x3 1->16,
    three residual stacks (16, 32 stride 2, 64 stride 2; 1x1 projection shortcuts), global
    average pool, Linear 64->10."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.stacks = nn.ModuleList([self._stack(16, 16, 1), self._stack(16, 32, 2), self._stack(32, 64, 2)])
        self.shortcuts = nn.ModuleList([nn.Identity(), nn.Conv2d(16, 32, 1, stride=2), nn.Conv2d(32, 64, 1, stride=2)])
        self.fc = nn.Linear(64, 10)

    @staticmethod
    def _stack(cin: int, cout: int, stride: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout),
        )  # fmt: skip

    def forward(self, x):
        x = self.stem(x)
        for stack, shortcut in zip(self.stacks, self.shortcuts):
            x = F.relu(stack(x) + shortcut(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class DSCNN(nn.Module):
    """Depthwise-separable CNN (MLPerf Tiny's keyword-spotting shape, on 8x8 digits): conv 3x3
    1->32, two blocks of depthwise 3x3 + pointwise 1x1 (the second with stride 2), global
    average pool, Linear 32->10."""

    def __init__(self, c: int = 32):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())
        blocks = []
        for stride in (1, 2):
            blocks += [
                nn.Conv2d(c, c, 3, stride=stride, padding=1, groups=c), nn.BatchNorm2d(c), nn.ReLU(),
                nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU(),
            ]  # fmt: skip
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class MatMulAddMLP(nn.Module):
    """64-64-32-10 MLP written as ``x @ W + b``: torch.onnx writes MatMul + Add, not Gemm."""

    def __init__(self):
        super().__init__()
        sizes = [(64, 64), (64, 32), (32, 10)]
        self.weights = nn.ParameterList([nn.Parameter(torch.randn(i, o) / i**0.5) for i, o in sizes])
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(o)) for _, o in sizes])

    def forward(self, x):
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = x @ w + b
            if i < len(self.weights) - 1:
                x = F.relu(x)
        return x


# -- exporters ------------------------------------------------------------------------------


def brevitas_qcdq_export(model: nn.Module, sample: torch.Tensor, path: Path, dynamic_axes: dict) -> None:
    from brevitas.export import export_onnx_qcdq

    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx_qcdq(
            model, (sample,), str(path), dynamo=False, input_names=["x"], output_names=["logits"],
            dynamic_axes=dynamic_axes,
        )  # fmt: skip


def torch_ao_prepare(model: nn.Module) -> nn.Module:
    """Eager QAT: fuse Linear+ReLU, reduce-range uint8 activations (0..127), per-channel int8 weights."""
    import torch.ao.quantization as tq

    model.train()
    tq.fuse_modules_qat(model, [["fc1", "relu1"], ["fc2", "relu2"]], inplace=True)
    model.qconfig = tq.QConfig(
        activation=tq.FakeQuantize.with_args(
            observer=tq.MovingAverageMinMaxObserver, quant_min=0, quant_max=127, dtype=torch.quint8
        ),
        weight=tq.FakeQuantize.with_args(
            observer=tq.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
        ),
    )  # fmt: skip
    return tq.prepare_qat(model, inplace=True)


def torch_ao_export(model: nn.Module, sample: torch.Tensor, path: Path, opset: int, dynamic_axes: dict) -> None:
    """Freeze the observers (their state updates do not export) and export the fake-quant model."""
    import torch.ao.quantization as tq

    model.eval()
    model.apply(tq.disable_observer)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (sample,), str(path), dynamo=False, opset_version=opset, input_names=["x"],
            output_names=["logits"], dynamic_axes=dynamic_axes,
        )  # fmt: skip


def float_export_opset(model: nn.Module, sample: torch.Tensor, path: Path, opset: int, dynamic_axes: dict) -> None:
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (sample,), str(path), dynamo=False, opset_version=opset, input_names=["x"],
            output_names=["logits"], dynamic_axes=dynamic_axes, do_constant_folding=True,
        )  # fmt: skip


def op_histogram(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in onnx.load(str(path)).graph.node:
        key = f"{n.domain}.{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
        counts[key] = counts.get(key, 0) + 1
    return counts
