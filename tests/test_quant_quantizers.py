"""µL2Q and LSQ quantizers: forward and backward against numpy written here, and the exported
forms (QONNX and QCDQ from Brevitas' own exporters) against torch, the reference executors and
accelgen's golden model; µL2Q's half-step offset must come out exactly."""

from __future__ import annotations

import math
import warnings

import brevitas.nn as qnn
import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from accelgen import golden
from accelgen.pipeline import compile_model
from accelgen.quant import freeze_weights_, ul2q_lambda
from accelgen.quant.quantizers import LsqActQuant, weight_quantizer
from accelgen.quant.train import export_qonnx
from tests.reference import run_reference

LAMBDA = {1: 1.5957691, 2: 0.9956867, 3: 0.5860194, 4: 0.3352006}  # the Gaussian optima (test_quant_lambda)


def _layer(method, bits, seed=0, n_in=12, n_out=5):
    torch.manual_seed(seed)
    layer = qnn.QuantLinear(n_in, n_out, bias=True, **weight_quantizer(method, bits)).double()
    return layer


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_ul2q_forward_and_backward_match_numpy(k):
    layer = _layer("ul2q", k)
    w = layer.weight.detach().numpy()
    alpha = LAMBDA[k] * w.std()
    codes = np.clip(np.floor(w / alpha), -(2 ** (k - 1)), 2 ** (k - 1) - 1)
    expected = alpha * (codes + 0.5)
    out = layer.quant_weight()
    np.testing.assert_allclose(out.value.detach().numpy(), expected, rtol=1e-6, atol=1e-9)
    # exported form: scale alpha/2, (k+1)-bit narrow codes (1 bit: bipolar), all odd
    assert float(out.scale) == pytest.approx(alpha / 2, rel=1e-6)
    assert float(out.bit_width) == (1 if k == 1 else k + 1)
    ints = (out.value / out.scale).detach().numpy()
    assert np.all(np.abs(np.round(ints) % 2) == 1)
    # straight-through inside the outermost levels, zero outside
    g = np.random.default_rng(k).standard_normal(w.shape)
    out.value.backward(torch.from_numpy(g))
    inside = np.abs(w) <= alpha * 2 ** (k - 1) - alpha / 2
    np.testing.assert_allclose(layer.weight.grad.numpy(), g * inside)


def test_lsq_weight_step_gradient_per_channel_matches_numpy():
    k = 3
    layer = _layer("lsq", k)
    tq = layer.weight_quant.tensor_quant
    w = layer.weight.detach().numpy()
    step0 = LAMBDA[3] * w.std(axis=1, keepdims=True)
    np.testing.assert_allclose(tq.step.detach().numpy(), step0, rtol=1e-6)  # initialised from µL2Q's step
    step0 = tq.step.detach().numpy()  # (held in float32 before .double())
    v = w / step0
    lo, hi = -4, 3
    q = np.clip(np.round(v), lo, hi)
    out = layer.quant_weight().value
    np.testing.assert_allclose(out.detach().numpy(), q * step0, rtol=1e-9)
    g = np.random.default_rng(0).standard_normal(w.shape)
    out.backward(torch.from_numpy(g))
    inside = (v >= lo) & (v <= hi)
    d_step = np.where(inside, q - v, np.where(v < lo, lo, hi))
    factor = 1.0 / math.sqrt(w.shape[1] * hi)
    np.testing.assert_allclose(tq.step.grad.numpy(), (g * d_step).sum(axis=1, keepdims=True) * factor, rtol=1e-9)
    np.testing.assert_allclose(layer.weight.grad.numpy(), g * inside)


def test_lsq_activation_initialises_from_the_calibration_batch_and_clips():
    act = qnn.QuantReLU(act_quant=LsqActQuant, bit_width=2, return_quant_tensor=False)
    x = torch.linspace(-1, 3, 41)
    act.train()
    y = act(x).detach().numpy()
    xr = np.maximum(x.numpy(), 0)
    step = 2 * xr.mean() / math.sqrt(3)
    np.testing.assert_allclose(y, np.clip(np.round(xr / step), 0, 3) * step, rtol=1e-6)


class _Net(torch.nn.Module):
    def __init__(self, method, bits):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=LsqActQuant.let(signed=True), bit_width=8, return_quant_tensor=False)
        self.fc1 = qnn.QuantLinear(16, 12, bias=True, **weight_quantizer(method, bits))
        self.act = qnn.QuantReLU(act_quant=LsqActQuant, bit_width=4, return_quant_tensor=False)
        self.fc2 = qnn.QuantLinear(12, 4, bias=True, **weight_quantizer(method, bits))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(self.inp(x))))


def _net(method, bits, x):
    torch.manual_seed(1)
    net = _Net(method, bits)
    with torch.no_grad():
        net.train()
        net(x)  # calibrate the activation steps
    freeze_weights_(net)
    return net.eval()


def _weights_of(path):
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node if n.op_type == "Constant"}
    inits.update(consts)
    return model, inits


@pytest.mark.parametrize("method,bits", [("ul2q", 1), ("ul2q", 2), ("ul2q", 3), ("ul2q", "ternary"), ("lsq", 1),
                                         ("lsq", 2)])  # fmt: skip
def test_qonnx_export_is_exact_in_qonnx_and_accelgen(tmp_path, method, bits):
    x = torch.rand(64, 16) * 2 - 1
    net = _net(method, bits, x)
    path = export_qonnx(net, x[:1], tmp_path / "m.onnx")
    model, consts = _weights_of(path)
    weight_nodes = [n for n in model.graph.node if n.op_type in ("Quant", "BipolarQuant") and n.input[0] in consts]
    assert len(weight_nodes) == 2
    for node in weight_nodes:
        if method == "ul2q" and bits not in (1, "ternary"):
            # the half-step grid: a (k+1)-bit narrow Quant with step alpha / 2 on odd codes
            w, scale, bw = consts[node.input[0]], consts[node.input[1]], consts[node.input[3]]
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert node.op_type == "Quant" and float(bw) == bits + 1 and attrs["narrow"] == 1
            alpha = 2 * float(scale)
            layer_w = (net.fc1 if node is weight_nodes[0] else net.fc2).weight.detach().numpy()
            assert np.all(np.abs(w / scale) <= 2**bits - 1)
            np.testing.assert_allclose(w, layer_w)
            assert np.all(np.round(w / scale) % 2 != 0) and alpha > 0
        if bits == 1:
            assert node.op_type == "BipolarQuant"
    xs = x.numpy()
    with torch.no_grad():
        ref_torch = net(x).numpy()
    ref = run_reference(path, xs)
    np.testing.assert_allclose(ref, ref_torch, atol=1e-5)
    compiled = compile_model(str(path))
    ours = next(iter(golden.run(compiled.graph, {compiled.graph.inputs[0]: xs}).values()))
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    if method == "ul2q" and bits in (2, 3):  # accelgen holds the odd codes and the half step exactly
        dense = [op for op in compiled.graph.ops if getattr(op, "weights", None) is not None]
        assert len(dense) == 2
        for op, node in zip(dense, weight_nodes):
            w, scale = consts[node.input[0]], float(consts[node.input[1]])
            assert op.w_qtype.bits == bits + 1 and op.w_qtype.narrow
            assert np.all(np.asarray(op.weights) % 2 != 0)
            np.testing.assert_array_equal(np.sort(np.asarray(op.weights).ravel()), np.sort(np.round(w / scale).ravel()))
            assert np.asarray(op.w_qtype.scale, dtype=np.float64).ravel()[0] == pytest.approx(scale, rel=1e-7)


@pytest.mark.parametrize("bits", [2, 3])
def test_qcdq_export_of_ul2q_runs_in_onnxruntime_and_accelgen(tmp_path, bits):
    from brevitas.export import export_onnx_qcdq

    x = torch.rand(64, 16) * 2 - 1
    net = _net("ul2q", bits, x)
    path = tmp_path / "qcdq.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx_qcdq(net, (x[:1],), str(path), dynamo=False, input_names=["input"], output_names=["output"],
                         dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})  # fmt: skip
    model = onnx.load(str(path))
    model.ir_version = min(model.ir_version, 10)
    onnx.save(model, str(path))
    xs = x.numpy()
    with torch.no_grad():
        ref_torch = net(x).numpy()
    ref = run_reference(path, xs, ort_optimize=False)
    np.testing.assert_allclose(ref, ref_torch, atol=1e-5)
    compiled = compile_model(str(path))
    ours = next(iter(golden.run(compiled.graph, {compiled.graph.inputs[0]: xs}).values()))
    np.testing.assert_allclose(ours, ref, atol=1e-5)  # accelgen reads the QCDQ form exactly


def test_lambda_used_is_the_computed_optimum():
    assert all(abs(ul2q_lambda(k) - v) < 1e-6 for k, v in LAMBDA.items())
