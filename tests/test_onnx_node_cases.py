"""ONNX's own backend node tests for the quantized operators, run on the golden interpreter.

The cases are regenerated with ``onnx.backend.test.case.node.collect_testcases(None)``
(the installed onnx wheel ships no node test data) and filtered to the graphs made of
exactly one QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger, QuantizeLinear or
DequantizeLinear node. For every case in scope the golden interpreter must reproduce
ONNX's expected output exactly: same dtype, every element equal.

Adaptations (they change how the case is presented, never what it computes):

(a) accelgen compiles weights and quantization parameters into the hardware, so every
    node input except the data input becomes an initializer holding the test's value.
    The data input is the node's first input: ``x`` (QLinearConv, ConvInteger,
    QuantizeLinear, DequantizeLinear), ``a`` (QLinearMatMul), ``A`` (MatMulInteger).
(b) accelgen reads the first axis of every tensor as the batch. When the test's data
    tensor has no batch axis (a 1-D tensor, or a per-axis scale on axis 0, e.g.
    QuantizeLinear ``x`` of shape [3, 4] quantized along axis 0), a batch axis of size 1
    is prepended to the data input and to the expected output, and the node's ``axis``
    attribute is shifted by one.

Cases outside the product's scope are listed in :data:`OUT_OF_SCOPE` with the reason;
for each, compiling the adapted model must raise a clear :class:`InputError` (not a
crash or an internal error).
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from accelgen import golden
from accelgen.errors import InputError
from accelgen.pipeline import compile_model

QUANT_OPS = (
    "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QuantizeLinear",
    "DequantizeLinear",
)  # fmt: skip

#: cases that onnx 1.23 generates for the six operators (single-node graphs only)
EXPECTED_CASE_COUNT = 39

_FLOAT8 = "float8 codes: accelgen builds integer datapaths (int/uint 1..8 bits), not float8"
_FLOAT4 = "float4 (FLOAT4E2M1) codes: accelgen builds integer datapaths, not float4"
_INT16 = "16-bit integer codes: accelgen builds 1- to 8-bit datapaths"
_BLOCKED = "blocked quantization (block_size): only per-tensor and per-channel scales are supported"
_BATCHED = "3-D batched weights: accelgen compiles one constant weight matrix per layer"

#: a word the InputError must contain for each reason, so the message says what is wrong
REASON_WORDS = {_FLOAT8: "float8", _FLOAT4: "float4", _INT16: "8 bits or fewer", _BLOCKED: "block",
                _BATCHED: "3-D"}  # fmt: skip

OUT_OF_SCOPE: dict[str, str] = {
    "test_dequantizelinear_e4m3fn": _FLOAT8,
    "test_dequantizelinear_e4m3fn_float16": _FLOAT8,
    "test_dequantizelinear_e4m3fn_zero_point": _FLOAT8,
    "test_dequantizelinear_e5m2": _FLOAT8,
    "test_quantizelinear_e4m3fn": _FLOAT8,
    "test_quantizelinear_e5m2": _FLOAT8,
    "test_dequantizelinear_float4e2m1": _FLOAT4,
    "test_quantizelinear_float4e2m1": _FLOAT4,
    "test_dequantizelinear_uint16": _INT16,
    "test_dequantizelinear_int16": _INT16,
    "test_quantizelinear_uint16": _INT16,
    "test_quantizelinear_int16": _INT16,
    "test_dequantizelinear_blocked": _BLOCKED,
    "test_quantizelinear_blocked_asymmetric": _BLOCKED,
    "test_quantizelinear_blocked_symmetric": _BLOCKED,
    "test_qlinearmatmul_3D_uint8_float32": _BATCHED,
    "test_qlinearmatmul_3D_uint8_float16": _BATCHED,
    "test_qlinearmatmul_3D_int8_float32": _BATCHED,
    "test_qlinearmatmul_3D_int8_float16": _BATCHED,
}


def _collect() -> list:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():  # generators of unrelated ops warn about overflows
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    picked = {}
    for case in cases:
        nodes = case.model.graph.node
        if len(nodes) == 1 and nodes[0].op_type in QUANT_OPS:
            picked[case.name] = case
    return [picked[name] for name in sorted(picked)]


CASES = _collect()
IN_SCOPE = [c for c in CASES if c.name not in OUT_OF_SCOPE]
OUTSIDE = [c for c in CASES if c.name in OUT_OF_SCOPE]


def _as_array(value) -> np.ndarray:
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    return np.asarray(value)


def _as_initializer(name: str, value) -> onnx.TensorProto:
    if isinstance(value, onnx.TensorProto):
        init = onnx.TensorProto()
        init.CopyFrom(value)
        init.name = name
        return init
    return numpy_helper.from_array(np.asarray(value), name)


def _needs_batch_axis(node: onnx.NodeProto, data: np.ndarray, params: dict[str, np.ndarray]) -> bool:
    """True when the data tensor's first axis is not a batch (see adaptation (b))."""
    if data.ndim == 1:
        return True
    if node.op_type in ("QuantizeLinear", "DequantizeLinear") and params[node.input[1]].size > 1:
        axis = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}.get("axis", 1)
        return axis % data.ndim == 0
    return False


def adapt(case) -> tuple[onnx.ModelProto, dict[str, np.ndarray], str, np.ndarray]:
    """The case as accelgen takes it: (model, feed, output name, expected output)."""
    src = case.model.graph
    (node_src,) = src.node
    inputs, outputs = case.data_sets[0]
    values = {vi.name: v for vi, v in zip(src.input, inputs)}
    data_name = node_src.input[0]
    data = _as_array(values[data_name])
    expected = _as_array(outputs[0])
    params = {n: _as_array(v) for n, v in values.items() if n != data_name}

    node = onnx.NodeProto()
    node.CopyFrom(node_src)
    if _needs_batch_axis(node, data, params):
        data, expected = data[None], expected[None]
        axis_attr = [a for a in node.attribute if a.name == "axis"]
        if axis_attr:
            axis_attr[0].i = axis_attr[0].i % (data.ndim - 1) + 1
        elif any(p.size > 1 for p in params.values()):
            node.attribute.append(onnx.helper.make_attribute("axis", 2))

    data_vi = next(vi for vi in src.input if vi.name == data_name)
    out_vi = src.output[0]
    graph = onnx.helper.make_graph(
        [node],
        case.name,
        [onnx.helper.make_tensor_value_info(data_name, data_vi.type.tensor_type.elem_type, data.shape)],
        [onnx.helper.make_tensor_value_info(out_vi.name, out_vi.type.tensor_type.elem_type, expected.shape)],
        initializer=[_as_initializer(n, v) for n, v in values.items() if n != data_name],
    )
    model = onnx.helper.make_model(graph, opset_imports=list(case.model.opset_import))
    model.ir_version = case.model.ir_version
    return model, {data_name: data}, out_vi.name, expected


def test_case_count() -> None:
    """No case disappears (or appears) unnoticed when onnx changes."""
    assert len(CASES) == EXPECTED_CASE_COUNT, [c.name for c in CASES]
    assert set(OUT_OF_SCOPE) <= {c.name for c in CASES}
    assert {n.model.graph.node[0].op_type for n in IN_SCOPE} == set(QUANT_OPS)


@pytest.mark.parametrize("case", IN_SCOPE, ids=[c.name for c in IN_SCOPE])
def test_node_case_exact(case) -> None:
    model, feed, out_name, expected = adapt(case)
    compiled = compile_model(model)
    got = golden.run(compiled.graph, feed)[out_name]
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    assert np.array_equal(got, expected), f"\ngot      {got.tolist()}\nexpected {expected.tolist()}"


@pytest.mark.parametrize("case", OUTSIDE, ids=[c.name for c in OUTSIDE])
def test_node_case_out_of_scope(case) -> None:
    model, _, _, _ = adapt(case)
    with pytest.raises(InputError) as info:
        compile_model(model)
    message = str(info.value)
    assert "internal error" not in message
    assert REASON_WORDS[OUT_OF_SCOPE[case.name]] in message, message
