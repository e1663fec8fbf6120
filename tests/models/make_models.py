"""Train and export every fixture model of ``tests/models/`` and write ``manifest.json``.

    /path/to/python tests/models/make_models.py [--only NAME[,NAME...]] [--out DIR] [--fast]

All models are trained on the train split of scikit-learn's 8x8 digits
(``tests/data.py``) and exported with the real exporters:

* Brevitas ``export_qonnx`` (QONNX dialect: ``Quant`` / ``BipolarQuant`` / ``Trunc``);
* onnxruntime ``quantize_static`` (QDQ and QOperator) of float models exported with
  ``torch.onnx.export(dynamo=False)``;
* ``torch.onnx.export(dynamo=False)`` of a model trained with torch's own
  fake-quantization (QuantizeLinear / DequantizeLinear pairs).

Every file gets ``ir_version <= 10`` (onnxruntime 1.31 refuses the IR 14 that
onnx 1.23 writes), a symbolic batch dimension, and is checked to run in its
reference executor (``tests/reference.py``), which also measures the accuracy
on the test split recorded in the manifest.  Everything is seeded and the output
is byte-identical from run to run on the same package versions; a full run takes
about a minute on two CPU cores.  ``--fast`` (few epochs, smoke test) needs
``--out`` so that it cannot overwrite the real fixtures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# the repository's test helpers (importable once ROOT is on sys.path)
_data = importlib.import_module("tests.data")
xf = importlib.import_module("tests.models.exporter_forms")
_reference = importlib.import_module("tests.reference")
as_images = _data.as_images
digits_split = _data.digits_split
clear_caches = _reference.clear_caches
dialect_of_graph = _reference.dialect_of_graph
run_reference = _reference.run_reference

MAX_IR_VERSION = 10
MAX_BYTES = 200 * 1024
BATCH = "batch"
SEED = 0


# --------------------------------------------------------------------------- utils


def seed_all(seed: int = SEED) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    seed: int = SEED,
) -> nn.Module:
    """Adam + cosine schedule, cross-entropy on the model's logits, seeded shuffling."""
    seed_all(seed)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * ((len(xt) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad()
            out = model(xt[idx])
            out = out.value if hasattr(out, "value") else out
            loss = F.cross_entropy(out, yt[idx])
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return model


@torch.no_grad()
def torch_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    out = model(torch.from_numpy(x))
    out = out.value if hasattr(out, "value") else out
    return float((out.argmax(1).numpy() == y).mean())


def finalize(path: Path) -> onnx.ModelProto:
    """Cap ir_version at 10 and re-save; check the model with the onnx checker."""
    model = onnx.load(str(path), load_external_data=False)
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert not external, f"{path.name}: external data for {external}"
    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return model


def dynamic_axes(inp: str, out: str) -> dict:
    return {inp: {0: BATCH}, out: {0: BATCH}}


def batch_dim_of(vi) -> str | int | None:
    dims = vi.type.tensor_type.shape.dim
    if not dims:
        return None
    d = dims[0]
    return d.dim_param if d.HasField("dim_param") else d.dim_value


def graph_io(model: onnx.ModelProto) -> tuple[str, str]:
    inits = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in inits]
    assert len(inputs) == 1, inputs
    assert len(model.graph.output) == 1
    return inputs[0], model.graph.output[0].name


def describe_ops(
    model: onnx.ModelProto,
) -> tuple[list[str], dict[str, int], dict[str, str]]:
    counts: dict[str, int] = {}
    domains: dict[str, str] = {}
    for n in model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
        if n.domain not in ("", "ai.onnx"):
            domains[n.op_type] = n.domain
    return sorted(counts), dict(sorted(counts.items())), dict(sorted(domains.items()))


def _const_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    vals = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            vals[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return vals


def _is_po2(a: np.ndarray) -> bool:
    a = np.asarray(a, dtype=np.float64).ravel()
    return bool(np.all(a > 0) and np.all(np.log2(a) == np.round(np.log2(a))))


def quant_summary(model: onnx.ModelProto) -> list[dict]:
    """One compact record per quantization node (QONNX Quant/BipolarQuant/Trunc, QDQ
    QuantizeLinear/DequantizeLinear), for the manifest."""
    vals = _const_values(model)
    producers = {o: n for n in model.graph.node for o in n.output}
    out = []
    for n in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
        if n.op_type in ("Quant", "BipolarQuant", "Trunc"):
            scale = vals.get(n.input[1])
            rec = {
                "node": n.name,
                "op": n.op_type,
                "operand": "constant" if n.input[0] in vals else "activation",
                "scale_shape": None if scale is None else list(scale.shape),
                "scale_po2": None if scale is None else _is_po2(scale),
            }
            if n.op_type == "Quant":
                zp, bits = vals.get(n.input[2]), vals.get(n.input[3])
                rec.update(
                    bits=None if bits is None else float(bits),
                    zero_point=None if zp is None else np.asarray(zp).ravel().tolist(),
                    signed=attrs.get("signed"),
                    narrow=attrs.get("narrow"),
                    rounding_mode=attrs.get("rounding_mode"),
                )
                if scale is not None and scale.size == 1:
                    rec["scale"] = float(scale.ravel()[0])
            elif n.op_type == "BipolarQuant":
                rec["scale"] = None if scale is None else np.asarray(scale).ravel().tolist()
            else:
                rec.update(
                    input_bits=float(vals[n.input[3]]),
                    output_scale=np.asarray(vals[n.input[4]]).ravel().tolist(),
                    output_bits=float(vals[n.input[5]]) if len(n.input) > 5 else None,
                    signed=attrs.get("signed"),
                    narrow=attrs.get("narrow"),
                    rounding_mode=attrs.get("rounding_mode"),
                )
                if scale is not None and scale.size == 1:
                    rec["scale"] = float(scale.ravel()[0])
            out.append(rec)
        elif n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            scale = vals.get(n.input[1])
            zp = vals.get(n.input[2]) if len(n.input) > 2 else None
            src = n.input[0]
            if src in vals:
                operand = f"initializer {vals[src].dtype}"
            elif src in producers and producers[src].op_type == "Constant":
                operand = "Constant node"
            else:
                operand = "activation"
            rec = {
                "node": n.name,
                "op": n.op_type,
                "operand": operand,
                "axis": attrs.get("axis"),
                "scale_shape": None if scale is None else list(scale.shape),
                "zero_point_dtype": None if zp is None else str(zp.dtype),
                "zero_point_shape": None if zp is None else list(zp.shape),
            }
            if zp is not None and zp.size == 1:
                rec["zero_point"] = int(zp.ravel()[0])
            elif zp is not None:
                rec["zero_point_all_zero"] = bool(np.all(zp == 0))
            if scale is not None and scale.size == 1:
                rec["scale"] = float(scale.ravel()[0])
            out.append(rec)
    return out


def float_export(
    model: nn.Module,
    sample: torch.Tensor,
    path: Path,
    *,
    in_name: str,
    out_name: str,
    opset: int,
) -> None:
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (sample,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[in_name],
            output_names=[out_name],
            dynamic_axes=dynamic_axes(in_name, out_name),
            do_constant_folding=True,
        )


def brevitas_export(
    model: nn.Module,
    sample: torch.Tensor,
    path: Path,
    *,
    in_name: str,
    out_name: str,
    dynamo: bool = False,
) -> None:
    from brevitas.export import export_qonnx

    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not dynamo:
            export_qonnx(
                model,
                (sample,),
                str(path),
                dynamo=False,
                input_names=[in_name],
                output_names=[out_name],
                dynamic_axes=dynamic_axes(in_name, out_name),
            )
            return
        # The dynamo exporter writes the weights to an external-data side file
        # ("<name>.onnx.data") and a Python stack trace (absolute paths, line numbers of
        # this script) into every node's metadata.  Export into a scratch directory,
        # then save one self-contained file without the stack traces.
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / path.name
            export_qonnx(
                model,
                (sample,),
                str(raw),
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim(BATCH)},),
                input_names=[in_name],
                output_names=[out_name],
            )
            exported = onnx.load(str(raw))  # pulls the external data in
    for node in exported.graph.node:
        keep = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)
    onnx.save(exported, str(path), save_as_external_data=False)


# --------------------------------------------------------------------------- Brevitas models


def _brevitas():
    import brevitas.nn as qnn
    from brevitas import quant as bq

    return qnn, bq


class BrevitasMLP(nn.Module):
    """64-64-32-10 MLP: input QuantIdentity -> (QuantLinear -> [BN] -> act quant) x2 ->
    QuantLinear -> [BN1d | output QuantIdentity]."""

    def __init__(self, variant: str):
        super().__init__()
        qnn, bq = _brevitas()
        self.variant = variant
        rqt = {"return_quant_tensor": True}
        if variant == "w4a4":
            self.inp = qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFloat, bit_width=8, **rqt)
            wq = {"weight_quant": bq.Int8WeightPerTensorFloat, "weight_bit_width": 4}
            self.fc1 = qnn.QuantLinear(64, 64, bias=True, bias_quant=bq.Int32Bias, **wq)
            self.act1 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFloat, bit_width=4, **rqt)
            self.fc2 = qnn.QuantLinear(64, 32, bias=True, bias_quant=bq.Int32Bias, **wq)
            self.act2 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFloat, bit_width=4, **rqt)
            self.fc3 = qnn.QuantLinear(32, 10, bias=True, **wq)
            self.tail = nn.Identity()
        elif variant == "w4a4_po2":
            self.inp = qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=8, **rqt)
            wq = {
                "weight_quant": bq.Int8WeightPerTensorFixedPoint,
                "weight_bit_width": 4,
            }
            self.fc1 = qnn.QuantLinear(64, 64, bias=True, **wq)
            self.act1 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFixedPoint, bit_width=4, **rqt)
            self.fc2 = qnn.QuantLinear(64, 32, bias=True, **wq)
            self.act2 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFixedPoint, bit_width=4, **rqt)
            self.fc3 = qnn.QuantLinear(32, 10, bias=True, **wq)
            self.tail = nn.Identity()
        elif variant == "w2a2":
            self.inp = qnn.QuantIdentity(act_quant=bq.Uint8ActPerTensorFloat, bit_width=8, **rqt)
            wq = {"weight_quant": bq.Int8WeightPerTensorFloat, "weight_bit_width": 2}
            self.fc1 = qnn.QuantLinear(64, 64, bias=True, **wq)
            self.act1 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFloat, bit_width=2, **rqt)
            self.fc2 = qnn.QuantLinear(64, 32, bias=True, **wq)
            self.act2 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFloat, bit_width=2, **rqt)
            self.fc3 = qnn.QuantLinear(32, 10, bias=True, **wq)
            self.tail = qnn.QuantIdentity(
                act_quant=bq.Int8ActPerTensorFloat,
                bit_width=8,
                return_quant_tensor=False,
            )
        elif variant == "w1a1":
            self.inp = qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFloat, bit_width=8, **rqt)
            wq = {
                "weight_quant": bq.SignedBinaryWeightPerTensorConst,
                "weight_scaling_const": 1.0,
            }
            aq = {"act_quant": bq.SignedBinaryActPerTensorConst}
            self.fc1 = qnn.QuantLinear(64, 64, bias=False, **wq)
            self.bn1 = nn.BatchNorm1d(64)
            self.act1 = qnn.QuantIdentity(**aq, **rqt)
            self.fc2 = qnn.QuantLinear(64, 32, bias=False, **wq)
            self.bn2 = nn.BatchNorm1d(32)
            self.act2 = qnn.QuantIdentity(**aq, **rqt)
            self.fc3 = qnn.QuantLinear(32, 10, bias=False, **wq)
            self.tail = nn.BatchNorm1d(10)
        else:
            raise ValueError(variant)
        if not hasattr(self, "bn1"):
            self.bn1 = nn.Identity()
            self.bn2 = nn.Identity()

    def forward(self, x):
        x = self.inp(x)
        x = self.act1(self.bn1(self.fc1(x)))
        x = self.act2(self.bn2(self.fc2(x)))
        return self.tail(self.fc3(x))


class BrevitasCNN(nn.Module):
    """[N,1,8,8]: QuantIdentity(8b) -> QuantConv(3x3, 4b per-channel) -> BN -> QuantReLU(8b)
    -> MaxPool(2) -> QuantConv(3x3, 4b per-channel) -> BN -> QuantReLU(8b)
    -> TruncAvgPool2d(2) -> Flatten -> QuantLinear(4b per-tensor) -> float logits."""

    def __init__(self):
        super().__init__()
        qnn, bq = _brevitas()
        rqt = {"return_quant_tensor": True}
        wq = {"weight_quant": bq.Int8WeightPerChannelFloat, "weight_bit_width": 4}
        self.inp = qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFloat, bit_width=8, **rqt)
        self.conv1 = qnn.QuantConv2d(1, 16, 3, padding=1, bias=False, **wq)
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFloat, bit_width=8, **rqt)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = qnn.QuantConv2d(16, 32, 3, padding=1, bias=False, **wq)
        self.bn2 = nn.BatchNorm2d(32)
        self.act2 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFloat, bit_width=8, **rqt)
        self.pool2 = qnn.TruncAvgPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = qnn.QuantLinear(
            128,
            10,
            bias=True,
            weight_quant=bq.Int8WeightPerTensorFloat,
            weight_bit_width=4,
        )

    def forward(self, x):
        x = self.inp(x)
        x = self.pool1(self.act1(self.bn1(self.conv1(x))))
        x = self.pool2(self.act2(self.bn2(self.conv2(x))))
        return self.fc(self.flatten(x))


# --------------------------------------------------------------------------- float / torch models


class FloatMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 32)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class WithSoftmax(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return torch.softmax(self.inner(x), dim=1)


class ResidualCNN(nn.Module):
    """conv(1->16) -> BN -> relu -> maxpool(2) -> [conv -> BN -> relu -> conv -> BN] + skip
    -> relu -> GlobalAveragePool -> flatten -> Linear(16 -> 10)."""

    def __init__(self, c: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, c, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(c)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        y = F.relu(self.bn2(self.conv2(x)))
        y = self.bn3(self.conv3(y))
        x = F.relu(x + y)
        return self.fc(torch.flatten(self.gap(x), 1))


class TorchFakeQuantMLP(nn.Module):
    """64-64-32-10 MLP with torch fake quantization.

    Input and hidden activations: uint8 [0, 255], zero point 0, fixed per-tensor scales
    (calibrated from the float model).  Weights: int8 [-128, 127], zero point 0,
    per-output-channel scale max|w| / 127 (held in buffers, refreshed during QAT and
    frozen for export).  Biases and the logits stay float.
    """

    def __init__(self):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(64, 64), nn.Linear(64, 32), nn.Linear(32, 10)])
        self.register_buffer("act_scale", torch.ones(3))
        for i, fc in enumerate(self.fcs):
            self.register_buffer(f"w_scale{i}", torch.ones(fc.out_features))
            self.register_buffer(f"w_zp{i}", torch.zeros(fc.out_features, dtype=torch.int32))
        self.quantize = False

    @torch.no_grad()
    def refresh_weight_scales(self):
        for i, fc in enumerate(self.fcs):
            s = fc.weight.abs().amax(dim=1).clamp_min(1e-8) / 127.0
            getattr(self, f"w_scale{i}").copy_(s)

    def _act(self, x, i):
        if not self.quantize:
            return x
        return torch.fake_quantize_per_tensor_affine(x, float(self.act_scale[i]), 0, 0, 255)

    def _w(self, i):
        w = self.fcs[i].weight
        if not self.quantize:
            return w
        return torch.fake_quantize_per_channel_affine(
            w, getattr(self, f"w_scale{i}"), getattr(self, f"w_zp{i}"), 0, -128, 127
        )

    def forward(self, x, collect: list | None = None):
        x = self._act(x, 0)
        for i, fc in enumerate(self.fcs):
            x = F.linear(x, self._w(i), fc.bias)
            if i < len(self.fcs) - 1:
                x = F.relu(x)
                if collect is not None:
                    collect.append(x)
                x = self._act(x, i + 1)
        return x


# --------------------------------------------------------------------------- ORT quantization


def ort_quantize(
    float_path: Path,
    out_path: Path,
    calib: np.ndarray,
    in_name: str,
    *,
    fmt: str,
    per_channel: bool,
    activation_type: str = "QUInt8",
    exclude_softmax: bool = True,
    pre_optimize: bool = True,
    weight_type: str = "QInt8",
    extra_options: dict | None = None,
    opset: int | None = None,
) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter([{in_name: calib[i : i + 20]} for i in range(0, len(calib), 20)])

        def get_next(self):
            return next(self._batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        # pre_optimize=False keeps the graph's own ops (its optimiser fuses MatMul + Add to Gemm)
        quant_pre_process(str(float_path), str(pre), skip_optimization=not pre_optimize)
        if opset is not None:  # e.g. 21: int4 QuantizeLinear / DequantizeLinear are standard from there
            onnx.save(onnx.version_converter.convert_version(onnx.load(str(pre)), opset), str(pre))
        pre_model = onnx.load(str(pre))
        exclude = [n.name for n in pre_model.graph.node if n.op_type == "Softmax"] if exclude_softmax else []
        quantize_static(
            str(pre),
            str(out_path),
            Reader(),
            quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
            per_channel=per_channel,
            activation_type=getattr(QuantType, activation_type),
            weight_type=getattr(QuantType, weight_type),
            nodes_to_exclude=exclude,
            extra_options=extra_options,
        )


# --------------------------------------------------------------------------- the fixture list


TORCHSCRIPT_QONNX_NOTES = [
    (
        "TorchScript export path (export_qonnx(dynamo=False)): parameters (weights, float "
        "biases, BatchNorm tensors) are initializers AND also listed as graph inputs; qonnx "
        "cleanup_model removes them from the inputs"
    ),
    (
        "weight Quant/BipolarQuant nodes take the FLOAT weight initializer (not folded to "
        "integers); scale, zero point and bit width are separate float32 initializers "
        "(bit width as a float, e.g. 4.0); zero points are 0.0 everywhere"
    ),
    (
        "Quant rounding_mode is 'ROUND' = round half to even (numpy.round in the qonnx "
        "executor, torch.round in Brevitas); the qonnx executor computes x / scale + zp, "
        "clamps, then rounds, in float32"
    ),
    "opset_import: ai.onnx 20, qonnx.custom_op.general 2",
]


class Builder:
    def __init__(self, out: Path, fast: bool = False):
        self.out = out
        self.fast = fast
        self.x_train, self.y_train, self.x_test, self.y_test = digits_split()
        self.calib = self.x_train[:200]
        self.entries: dict[str, dict] = {}
        self._float_acc: dict[str, float] = {}
        self._float_ops: dict[str, list[str]] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="accelgen_fixtures_"))

    def epochs(self, n: int) -> int:
        return max(2, n // 10) if self.fast else n

    def data(self, layout: str, split: str = "train") -> np.ndarray:
        x = self.x_train if split == "train" else self.x_test
        return as_images(x) if layout == "image" else x

    # ------------------------------------------------------------------ bookkeeping
    def record(
        self,
        name: str,
        *,
        dialect: str,
        layout: str,
        output_kind: str,
        exporter: str,
        description: str,
        notes: list[str] | None = None,
        torch_acc: float | None = None,
        torch_acc_of: str = "the quantized torch model before export",
    ) -> None:
        path = self.out / name
        model = finalize(path)
        assert dialect_of_graph(model) == dialect, (name, dialect_of_graph(model))
        in_name, out_name = graph_io(model)
        inits = {i.name for i in model.graph.initializer}
        in_vi = next(i for i in model.graph.input if i.name == in_name)
        bdim = batch_dim_of(in_vi)
        ops, counts, domains = describe_ops(model)
        clear_caches()
        t0 = time.time()
        y = run_reference(path, self.data(layout, "test"))
        ref_s = time.time() - t0
        assert y.shape == (len(self.y_test), 10), (name, y.shape)
        acc = float((y.argmax(1) == self.y_test).mean())
        unopt = {}
        if dialect != "qonnx":
            y0 = run_reference(path, self.data(layout, "test"), ort_optimize=False)
            diff = np.abs(y.astype(np.float64) - y0)
            unopt = {
                "ort_unoptimized_max_abs_diff": float(diff.max()),
                "ort_unoptimized_elements_differ": int((diff > 0).sum()),
                "ort_unoptimized_argmax_differ": int((y.argmax(1) != y0.argmax(1)).sum()),
            }
        if output_kind == "softmax":
            assert np.allclose(y.sum(1), 1.0, atol=1e-3), name
        size = path.stat().st_size
        assert size < MAX_BYTES, (name, size)
        entry = {
            "file": name,
            "dialect": dialect,
            "exporter": exporter,
            "input_name": in_name,
            "input_layout": layout,
            "input_shape": [d.dim_param or d.dim_value for d in in_vi.type.tensor_type.shape.dim],
            "batch_dynamic": isinstance(bdim, str) and bdim != "",
            "output_name": out_name,
            "output": output_kind,
            "reference_accuracy": round(acc, 4),
            "torch_accuracy": None if torch_acc is None else round(torch_acc, 4),
            "torch_accuracy_of": torch_acc_of,
            **unopt,
            "op_types": ops,
            "op_counts": counts,
            "custom_domains": domains,
            "initializers_as_graph_inputs": sorted(i.name for i in model.graph.input if i.name in inits) != [],
            "ir_version": model.ir_version,
            "opset": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
            "size_bytes": size,
            "description": description,
            "notes": notes or [],
            "quant_nodes": quant_summary(model),
        }
        self.entries[name] = entry
        print(
            f"  {name}: acc={acc:.4f} (torch {torch_acc if torch_acc is None else round(torch_acc, 4)}) "
            f"size={size} ref={ref_s:.2f}s ops={ops}",
            flush=True,
        )

    # ------------------------------------------------------------------ Brevitas
    def brevitas_mlp(self, variant: str, epochs: int, lr: float, *, also_dynamo: str | None = None):
        seed_all()
        model = BrevitasMLP(variant)
        train(model, self.x_train, self.y_train, epochs=self.epochs(epochs), lr=lr)
        acc = torch_accuracy(model, self.x_test, self.y_test)
        sample = torch.from_numpy(self.x_train[:2])
        name = f"qonnx_mlp_{variant}.onnx"
        brevitas_export(
            model,
            sample,
            self.out / name,
            in_name="x",
            out_name="y" if variant == "w2a2" else "logits",
        )
        desc = {
            "w4a4": "MLP 64-64-32-10; input QuantIdentity 8b signed (Int8ActPerTensorFloat); "
            "weights 4b narrow signed per-tensor float scale (Int8WeightPerTensorFloat); "
            "QuantReLU 4b unsigned float scale; hidden biases Int32Bias (Quant 32b); "
            "last layer float bias, float logits",
            "w4a4_po2": "MLP 64-64-32-10, all scales powers of two (Int8ActPerTensorFixedPoint "
            "8b input, Int8WeightPerTensorFixedPoint 4b weights, "
            "Uint8ActPerTensorFixedPoint 4b QuantReLU); float biases; float logits",
            "w2a2": "MLP 64-64-32-10; input QuantIdentity 8b unsigned; weights 2b narrow "
            "signed per-tensor float scale (levels -1,0,+1); QuantReLU 2b unsigned; "
            "float biases; output QuantIdentity 8b signed (quantized logits)",
            "w1a1": "binary MLP 64-64-32-10: input QuantIdentity 8b signed; bipolar weights "
            "(SignedBinaryWeightPerTensorConst, scale 1.0) without bias; BatchNorm1d; "
            "bipolar activations (SignedBinaryActPerTensorConst, scale 1.0); last "
            "layer followed by BatchNorm1d(10) -> float logits",
        }[variant]
        extra = {
            "w4a4": [
                (
                    "hidden biases (Int32Bias) are Quant(bias, scale, 0.0, 32.0) with signed=1 "
                    "narrow=0; their scale is a shape-[1] tensor equal to input scale * "
                    "weight scale; the last layer's bias is a plain float initializer"
                ),
                "every Linear is Gemm(transB=1) with the bias as input C",
            ],
            "w4a4_po2": [
                ("all scales are exact powers of two (float32 initializers), e.g. input 2^-6, weights 2^-3"),
                "every Linear is Gemm(transB=1) with a float bias initializer",
            ],
            "w2a2": [
                "2-bit narrow signed weights have only the codes -1, 0, +1",
                (
                    "the output QuantIdentity is a Quant(signed=1, 8 bit) on the last Gemm "
                    "output: the graph output is on an 8-bit grid (quantized logits)"
                ),
                "every Linear is Gemm(transB=1) with a float bias initializer",
            ],
            "w1a1": [
                (
                    "bias-free QuantLinear exports as BipolarQuant(W, scale) -> Transpose("
                    "perm=[1,0]) -> MatMul (no Gemm); BipolarQuant scale is a shape-[1] "
                    "tensor (1.0)"
                ),
                ("BipolarQuant maps x >= 0 to +scale and x < 0 to -scale (qonnx executor, same as Brevitas)"),
                (
                    "BatchNormalization (training_mode=0, epsilon 1e-5) after every MatMul, "
                    "including the last one whose output is the graph output"
                ),
                ("the first layer multiplies 8-bit signed input codes by bipolar weights (input is not binarised)"),
            ],
        }[variant]
        self.record(
            name,
            dialect="qonnx",
            layout="flat",
            output_kind="logits",
            exporter="brevitas.export.export_qonnx(dynamo=False)",
            description=desc,
            torch_acc=acc,
            notes=TORCHSCRIPT_QONNX_NOTES + extra,
        )
        if also_dynamo:
            brevitas_export(
                model,
                sample,
                self.out / also_dynamo,
                in_name="x",
                out_name="logits",
                dynamo=True,
            )
            self.record(
                also_dynamo,
                dialect="qonnx",
                layout="flat",
                output_kind="logits",
                exporter="brevitas.export.export_qonnx(dynamo=True)",
                description="the same trained network as qonnx_mlp_w4a4.onnx, exported "
                "through the torch.export (dynamo) path, which is "
                "export_qonnx's default on torch >= 2.9",
                torch_acc=acc,
                notes=[
                    (
                        "dynamo path: tensor names are torch.export names (x, "
                        "_symbolic_N, linear, relu, ...); weights are initializers "
                        "named slice_N, quantizer constants are "
                        "'<module>.export_handler.lifted_tensor_N'; initializers are "
                        "also listed as graph inputs"
                    ),
                    "Gemm carries an explicit transA=0; node attribute order differs",
                    (
                        "nodes carry torch metadata_props (namespace, class_hierarchy, fx_node, "
                        "name_scopes; the stack_trace entry is stripped by make_models.py), "
                        "which makes the file larger than the TorchScript one"
                    ),
                    ("ir_version 10 as written; opset ai.onnx 20, qonnx.custom_op.general 2"),
                    ("otherwise the same Quant/Gemm/Relu structure and the same constants as qonnx_mlp_w4a4.onnx"),
                ],
            )

    def brevitas_cnn(self, epochs: int, lr: float):
        seed_all()
        model = BrevitasCNN()
        xi = as_images(self.x_train)
        train(model, xi, self.y_train, epochs=self.epochs(epochs), lr=lr)
        acc = torch_accuracy(model, as_images(self.x_test), self.y_test)
        name = "qonnx_cnn_w4a8.onnx"
        brevitas_export(
            model,
            torch.from_numpy(xi[:2]),
            self.out / name,
            in_name="x",
            out_name="logits",
        )
        self.record(
            name,
            dialect="qonnx",
            layout="image",
            output_kind="logits",
            exporter="brevitas.export.export_qonnx(dynamo=False)",
            description="CNN on [N,1,8,8]: QuantIdentity 8b signed -> QuantConv2d "
            "1->16 3x3 pad 1 (4b per-channel float scales, no bias) -> "
            "BatchNorm2d -> QuantReLU 8b -> MaxPool 2 -> QuantConv2d 16->32 "
            "3x3 pad 1 (4b per-channel) -> BatchNorm2d -> QuantReLU 8b -> "
            "TruncAvgPool2d 2 (AveragePool + Trunc to 8b) -> Flatten -> "
            "QuantLinear 128->10 (4b per-tensor, float bias) -> float logits",
            torch_acc=acc,
            notes=TORCHSCRIPT_QONNX_NOTES
            + [
                ("per-channel weight scales have shape [C_out,1,1,1]; the Linear's per-tensor scale is a scalar"),
                (
                    "Conv has no bias input; BatchNormalization (training_mode=0) follows "
                    "each Conv, then Relu, then Quant(signed=0, 8 bit)"
                ),
                ("MaxPool sits between the QuantReLU's Quant and the next Conv (no Quant after the MaxPool)"),
                (
                    "TruncAvgPool2d exports as AveragePool(2x2, float division by 4) -> "
                    "Trunc(x, scale=s_in/4, zp=0, input_bit_width=10, output_scale=s_in, "
                    "output_bit_width=8; signed=0, narrow=0, rounding_mode='round' in "
                    "lower case); qonnx Trunc v2: q=round(x/scale + zp), "
                    "q/=2**round(log2(output_scale/scale)), clamp to the output range, "
                    "round half to even, times output_scale - ties (.5) occur"
                ),
                "Flatten(axis=1) then Gemm(transB=1) with a float bias",
            ],
        )

    # ------------------------------------------------------------------ float models for ORT
    def float_mlp(self) -> Path:
        path = self.tmp / "float_mlp_softmax.onnx"
        if not path.exists():
            seed_all()
            model = FloatMLP()
            train(model, self.x_train, self.y_train, epochs=self.epochs(60), lr=3e-3)
            self._float_acc["mlp"] = torch_accuracy(model, self.x_test, self.y_test)
            float_export(
                WithSoftmax(model),
                torch.from_numpy(self.x_train[:2]),
                path,
                in_name="x",
                out_name="probs",
                opset=13,
            )
            self._float_ops["mlp"] = describe_ops(onnx.load(str(path)))[0]
        return path

    def float_cnn(self) -> Path:
        path = self.tmp / "float_rescnn.onnx"
        if not path.exists():
            seed_all()
            model = ResidualCNN()
            xi = as_images(self.x_train)
            train(model, xi, self.y_train, epochs=self.epochs(40), lr=3e-3)
            self._float_acc["cnn"] = torch_accuracy(model, as_images(self.x_test), self.y_test)
            float_export(
                model,
                torch.from_numpy(xi[:2]),
                path,
                in_name="x",
                out_name="logits",
                opset=17,
            )
            self._float_ops["cnn"] = describe_ops(onnx.load(str(path)))[0]
        return path

    def ort_model(
        self,
        name: str,
        *,
        kind: str,
        fmt: str,
        per_channel: bool,
        activation_type: str = "QUInt8",
    ):
        src = self.float_mlp() if kind == "mlp" else self.float_cnn()
        layout = "flat" if kind == "mlp" else "image"
        calib = self.calib if kind == "mlp" else as_images(self.calib)
        ort_quantize(
            src,
            self.out / name,
            calib,
            "x",
            fmt=fmt,
            per_channel=per_channel,
            activation_type=activation_type,
        )
        act = {"QUInt8": "uint8 (asymmetric)", "QInt8": "int8 (asymmetric)"}[activation_type]
        arch = (
            "MLP 64-64-32-10 (Gemm+Relu) with a float Softmax tail (Softmax excluded from quantization)"
            if kind == "mlp"
            else "residual CNN on [N,1,8,8]: conv 1->16 +BN+relu, maxpool 2, [conv 16->16 +BN "
            "+relu, conv 16->16 +BN] + skip, relu, GlobalAveragePool, flatten, Linear "
            "16->10, float logits"
        )
        fops = self._float_ops[kind]
        notes = [
            f"float model exported by torch.onnx.export(dynamo=False, opset "
            f"{13 if kind == 'mlp' else 17}) has ops {fops}"
            + (
                ""
                if kind == "mlp" or "BatchNormalization" in fops
                else " (BatchNorm already folded into Conv by the torch exporter in eval mode)"
            ),
            (
                "Relu nodes are gone: the quantizer removed each Relu whose output range starts "
                "at 0 and let the following QuantizeLinear (zero point at the bottom of the "
                "integer range) do the clamping; the Gemm/Conv/Add output keeps the Relu's "
                "tensor name"
            ),
            (
                "ir_version 7/8 as written by onnxruntime; opset_import also lists domains that "
                "no node uses (ai.onnx.ml, com.microsoft.nchwc, org.pytorch.aten, ...), added by "
                "quant_pre_process's onnxruntime graph optimisation"
            ),
        ]
        if fmt == "qdq":
            notes.append(
                "weights: int8 initializer -> DequantizeLinear (zero point 0); "
                "bias: int32 initializer -> DequantizeLinear with scale = input "
                "scale * weight scale (shape [1] per-tensor, [C] with axis=0 "
                "per-channel) and int32 zero point 0"
            )
        else:
            notes.append(
                "QGemm (com.microsoft) carries its int32 bias as input 6 and its "
                "output scale/zero point as inputs 7/8; QLinearConv bias is input 8 "
                "(int32); MaxPool and Flatten run directly on the uint8 tensor"
            )
        if kind == "mlp":
            notes.append(
                "the last Gemm output is quantized (asymmetric zero point) and "
                "DequantizeLinear'd before the float Softmax"
            )
        self.record(
            name,
            dialect=fmt,
            layout=layout,
            output_kind="softmax" if kind == "mlp" else "logits",
            exporter="onnxruntime.quantization.quantize_static("
            f"{'QDQ' if fmt == 'qdq' else 'QOperator'}, "
            f"per_channel={per_channel}, activation_type={activation_type}, "
            "weight_type=QInt8, MinMax calibration on 200 train samples) of "
            "torch.onnx.export(dynamo=False) after quant_pre_process",
            description=f"{arch}; activations {act}, weights int8 symmetric "
            f"{'per-channel' if per_channel else 'per-tensor'}",
            notes=notes,
            torch_acc=self._float_acc[kind],
            torch_acc_of="the float torch model before ORT quantization",
        )

    # ------------------------------------------------------------------ torch fake-quant
    def torch_qdq(self):
        seed_all()
        model = TorchFakeQuantMLP()
        train(model, self.x_train, self.y_train, epochs=self.epochs(40), lr=3e-3)
        xt = torch.from_numpy(self.x_train)
        with torch.no_grad():
            acts: list = []
            model(xt, collect=acts)
            scales = [1.0 / 255.0] + [float(a.max()) / 255.0 for a in acts]
            model.act_scale.copy_(torch.tensor(scales))
        model.quantize = True

        class QAT(nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                self.m.refresh_weight_scales()
                return self.m(x)

        train(QAT(model), self.x_train, self.y_train, epochs=self.epochs(10), lr=5e-4)
        model.refresh_weight_scales()
        acc = torch_accuracy(model, self.x_test, self.y_test)
        name = "torch_qdq_mlp.onnx"
        float_export(
            model,
            torch.from_numpy(self.x_train[:2]),
            self.out / name,
            in_name="x",
            out_name="logits",
            opset=13,
        )
        self.record(
            name,
            dialect="qdq",
            layout="flat",
            output_kind="logits",
            exporter="torch.onnx.export(dynamo=False, opset 13) of "
            "torch.fake_quantize_per_tensor_affine / "
            "torch.fake_quantize_per_channel_affine",
            description="MLP 64-64-32-10 trained with torch fake quantization: "
            "input and hidden activations uint8 [0,255] zero point 0 "
            "(input scale 1/255), weights int8 [-128,127] zero point 0 "
            "per-output-channel scale max|w|/127; float biases (Gemm), "
            "float logits",
            torch_acc=acc,
            notes=[
                (
                    "activation QuantizeLinear/DequantizeLinear pairs take their "
                    "scale (float32 scalar) and zero point (uint8 scalar 0) from "
                    "Constant NODES, not initializers"
                ),
                (
                    "weights stay FLOAT initializers: QuantizeLinear(W, scale[C], "
                    "int8 zp[C], axis=0) -> DequantizeLinear(axis=0) -> Gemm, i.e. "
                    "the weight quantization is evaluated at run time (not folded)"
                ),
                (
                    "Relu is explicit (Gemm -> Relu -> QuantizeLinear); biases are "
                    "float Gemm inputs (not quantized); the last Gemm output (logits) "
                    "is not quantized"
                ),
                "ir_version 7, opset 13 as written by the TorchScript exporter",
                (
                    "with default session options onnxruntime fuses the two hidden "
                    "DequantizeLinear -> Gemm -> Relu -> QuantizeLinear chains into "
                    "com.microsoft QGemm (float bias re-quantised to int32, fused "
                    "requantisation); a few hidden codes then differ by one step from the "
                    "literal QDQ semantics (run_reference(..., ort_optimize=False)), see "
                    "ort_unoptimized_*; argmax is unaffected"
                ),
            ],
        )

    # ------------------------------------------------------------------ exporter forms (issue 9)
    def _trained(self, model: nn.Module, layout: str, epochs: int, lr: float) -> tuple[nn.Module, float]:
        seed_all()
        x = self.data(layout)
        train(model, x, self.y_train, epochs=self.epochs(epochs), lr=lr)
        return model, torch_accuracy(model, self.data(layout, "test"), self.y_test)

    def _sample(self, layout: str) -> torch.Tensor:
        return torch.from_numpy(self.data(layout)[:2])

    def qcdq_mlp(self):
        seed_all()
        model, acc = self._trained(BrevitasMLP("w4a4"), "flat", 60, 1e-2)
        name = "qcdq_mlp_w4a4.onnx"
        xf.brevitas_qcdq_export(model, self._sample("flat"), self.out / name, dynamic_axes("x", "logits"))
        self.record(
            name, dialect="qdq", layout="flat", output_kind="logits",
            exporter="brevitas.export.export_onnx_qcdq(dynamo=False)",
            description="the qonnx_mlp_w4a4 network (8b input, 4b weights, 4b QuantReLU, Int32Bias "
            "hidden biases) exported as QCDQ",
            torch_acc=acc,
            notes=[
                "every quantizer is QuantizeLinear -> Clip -> DequantizeLinear with int8/uint8 "
                "codes; the Clip narrows them to the 4-bit range ([-8, 7] signed, [0, 15] unsigned)",
                "weights are int8 Constant codes -> Clip([-7, 7], narrow) -> DequantizeLinear",
                "hidden biases are int32 codes -> DequantizeLinear; the last bias is a float "
                "initializer also listed as a graph input",
                f"ops {xf.op_histogram(self.out / name)}",
            ],
        )  # fmt: skip

    def qcdq_cnn(self):
        model, acc = self._trained(xf.BrevitasCNN3(), "image", 30, 5e-3)
        name = "qcdq_cnn_w3a3.onnx"
        xf.brevitas_qcdq_export(model, self._sample("image"), self.out / name, dynamic_axes("x", "logits"))
        self.record(
            name, dialect="qdq", layout="image", output_kind="logits",
            exporter="brevitas.export.export_onnx_qcdq(dynamo=False)",
            description="3-bit CNN on [N,1,8,8]: 8b input, QuantConv2d 1->16 and 16->32 3x3 (3b "
            "per-channel weights, no bias) + BatchNorm + QuantReLU 3b, MaxPool 2 after each, "
            "QuantLinear 128->10 (3b per-tensor, float bias), float logits",
            torch_acc=acc,
            notes=[
                "3-bit codes appear as Clip([-3, 3]) on int8 weight codes and Clip([0, 7]) on uint8 "
                "activation codes between QuantizeLinear and DequantizeLinear",
                f"ops {xf.op_histogram(self.out / name)}",
            ],
        )  # fmt: skip

    def torch_ao(self, opset: int):
        seed_all()
        model = xf.torch_ao_prepare(xf.TorchAoMLP())
        train(model, self.x_train, self.y_train, epochs=self.epochs(40), lr=3e-3)
        acc = torch_accuracy(model, self.x_test, self.y_test)
        name = f"torch_ao_qat_mlp_opset{opset}.onnx"
        xf.torch_ao_export(model, self._sample("flat"), self.out / name, opset, dynamic_axes("x", "logits"))
        self.record(
            name, dialect="qdq", layout="flat", output_kind="logits",
            exporter=f"torch.onnx.export(dynamo=False, opset {opset}) of a torch.ao.quantization "
            "eager QAT model (fuse_modules_qat + prepare_qat, observers disabled for export)",
            description="MLP 64-64-32-10 (Linear+ReLU fused for QAT); activations reduce-range "
            "uint8 0..127 (MovingAverageMinMaxObserver), weights int8 per-channel symmetric; "
            "float biases, the logits quantized too (fake-quant after fc3)",
            torch_acc=acc,
            notes=[
                "reduce-range activations are QuantizeLinear(uint8) -> Clip(0, 127) -> "
                "DequantizeLinear, the Clip bounds from Constant nodes",
                "weights stay float initializers: QuantizeLinear(axis=0) -> DequantizeLinear -> Gemm",
                "torch 2.13's dynamo exporter cannot export fake-quant models "
                "(aten.fake_quantize_per_tensor_affine_cachemask has no fake-tensor kernel), so "
                "the recent-opset file uses the TorchScript exporter's newest opset (20)",
                f"ops {xf.op_histogram(self.out / name)}",
            ],
        )  # fmt: skip

    def float_model(self, key: str, model: nn.Module, layout: str, epochs: int, opset: int) -> Path:
        path = self.tmp / f"float_{key}.onnx"
        if not path.exists():
            model, acc = self._trained(model, layout, epochs, 3e-3)
            self._float_acc[key] = acc
            xf.float_export_opset(model, self._sample(layout), path, opset, dynamic_axes("x", "logits"))
        return path

    def ort_s8w4(self, name: str, key: str, contrib: bool):
        src = self.float_model(key, xf.ResNet8() if key == "resnet8" else xf.DSCNN(), "image", 40, 17)
        ort_quantize(
            src, self.out / name, as_images(self.calib), "x", fmt="qdq", per_channel=True, activation_type="QInt8",
            weight_type="QInt4", extra_options={"ActivationSymmetric": True, "UseQDQContribOps": contrib},
            opset=None if contrib else 21,
        )  # fmt: skip
        arch = {"resnet8": xf.ResNet8.__doc__, "dscnn": xf.DSCNN.__doc__}[key]
        self.record(
            name, dialect="qdq", layout="image", output_kind="logits",
            exporter="onnxruntime.quantization.quantize_static(QDQ, per_channel=True, "
            "activation_type=QInt8, weight_type=QInt4, ActivationSymmetric=True"
            + (", UseQDQContribOps=True" if contrib else "") + ") of torch.onnx.export(opset 17)",
            description=" ".join(arch.split()) + "; symmetric int8 activations, int4 per-channel weights",
            torch_acc=self._float_acc[key], torch_acc_of="the float torch model before ORT quantization",
            notes=[
                ("QuantizeLinear / DequantizeLinear in the com.microsoft domain" if contrib
                 else "int4 weights need opset 21: the quantizer raises the model's opset"),
                f"ops {xf.op_histogram(self.out / name)}",
            ],
        )  # fmt: skip

    def ort_qop(self, name: str, key: str):
        layout = "flat" if key == "matmul_add" else "image"
        model = xf.MatMulAddMLP() if key == "matmul_add" else xf.DSCNN()
        src = self.float_model(key, model, layout, 60 if key == "matmul_add" else 40, 13 if layout == "flat" else 17)
        calib = self.calib if layout == "flat" else as_images(self.calib)
        ort_quantize(src, self.out / name, calib, "x", fmt="qoperator", per_channel=key != "matmul_add",
                     pre_optimize=key != "matmul_add")  # fmt: skip
        self.record(
            name, dialect="qoperator", layout=layout, output_kind="logits",
            exporter="onnxruntime.quantization.quantize_static(QOperator, "
            f"per_channel={key != 'matmul_add'}, activation_type=QUInt8, weight_type=QInt8) of "
            f"torch.onnx.export(dynamo=False, opset {13 if layout == 'flat' else 17})",
            description=" ".join((model.__doc__ or "").split()),
            torch_acc=self._float_acc[key], torch_acc_of="the float torch model before ORT quantization",
            notes=[
                ("each Linear is QLinearMatMul -> com.microsoft QLinearAdd whose second input is a "
                 "constant uint8 bias with its own scale and zero point" if key == "matmul_add" else
                 "onnxruntime requantizes QLinearConv with a float32 multiplier; exact float64 "
                 "arithmetic differs on a few codes (accelgen --arithmetic exact)"),
                f"ops {xf.op_histogram(self.out / name)}",
            ],
        )  # fmt: skip

    def qonnx_mean_head(self):
        model, acc = self._trained(xf.BrevitasMeanHead(), "image", 30, 5e-3)
        name = "qonnx_cnn_reducemean.onnx"
        brevitas_export(model, self._sample("image"), self.out / name, in_name="x", out_name="logits")
        self.record(
            name, dialect="qonnx", layout="image", output_kind="logits",
            exporter="brevitas.export.export_qonnx(dynamo=False)",
            description=" ".join(xf.BrevitasMeanHead.__doc__.split()),
            torch_acc=acc,
            notes=[
                "x.mean(dim=(2, 3)) exports as ReduceMean(axes=[2, 3], keepdims=0), then Quant",
                f"ops {xf.op_histogram(self.out / name)}",
            ],
        )  # fmt: skip


EXPORTER_FORMS = {
    "qcdq_mlp_w4a4.onnx": lambda b: b.qcdq_mlp(),
    "qcdq_cnn_w3a3.onnx": lambda b: b.qcdq_cnn(),
    "torch_ao_qat_mlp_opset13.onnx": lambda b: b.torch_ao(13),
    "torch_ao_qat_mlp_opset20.onnx": lambda b: b.torch_ao(20),
    "qdq_resnet8_s8w4_opset21.onnx": lambda b: b.ort_s8w4("qdq_resnet8_s8w4_opset21.onnx", "resnet8", False),
    "qdq_dscnn_s8w4_msdomain.onnx": lambda b: b.ort_s8w4("qdq_dscnn_s8w4_msdomain.onnx", "dscnn", True),
    "qop_dscnn_perchannel.onnx": lambda b: b.ort_qop("qop_dscnn_perchannel.onnx", "dscnn"),
    "qop_mlp_matmul_add.onnx": lambda b: b.ort_qop("qop_mlp_matmul_add.onnx", "matmul_add"),
    "qonnx_cnn_reducemean.onnx": lambda b: b.qonnx_mean_head(),
}


ALL = [
    "qonnx_mlp_w4a4.onnx",
    "qonnx_mlp_w4a4_dynamo.onnx",
    "qonnx_mlp_w4a4_po2.onnx",
    "qonnx_mlp_w2a2.onnx",
    "qonnx_mlp_w1a1.onnx",
    "qonnx_cnn_w4a8.onnx",
    "qdq_mlp_pertensor.onnx",
    "qdq_mlp_s8.onnx",
    "qdq_cnn_perchannel_residual.onnx",
    "qop_mlp_pertensor.onnx",
    "qop_cnn_perchannel_residual.onnx",
    "torch_qdq_mlp.onnx",
    *EXPORTER_FORMS,
]


def build(b: Builder, only: set[str] | None) -> None:
    def want(*names):
        return only is None or any(n in only for n in names)

    if want("qonnx_mlp_w4a4.onnx", "qonnx_mlp_w4a4_dynamo.onnx"):
        b.brevitas_mlp("w4a4", epochs=60, lr=1e-2, also_dynamo="qonnx_mlp_w4a4_dynamo.onnx")
    if want("qonnx_mlp_w4a4_po2.onnx"):
        b.brevitas_mlp("w4a4_po2", epochs=60, lr=1e-2)
    if want("qonnx_mlp_w2a2.onnx"):
        b.brevitas_mlp("w2a2", epochs=80, lr=1e-2)
    if want("qonnx_mlp_w1a1.onnx"):
        b.brevitas_mlp("w1a1", epochs=80, lr=1e-2)
    if want("qonnx_cnn_w4a8.onnx"):
        b.brevitas_cnn(epochs=30, lr=5e-3)
    if want("qdq_mlp_pertensor.onnx"):
        b.ort_model("qdq_mlp_pertensor.onnx", kind="mlp", fmt="qdq", per_channel=False)
    if want("qdq_mlp_s8.onnx"):
        b.ort_model(
            "qdq_mlp_s8.onnx",
            kind="mlp",
            fmt="qdq",
            per_channel=False,
            activation_type="QInt8",
        )
    if want("qdq_cnn_perchannel_residual.onnx"):
        b.ort_model("qdq_cnn_perchannel_residual.onnx", kind="cnn", fmt="qdq", per_channel=True)
    if want("qop_mlp_pertensor.onnx"):
        b.ort_model("qop_mlp_pertensor.onnx", kind="mlp", fmt="qoperator", per_channel=False)
    if want("qop_cnn_perchannel_residual.onnx"):
        b.ort_model(
            "qop_cnn_perchannel_residual.onnx",
            kind="cnn",
            fmt="qoperator",
            per_channel=True,
        )
    if want("torch_qdq_mlp.onnx"):
        b.torch_qdq()
    for name, make in EXPORTER_FORMS.items():
        if want(name):
            make(b)


def write_manifest(out: Path, entries: dict[str, dict]) -> None:
    path = out / "manifest.json"
    old = {}
    if path.exists():
        with open(path) as f:
            old = {e["file"]: e for e in json.load(f).get("models", [])}
    old.update(entries)
    models = [old[n] for n in ALL if n in old] + [e for n, e in sorted(old.items()) if n not in ALL]
    manifest = {
        "generator": "tests/models/make_models.py",
        "data": "sklearn.datasets.load_digits, pixels/16 float32; train_test_split("
        "test_size=0.25, random_state=0, stratify=y); accuracy on the 450 test samples",
        "reference_executor": "tests/reference.py: onnxruntime CPUExecutionProvider (qdq, "
        "qoperator); qonnx execute_onnx after cleanup_model (qonnx)",
        "versions": versions(),
        "models": models,
    }
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")


def versions() -> dict[str, str]:
    from importlib.metadata import version

    import brevitas
    import onnxruntime

    return {
        "torch": torch.__version__,
        "brevitas": brevitas.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "qonnx": version("qonnx"),
    }


def print_table(entries: dict[str, dict]) -> None:
    print(f"\n{'file':38s} {'dialect':9s} {'acc':>6s} {'bytes':>7s} {'batch':6s} out")
    for e in entries.values():
        print(
            f"{e['file']:38s} {e['dialect']:9s} {e['reference_accuracy']:6.3f} "
            f"{e['size_bytes']:7d} {'dyn' if e['batch_dynamic'] else 'fixed':6s} {e['output']}"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--only", default="", help="comma-separated file names to rebuild")
    ap.add_argument("--fast", action="store_true", help="few epochs (smoke test only)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    if args.fast and args.out.resolve() == HERE:
        ap.error("--fast writes under-trained models: give a scratch directory with --out")
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    if only:
        unknown = only - set(ALL)
        if unknown:
            ap.error(f"unknown model(s): {sorted(unknown)}")
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    b = Builder(args.out, fast=args.fast)
    try:
        build(b, only)
    finally:
        shutil.rmtree(b.tmp, ignore_errors=True)
    write_manifest(args.out, b.entries)
    print_table(b.entries)
    print(f"done in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
