"""Train and export the four MLPerf Tiny networks at their real shapes into ``tests/models/mlperf_tiny/``.

    /path/to/python tests/models/make_mlperf_tiny.py [--only NAME[,NAME...]] [--out DIR] [--fast]

A sibling of ``make_models.py`` (same helpers: seeding, training loop, Brevitas export,
``finalize``): the networks are the MLPerf Tiny v1.x reference topologies (mlcommons/tiny,
``benchmark/training``; the layer shapes match fpgaConvNet's v1.1 ZedBoard configurations in
mlcommons/tiny_results_v1.1 ``closed/fpgaconvnet/code/zedboard``):

* ``mlperf_resnet8_w8a8.onnx``: ResNet-8, 32x32x3 input (CIFAR-10 shape), 16/32/64 channels,
  three residual stacks (1x1 stride-2 projection shortcuts), 8x8 average pool, Dense 10;
* ``mlperf_dscnn_w8a8.onnx``: DS-CNN keyword spotting, 49x10x1 input (MFCC shape), conv 10x4
  stride 2 -> 25x5x64, four depthwise 3x3 + pointwise 1x1 blocks, average pool, Dense 12;
* ``mlperf_mobilenet_w8a8.onnx``: MobileNetV1 0.25 visual wake words, 96x96x3 input, 13
  depthwise-separable blocks (8..256 channels), average pool, Dense 2;
* ``mlperf_autoencoder_w8a8.onnx``: the FC AutoEncoder for anomaly detection, 640 inputs,
  Dense 128 x4 -> 8 -> 128 x4 -> 640 with BatchNorm + ReLU between.

Bit widths: 8-bit weights (per-channel) and 8-bit activations (unsigned after ReLU), the
INT8 of fpgaConvNet's closed-division entries (the only published FPGA entries of these
networks, see ``benchmarks/bench_mlperf_tiny.py``). Quantized with Brevitas, exported with
``export_qonnx``.

Data (the real data sets are not shipped offline): the image networks train on
scikit-learn's digits resized to 32x32 / 96x96 and repeated over 3 channels (labels 0..9;
the VWW network learns "digit >= 5"), the keyword spotter on synthetic 49x10 "MFCC"
patterns (12 classes, one smooth template each plus noise), the autoencoder on synthetic
640-value frames of a few sinusoid mixtures (reconstruction loss). Training is brief (one to
three epochs on a few hundred samples, then BatchNorm statistics and activation scales calibrated
on the training data): these fixtures exist for shapes, operator forms and bit-exactness, and no accuracy
on the real MLPerf data sets is claimed. The accuracy recorded in the manifest is on the
synthetic or resized held-out data only.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

mm = importlib.import_module("tests.models.make_models")
mlperf_data = importlib.import_module("tests.mlperf_data")

OUT = HERE / "mlperf_tiny"
MAX_BYTES = 400 * 1024


def _qnn():
    import brevitas.nn as qnn
    from brevitas import quant as bq

    return qnn, bq


class _Q:
    """The quantizers every network shares: 8-bit per-channel weights, 8-bit ReLU outputs."""

    def __init__(self):
        self.qnn, self.bq = _qnn()

    def inp(self):
        return self.qnn.QuantIdentity(act_quant=self.bq.Int8ActPerTensorFloat, bit_width=8, return_quant_tensor=True)

    def conv(self, cin, cout, k, stride=1, padding=0, groups=1):
        return self.qnn.QuantConv2d(
            cin, cout, k, stride=stride, padding=padding, groups=groups, bias=False,
            weight_quant=self.bq.Int8WeightPerChannelFloat, weight_bit_width=8,
        )  # fmt: skip

    def linear(self, cin, cout, bias=True):
        return self.qnn.QuantLinear(
            cin, cout, bias=bias, weight_quant=self.bq.Int8WeightPerChannelFloat, weight_bit_width=8
        )

    def relu(self):
        return self.qnn.QuantReLU(act_quant=self.bq.Uint8ActPerTensorFloat, bit_width=8, return_quant_tensor=True)

    def act(self, signed=True):
        aq = self.bq.Int8ActPerTensorFloat if signed else self.bq.Uint8ActPerTensorFloat
        return self.qnn.QuantIdentity(act_quant=aq, bit_width=8, return_quant_tensor=True)


class ResNet8(nn.Module):
    """MLPerf Tiny IC ResNet-8 on [N,3,32,32]: conv 3x3 16 + BN + ReLU; three stacks of (conv 3x3
    [stride 2] + BN + ReLU, conv 3x3 + BN) + shortcut (identity, then 1x1 stride-2 conv) -> add ->
    ReLU (16, 32, 64 channels); average pool 8x8; Dense 64 -> 10 (float logits)."""

    def __init__(self):
        super().__init__()
        q = _Q()
        self.inp = q.inp()
        self.stem = nn.Sequential(q.conv(3, 16, 3, padding=1), nn.BatchNorm2d(16), q.relu())
        self.a, self.b, self.short, self.add_q, self.out_relu = (nn.ModuleList() for _ in range(5))
        for cin, cout, stride in ((16, 16, 1), (16, 32, 2), (32, 64, 2)):
            self.a.append(nn.Sequential(q.conv(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), q.relu()))
            self.b.append(nn.Sequential(q.conv(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout)))
            self.short.append(nn.Identity() if stride == 1 else q.conv(cin, cout, 1, stride))
            # one quantizer for both operands of the add: Brevitas adds quantized tensors of one scale
            self.add_q.append(q.act())
            self.out_relu.append(q.relu())
        self.pool = nn.AvgPool2d(8)
        self.pooled = q.act(signed=False)
        self.fc = q.linear(64, 10)

    def forward(self, x):
        x = self.stem(self.inp(x))
        for a, b, short, add_q, relu in zip(self.a, self.b, self.short, self.add_q, self.out_relu):
            x = relu(add_q(b(a(x))) + add_q(short(x)))
        return self.fc(torch.flatten(self.pooled(self.pool(x)), 1))


class DSCNN(nn.Module):
    """MLPerf Tiny KWS DS-CNN on [N,1,49,10]: conv 10x4 stride 2 (pad 5x1) 64 + BN + ReLU ->
    25x5x64; four blocks of depthwise 3x3 + BN + ReLU, pointwise 1x1 64 + BN + ReLU; average
    pool 25x5; Dense 64 -> 12 (float logits)."""

    def __init__(self, c: int = 64):
        super().__init__()
        q = _Q()
        self.inp = q.inp()
        layers = [q.conv(1, c, (10, 4), 2, (5, 1)), nn.BatchNorm2d(c), q.relu()]
        for _ in range(4):
            layers += [q.conv(c, c, 3, 1, 1, groups=c), nn.BatchNorm2d(c), q.relu()]
            layers += [q.conv(c, c, 1), nn.BatchNorm2d(c), q.relu()]
        self.body = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d((25, 5))
        self.pooled = q.act(signed=False)
        self.fc = q.linear(c, 12)

    def forward(self, x):
        return self.fc(torch.flatten(self.pooled(self.pool(self.body(self.inp(x)))), 1))


# MobileNetV1 alpha 0.25: (output channels, stride) of the 13 depthwise-separable blocks
MOBILENET_BLOCKS = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1), (128, 1),
                    (128, 1), (128, 1), (256, 2), (256, 1))  # fmt: skip


class MobileNetV1(nn.Module):
    """MLPerf Tiny VWW MobileNetV1 0.25 on [N,3,96,96]: conv 3x3 stride 2 8 + BN + ReLU; 13 blocks
    of depthwise 3x3 [stride 2] + BN + ReLU, pointwise 1x1 + BN + ReLU (16 .. 256 channels); average
    pool 3x3; Dense 256 -> 2 (float logits)."""

    def __init__(self):
        super().__init__()
        q = _Q()
        self.inp = q.inp()
        layers = [q.conv(3, 8, 3, 2, 1), nn.BatchNorm2d(8), q.relu()]
        cin = 8
        for cout, stride in MOBILENET_BLOCKS:
            layers += [q.conv(cin, cin, 3, stride, 1, groups=cin), nn.BatchNorm2d(cin), q.relu()]
            layers += [q.conv(cin, cout, 1), nn.BatchNorm2d(cout), q.relu()]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(3)
        self.pooled = q.act(signed=False)
        self.fc = q.linear(256, 2)

    def forward(self, x):
        return self.fc(torch.flatten(self.pooled(self.pool(self.body(self.inp(x)))), 1))


class AutoEncoder(nn.Module):
    """MLPerf Tiny AD FC AutoEncoder on [N,640]: Dense 128 + BN + ReLU x4 -> Dense 8 + BN + ReLU ->
    Dense 128 + BN + ReLU x4 -> Dense 640 (float reconstruction)."""

    def __init__(self):
        super().__init__()
        q = _Q()
        self.inp = q.inp()
        sizes = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128]
        layers = []
        for cin, cout in zip(sizes, sizes[1:]):
            layers += [q.linear(cin, cout, bias=False), nn.BatchNorm1d(cout), q.relu()]
        self.body = nn.Sequential(*layers)
        self.out = q.linear(128, 640)

    def forward(self, x):
        return self.out(self.body(self.inp(x)))


# name -> (model class, data kind, epochs, learning rate)
NETWORKS = {
    "mlperf_resnet8_w8a8.onnx": (ResNet8, "ic", 1, 3e-3),
    "mlperf_dscnn_w8a8.onnx": (DSCNN, "kws", 1, 3e-3),
    "mlperf_mobilenet_w8a8.onnx": (MobileNetV1, "vww", 1, 3e-3),
    "mlperf_autoencoder_w8a8.onnx": (AutoEncoder, "ad", 3, 3e-3),
}


#: training set sizes: brief training (the fixtures are for shapes and bit-exactness, not accuracy)
TRAIN_SAMPLES = {"ic": 320, "vww": 128, "kws": 480, "ad": 256}


def train_autoencoder(model: nn.Module, x: np.ndarray, *, epochs: int, lr: float, batch_size: int = 64) -> nn.Module:
    """Adam on the mean squared reconstruction error, seeded shuffling."""
    mm.seed_all()
    xt = torch.from_numpy(x)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(mm.SEED)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch_size):
            batch = xt[perm[i : i + batch_size]]
            opt.zero_grad()
            out = model(batch)
            out = out.value if hasattr(out, "value") else out
            F.mse_loss(out, batch).backward()
            opt.step()
    model.eval()
    return model


def store_weight_codes(path: Path) -> int:
    """Store each Quant node's float weight as int8 codes: ``Quant(Mul(Cast(codes), scale))``.

    export_qonnx writes float32 weights (4 bytes per 8-bit weight; the AutoEncoder's 264k weights
    alone are 1 MB). ``codes * scale`` quantizes back to exactly the same codes (the float32
    error of the product is far below half a step), so the model is the same function, checked on
    the reference executor by :func:`make`. Returns the number of weights rewritten.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    rewritten, nodes = 0, []
    for node in model.graph.node:
        if node.op_type == "Quant" and node.input[0] in inits and node.input[1] in inits:
            w = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
            scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            bits = int(numpy_helper.to_array(inits[node.input[3]]))
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if bits > 8 or not attrs.get("signed", 1) or float(numpy_helper.to_array(inits[node.input[2]])) != 0:
                nodes.append(node)
                continue
            qmax = 2 ** (bits - 1) - 1
            qmin = -qmax if attrs.get("narrow", 0) else -qmax - 1
            codes = np.clip(np.round(w / scale), qmin, qmax).astype(np.int8)
            base = node.input[0]
            inits[base].CopyFrom(numpy_helper.from_array(codes, base + "_codes"))
            cast, mul = base + "_codes_float", base + "_dequantized"
            nodes.append(helper.make_node("Cast", [base + "_codes"], [cast], to=onnx.TensorProto.FLOAT))
            nodes.append(helper.make_node("Mul", [cast, node.input[1]], [mul]))
            node.input[0] = mul
            rewritten += codes.size
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    # export_qonnx lists the initializers as graph inputs too; the renamed ones are not inputs any more
    names = {t.name for t in model.graph.initializer}
    kept = [i for i in model.graph.input if i.name in names or i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    onnx.save(model, str(path))
    return rewritten


def reference_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    _reference = importlib.import_module("tests.reference")
    _reference.clear_caches()
    return _reference.run_reference(path, x)


@torch.no_grad()
def calibrate(model: nn.Module, x: np.ndarray, batch_size: int = 64) -> None:
    """BatchNorm statistics, then activation scales, from the training data (forward passes only).

    After a brief training the BatchNorm running statistics and the activation quantizers'
    scales are still near their initial values, and eval-mode activations use only a few of
    the 256 codes; this sets both from the data (Brevitas ``calibration_mode``), so every
    layer's codes span their range."""
    from brevitas.graph.calibrate import calibration_mode

    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the batches below
    batches = [torch.from_numpy(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    model.train()
    for batch in batches:
        model(batch)
    model.eval()
    with calibration_mode(model):
        for batch in batches:
            model(batch)
    model.eval()


def make(name: str, out: Path, fast: bool) -> dict:
    cls, kind, epochs, lr = NETWORKS[name]
    epochs = 1 if fast else epochs
    x_train, y_train, x_test, y_test = mlperf_data.split(kind)
    x_train, y_train = x_train[: TRAIN_SAMPLES[kind]], y_train[: TRAIN_SAMPLES[kind]]
    mm.seed_all()
    model = cls()
    t0 = time.time()
    if kind == "ad":
        train_autoencoder(model, x_train, epochs=epochs, lr=lr)
    else:
        mm.train(model, x_train, y_train, epochs=epochs, lr=lr)
    calibrate(model, x_train)
    if kind == "ad":
        with torch.no_grad():
            rec = model(torch.from_numpy(x_test))
            score = {"test_mse": round(float(F.mse_loss(rec, torch.from_numpy(x_test))), 5)}
    else:
        score = {"test_accuracy": round(mm.torch_accuracy(model, x_test, y_test), 4)}
    train_s = time.time() - t0
    path = out / name
    mm.brevitas_export(model, torch.from_numpy(x_train[:2]), path, in_name="x", out_name="y")
    mm.finalize(path)
    before = reference_outputs(path, x_test[:2])
    store_weight_codes(path)
    model_proto = mm.finalize(path)
    after = reference_outputs(path, x_test[:2])
    np.testing.assert_array_equal(before, after)  # the rewrite is the same function
    size = path.stat().st_size
    assert size < MAX_BYTES, (name, size)
    _, counts, _ = mm.describe_ops(model_proto)
    entry = {
        "file": name,
        "dialect": "qonnx",
        "exporter": "brevitas.export.export_qonnx(dynamo=False)",
        "network": kind,
        "input_shape": list(x_train.shape[1:]),
        "data": mlperf_data.DESCRIPTION[kind],
        "epochs": epochs,
        "train_samples": len(x_train),
        "torch_score_on_the_synthetic_or_resized_test_split": score,
        "accuracy_claimed_on_the_real_data_set": None,
        "w_bits": 8,
        "a_bits": 8,
        "description": " ".join((cls.__doc__ or "").split()),
        "op_counts": counts,
        "size_bytes": size,
    }
    print(f"  {name}: {score} size={size} train={train_s:.0f}s ops={counts}", flush=True)
    return entry


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--only", default="", help="comma-separated file names to rebuild")
    ap.add_argument("--fast", action="store_true", help="one epoch (smoke test only)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    if args.fast and args.out.resolve() == OUT:
        ap.error("--fast writes under-trained models: give a scratch directory with --out")
    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(NETWORKS)
    unknown = set(only) - set(NETWORKS)
    if unknown:
        ap.error(f"unknown model(s): {sorted(unknown)}")
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    old = json.loads(manifest_path.read_text())["models"] if manifest_path.exists() else []
    entries = {e["file"]: e for e in old}
    for name in only:  # the manifest is rewritten after each network: a later failure keeps the earlier ones
        entries[name] = make(name, args.out, args.fast)
        manifest = {
            "generator": "tests/models/make_mlperf_tiny.py",
            "reference_executor": "tests/reference.py: qonnx execute_onnx after cleanup_model",
            "versions": mm.versions(),
            "models": [entries[n] for n in NETWORKS if n in entries],
        }
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
