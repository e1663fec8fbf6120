"""A zero-padded convolution of bipolar (-1/+1) activations: the padding needs the value 0,
so the input is carried as narrow 2-bit codes (accelgen/passes/bipolar.py), with the same
values. The golden model equals the qonnx executor (an independent executor of the QONNX
semantics) and the generated design equals golden in C-simulation."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from accelgen import golden
from accelgen.cli import main
from accelgen.pipeline import compile_model
from benchmarks.topologies import QonnxNet
from tests.reference import run_reference


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    net = QonnxNet("bipolar_padded", w_bits=1, a_bits=1, seed=3)
    x = net.input((1, 8, 8))
    h = net.conv(x, 8, 3)  # its input is 8-bit: padded with the real 0
    h = net.maxpool(h, 2, 2)
    h = net.conv(h, 16, 3)  # a bipolar input, zero-padded: the case
    y = net.dense(net.flatten(h), 10, quantize=False)
    model = net.model(y)
    # power-of-two scales: the reference's float32 sums are then exact, so a sum of exactly 0
    # (which BipolarQuant sends to +1) is 0 there too, not a rounding residue of either sign
    for init in model.graph.initializer:
        if init.name.startswith("scale"):
            value = float(onnx.numpy_helper.to_array(init))
            init.CopyFrom(onnx.numpy_helper.from_array(np.float32(2.0 ** np.round(np.log2(value))), init.name))
    model.graph.output[0].CopyFrom(onnx.helper.make_tensor_value_info(y, onnx.TensorProto.FLOAT, ["batch", 10]))
    path = tmp_path_factory.mktemp("bipolar") / "bipolar_padded.onnx"
    onnx.save(model, str(path))
    return path


def test_padded_bipolar_input_is_carried_as_narrow_int2(model_path):
    graph = compile_model(model_path).graph
    convs = [op for op in graph.ops if op.kind == "Conv"]
    q = graph.tensors[convs[1].inputs[0]].qtype
    assert (q.bits, q.signed, q.narrow, q.bipolar) == (2, True, True, False)
    # the maxpool in front reads and writes the same codes: retyped with it
    pool = next(op for op in graph.ops if op.kind == "MaxPool")
    assert graph.tensors[pool.inputs[0]].qtype == q
    # the first conv's 8-bit input is untouched
    assert graph.tensors[convs[0].inputs[0]].qtype.bits == 8


def test_golden_equals_the_qonnx_executor(model_path):
    x = np.random.default_rng(0).normal(0, 4, (32, 1, 8, 8)).astype(np.float32)
    ours = golden.run(compile_model(model_path).graph, x)
    ref = run_reference(model_path, x)
    out = next(iter(ours.values()))
    assert np.array_equal(out, ref), np.abs(out - ref).max()


@pytest.mark.csim
def test_csim_equals_golden(model_path, tmp_path):
    out = tmp_path / "out"
    assert main(["build", str(model_path), "--board", "ultra96", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["csim"]["passed"] and report["csim"]["vectors"] > 0
