"""The front end's handler table: a new op type is supported by registering one handler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from accelgen.errors import UnsupportedError
from accelgen.frontend import import_model, registry
from accelgen.frontend.base import ImportContext

MODELS = Path(__file__).parent / "models"


def _renamed_relus(op_type: str) -> onnx.ModelProto:
    model = onnx.load(MODELS / "qonnx_mlp_w2a2.onnx")
    for node in model.graph.node:
        if node.op_type == "Relu":
            node.op_type = op_type
    return model


def test_every_registered_handler_takes_the_context_and_the_node():
    assert registry.HANDLERS and set(registry.QONNX_HANDLERS) == {"Quant", "IntQuant", "BipolarQuant", "Trunc"}
    for op_type in ("Conv", "Gemm", "MatMul", "QLinearConv", "QuantizeLinear", "Relu", "Reshape", "Concat"):
        assert callable(registry.HANDLERS[op_type]), op_type


def test_a_new_op_type_is_imported_once_its_handler_is_registered(monkeypatch):
    model = _renamed_relus("MyRelu")
    with pytest.raises(UnsupportedError, match="op MyRelu"):
        import_model(model)
    seen = []

    def import_my_relu(ctx: ImportContext, node: onnx.NodeProto) -> None:
        assert isinstance(ctx, ImportContext) and ctx.node is node
        seen.append(node.name or node.output[0])
        registry.HANDLERS["Relu"](ctx, node)

    monkeypatch.setitem(registry.HANDLERS, "MyRelu", import_my_relu)
    graph = import_model(_renamed_relus("MyRelu"))
    reference = import_model(onnx.load(MODELS / "qonnx_mlp_w2a2.onnx"))
    assert seen and len(seen) == sum(n.op_type == "Relu" for n in onnx.load(MODELS / "qonnx_mlp_w2a2.onnx").graph.node)
    assert [op.kind for op in graph.ops] == [op.kind for op in reference.ops]
    assert [op.outputs for op in graph.ops] == [op.outputs for op in reference.ops]
    dense = [op for op in graph.ops if op.kind == "Dense"]
    assert dense and all(
        np.array_equal(a.weights, b.weights) for a, b in zip(dense, [op for op in reference.ops if op.kind == "Dense"])
    )


def test_a_standard_op_is_not_imported_from_an_unknown_domain():
    model = _renamed_relus("Relu")
    for node in model.graph.node:
        if node.op_type == "Relu":
            node.domain = "com.example"
    with pytest.raises(UnsupportedError, match="domain 'com.example'"):
        import_model(model)


def test_two_handlers_for_one_op_type_are_refused():
    with pytest.raises(ValueError, match="two importers for ONNX op Relu"):
        registry.handler("Relu")(lambda ctx, node: None)
