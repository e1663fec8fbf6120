"""The test suite's onnxruntime sessions compute the ONNX definition on every x86 CPU.

onnxruntime's u8s8 integer kernels saturate pairs of products to int16 on CPUs without
VNNI (see ``tests.reference``); every session is therefore made from
``unsaturated_weights(model)``, which moves constant int8 weights to uint8 with the zero
point raised by 128. These tests check that the rewrite keeps the function: on inputs
where a saturating int16 pair sum is wrong, onnxruntime on the rewritten model equals
ONNX's reference implementation on the original and a numpy product written here.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from tests.reference import ort_session, unsaturated_weights

RNG = np.random.default_rng(7)


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _saturating_pairs_differ(a: np.ndarray, w: np.ndarray) -> bool:
    """Would vpmaddubsw's int16 pair sums (uint8 x int8) give a different product?"""
    k = a.shape[1] - a.shape[1] % 2
    prods = a[:, None, :k].astype(np.int64) * w.T[None, :, :k].astype(np.int64)
    pairs = prods[..., 0::2] + prods[..., 1::2]
    return bool((np.clip(pairs, -32768, 32767) != pairs).any())


def test_matmulinteger_rewrite_is_exact_where_int16_pairs_saturate() -> None:
    a = np.full((4, 16), 255, np.uint8)
    a[1] = RNG.integers(200, 256, 16)
    w = RNG.choice(np.array([-128, -127, 126, 127], np.int8), size=(16, 6)).astype(np.int8)
    model = _model(
        [helper.make_node("MatMulInteger", ["a", "w", "", "wzp"], ["y"])],
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [4, 16])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [4, 6])],
        {"w": w, "wzp": np.array(3, np.int8)},
    )
    assert _saturating_pairs_differ(a, w.astype(np.int64) - 3)
    expected = a.astype(np.int64) @ (w.astype(np.int64) - 3)
    rewritten = unsaturated_weights(model)
    node = rewritten.graph.node[0]
    inits = {t.name: numpy_helper.to_array(t) for t in rewritten.graph.initializer}
    assert inits[node.input[1]].dtype == np.uint8 and inits[node.input[3]].dtype == np.uint8
    np.testing.assert_array_equal(
        inits[node.input[1]].astype(np.int64) - int(inits[node.input[3]]), w.astype(np.int64) - 3
    )
    np.testing.assert_array_equal(ReferenceEvaluator(model).run(None, {"a": a})[0], expected)
    np.testing.assert_array_equal(ort_session(model, optimize=False).run(None, {"a": a})[0], expected)


def test_qlinearconv_per_channel_rewrite_matches_onnx_reference() -> None:
    x = RNG.integers(230, 256, (2, 4, 5, 5)).astype(np.uint8)
    w = RNG.choice(np.array([-128, -127, 125, 127], np.int8), size=(3, 4, 3, 3)).astype(np.int8)
    wzp = np.array([0, -2, 5], np.int8)
    inits = {
        "xs": np.array(0.02, np.float32), "xz": np.array(10, np.uint8), "w": w,
        "ws": np.array([0.01, 0.02, 0.015], np.float32), "wz": wzp,
        "ys": np.array(40.0, np.float32), "yz": np.array(128, np.uint8),
    }  # fmt: skip
    model = _model(
        [helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], pads=[1, 1, 1, 1])],
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [2, 4, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [2, 3, 5, 5])],
        inits,
    )
    expected = ReferenceEvaluator(model).run(None, {"x": x})[0]
    got = ort_session(model, optimize=False).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected)) > 3  # the output is not clipped flat


def test_int8_activations_keep_int8_weights() -> None:
    """QLinearMatMul with int8 activations has no uint8-weight kernel: left as it is."""
    inits = {
        "as": np.array(0.1, np.float32), "az": np.array(0, np.int8), "w": RNG.integers(-128, 128, (8, 3)).astype(np.int8),
        "ws": np.array(0.1, np.float32), "wz": np.array(0, np.int8),
        "ys": np.array(1.0, np.float32), "yz": np.array(0, np.int8),
    }  # fmt: skip
    model = _model(
        [helper.make_node("QLinearMatMul", ["a", "as", "az", "w", "ws", "wz", "ys", "yz"], ["y"])],
        [helper.make_tensor_value_info("a", TensorProto.INT8, [2, 8])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [2, 3])],
        inits,
    )
    assert unsaturated_weights(model).SerializeToString() == model.SerializeToString()
    a = RNG.integers(-128, 128, (2, 8)).astype(np.int8)
    np.testing.assert_array_equal(ort_session(model, optimize=False).run(None, {"a": a})[0],
                                  ReferenceEvaluator(model).run(None, {"a": a})[0])  # fmt: skip
