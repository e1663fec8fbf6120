"""export_qonnx: the qonnx executor runs the file and equals torch; accelgen finds every TT layer.

References are independent of the exporter: torch's eval-mode forward of the trained modules
and the qonnx executor (qonnx's Quant, onnxruntime for the standard nodes). The front end and
the golden interpreter are the code under test on the other side: they must find the TT
layer by the graph's structure alone and compute the executor's codes.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from accelgen import golden, ir
from accelgen.pipeline import compile_model
from accelgen.tensor import FakeQuant, TTLinear
from accelgen.tensor.export import ExportError, export_qonnx
from accelgen.tensor.qlinear import QuantLinear
from tests.reference import run_reference

#: (modes_in, modes_out, internal ranks) for d = 2, 3, 4
SHAPES = {
    2: ((4, 6), (3, 4), (3,)),
    3: ((2, 3, 4), (2, 2, 3), (2, 3)),
    4: ((2, 3, 2, 2), (3, 2, 2, 2), (2, 3, 2)),
}


def contiguous_orders(d: int) -> list[tuple[int, ...]]:
    """Every permutation whose prefixes are contiguous runs of cores (brute force)."""
    return [
        p
        for p in itertools.permutations(range(d))
        if all(max(p[: t + 1]) - min(p[: t + 1]) == t for t in range(d))
    ]


CASES = [(d, order) for d in SHAPES for order in contiguous_orders(d)]
BATCH = 48


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tt_network(d: int, order, seed: int = 0, core_bits: int = 4, head: bool = True) -> nn.Sequential:
    """TT layer (unsigned 8-bit input) -> ReLU -> quantized dense head, scales initialised on data."""
    torch.manual_seed(seed)
    modes_in, modes_out, ranks = SHAPES[d]
    tt = TTLinear(math.prod(modes_in), math.prod(modes_out), modes_in, modes_out, rank=ranks, order=order,
                  core_bits=core_bits, mid_bits=8, act_bits=8, act_signed=False, name="fc1")  # fmt: skip
    with torch.no_grad():
        tt.bias.uniform_(-0.2, 0.2)
    layers = [tt, nn.ReLU()]
    if head:
        layers.append(QuantLinear(tt.out_features, 5, weight_bits=6, act_bits=8, out_bits=8, name="fc2"))
    model = nn.Sequential(*layers)
    model.train()
    with torch.no_grad():
        model(sample_inputs(tt.in_features, seed))  # LSQ scales start from the first batch
    return model.eval()


def sample_inputs(features: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(BATCH, features, generator=torch.Generator().manual_seed(seed))


def torch_forward(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(x).numpy()


def export(model, tmp_path, features: int, name: str = "model.onnx") -> tuple[str, onnx.ModelProto]:
    path = tmp_path / name
    return str(path), export_qonnx(model, path, (None, features))


@pytest.mark.parametrize(("d", "order"), CASES)
def test_qonnx_executor_equals_torch(tmp_path, d, order):
    model = tt_network(d, order)
    x = sample_inputs(model[0].in_features)
    path, _ = export(model, tmp_path, model[0].in_features)
    ours, ref = run_reference(path, x.numpy()), torch_forward(model, x)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6 * float(np.abs(ref).max()))
    np.testing.assert_array_equal(ours.argmax(1), ref.argmax(1))
    assert len(np.unique(ref)) > 20, "the outputs are degenerate: the comparison would prove little"


def _producer(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


@pytest.mark.parametrize(("d", "order"), [(2, (1, 0)), (3, (1, 2, 0)), (4, (2, 1, 0, 3))])
def test_every_core_and_intermediate_state_has_a_quant(tmp_path, d, order):
    model = tt_network(d, order, head=False)
    _, onnx_model = export(model, tmp_path, model[0].in_features)
    producer = _producer(onnx_model)
    initializers = {t.name for t in onnx_model.graph.initializer}
    matmuls = [n for n in onnx_model.graph.node if n.op_type == "MatMul"]
    assert len(matmuls) == d
    for node in matmuls:  # each core: Quant of a constant
        quant = producer[node.input[1]]
        assert quant.op_type == "Quant" and quant.domain == "qonnx.custom_op.general"
        assert quant.input[0] in initializers
    for node in matmuls[1:]:  # each state a MatMul reads, back to the previous MatMul: one Quant
        kinds, value = [], node.input[0]
        while producer[value].op_type != "MatMul":
            kinds.append(producer[value].op_type)
            value = producer[value].input[0]
        assert kinds.count("Quant") == 1, kinds
        assert set(kinds) <= {"Quant", "Reshape", "Transpose"}, kinds
    assert onnx_model.ir_version == 10
    assert {o.domain: o.version for o in onnx_model.opset_import}[""] == 13


@pytest.mark.parametrize(("d", "order"), CASES)
def test_front_end_finds_the_tt_layer_and_golden_equals_the_executor(tmp_path, d, order):
    model = tt_network(d, order)
    tt = model[0]
    path, _ = export(model, tmp_path, tt.in_features)
    graph = compile_model(path).graph
    kinds = [type(op).__name__ for op in graph.ops]
    assert kinds.count("TTDense") == 1 and kinds.count("Dense") == 1, kinds
    (op,) = [op for op in graph.ops if isinstance(op, ir.TTDense)]
    assert (tuple(op.modes_in), tuple(op.modes_out)) == (tt.modes_in, tt.modes_out)
    assert tuple(op.ranks) == tt.ranks and tuple(op.order) == tuple(tt.order)
    x = sample_inputs(tt.in_features, seed=7).numpy()
    scale = model[2].out_quant.spec().scale
    ours = np.round(golden.run(graph, x)["y"] / scale)
    ref = np.round(run_reference(path, x) / scale)
    assert (ours == ref).mean() >= 0.999, f"{int((ours != ref).sum())} of {ours.size} codes differ"
    assert np.abs(ours - ref).max() <= 1


def test_recognition_needs_no_names(tmp_path):
    """Renaming every node and tensor to meaningless names changes nothing for the front end."""
    model = tt_network(3, (2, 1, 0))
    _, onnx_model = export(model, tmp_path, model[0].in_features)
    rename = {}
    for i, node in enumerate(onnx_model.graph.node):
        node.name = f"n{i}"
        for j, out in enumerate(node.output):
            rename[out] = out if out == "y" else f"t{i}_{j}"
    for i, t in enumerate(onnx_model.graph.initializer):
        rename[t.name] = f"c{i}"
        t.name = rename[t.name]
    for node in onnx_model.graph.node:
        node.input[:] = [rename.get(v, v) for v in node.input]
        node.output[:] = [rename.get(v, v) for v in node.output]
    path = tmp_path / "renamed.onnx"
    onnx.save(onnx_model, str(path))
    kinds = [type(op).__name__ for op in compile_model(str(path)).graph.ops]
    assert kinds.count("TTDense") == 1, kinds


def test_standalone_input_quantizer_and_dense_only_network(tmp_path):
    torch.manual_seed(3)
    model = nn.Sequential(
        FakeQuant(8, signed=False, name="input"),
        QuantLinear(64, 32, weight_bits=8, name="fc1"),
        nn.ReLU(),
        QuantLinear(32, 10, weight_bits=8, act_bits=8, out_bits=8, name="fc2"),
    )
    x = torch.rand(BATCH, 64)
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()
    path, _ = export(model, tmp_path, 64)
    np.testing.assert_allclose(run_reference(path, x.numpy()), torch_forward(model, x), rtol=1e-5, atol=1e-6)
    kinds = [type(op).__name__ for op in compile_model(path).graph.ops]
    assert kinds.count("Dense") == 2 and "TTDense" not in kinds


def test_plain_linear_is_refused_naming_the_module(tmp_path):
    model = nn.Sequential(FakeQuant(8, name="input"), nn.Linear(4, 2))
    with pytest.raises(ExportError, match=r"module 1 \(Linear\).*QuantLinear"):
        export_qonnx(model, tmp_path / "m.onnx", (1, 4))


def test_tt_layer_without_core_quantizers_is_refused_naming_it(tmp_path):
    layer = TTLinear(12, 6, (3, 4), (2, 3), rank=2, act_bits=8, name="fc7")
    with pytest.raises(ExportError, match=r"layer 'fc7'.*core_bits and mid_bits"):
        export_qonnx(nn.Sequential(layer), tmp_path / "m.onnx", (1, 12))


def test_unquantized_input_is_refused_naming_the_layer(tmp_path):
    layer = TTLinear(12, 6, (3, 4), (2, 3), rank=2, core_bits=4, mid_bits=8, name="fc3")
    with pytest.raises(ExportError, match=r"layer 'fc3'.*input is not quantized.*act_bits"):
        export_qonnx(nn.Sequential(layer), tmp_path / "m.onnx", (1, 12))
