"""Small ONNX models built with onnx.helper for tests (IR version that onnxruntime loads)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8


def make_model(nodes, inputs, outputs, initializers=(), opset=13, qonnx=False) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "test", list(inputs), list(outputs), list(initializers))
    opsets = [helper.make_opsetid("", opset)]
    if qonnx:
        opsets.append(helper.make_opsetid("qonnx.custom_op.general", 1))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = IR_VERSION
    return model


def init(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def float_input(name: str, dims) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


def qdq_mlp(scale: float = 0.05, x_dims=("batch", 16), bits_dtype=np.uint8) -> onnx.ModelProto:
    """x -> Q/DQ -> Gemm(DQ int8 weights) -> Relu -> Q/DQ -> y: a minimal valid QDQ model."""
    rng = np.random.default_rng(0)
    w = rng.integers(-100, 100, (8, 16)).astype(np.int8)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w", "ws"], ["wd"], name="dq_w"),
        helper.make_node("Gemm", ["xd", "wd"], ["h"], name="fc", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "s2", "z"], ["yq"], name="q_out"),
        helper.make_node("DequantizeLinear", ["yq", "s2", "z"], ["y"], name="dq_out"),
    ]
    inits = [
        init("s", np.float32(scale)), init("z", np.array(0, dtype=bits_dtype)),
        init("w", w), init("ws", np.float32(0.01)), init("s2", np.float32(0.1)),
    ]  # fmt: skip
    return make_model(nodes, [float_input("x", x_dims)], [float_input("y", ("batch", 8))], inits)


def qonnx_quant_mlp(act_bits: float = 4.0, w_bits: float = 4.0, scale: float = 0.1) -> onnx.ModelProto:
    """x -> Quant -> MatMul(Quant(W)) -> Quant -> y in the QONNX dialect."""
    rng = np.random.default_rng(1)
    w = rng.uniform(-1, 1, (16, 8)).astype(np.float32)
    dom = "qonnx.custom_op.general"
    nodes = [
        helper.make_node("Quant", ["x", "s", "z", "b"], ["xq"], domain=dom, name="quant_in",
                         signed=0, narrow=0, rounding_mode="ROUND"),
        helper.make_node("Quant", ["w", "ws", "z", "wb"], ["wq"], domain=dom, name="quant_w",
                         signed=1, narrow=1, rounding_mode="ROUND"),
        helper.make_node("MatMul", ["xq", "wq"], ["h"], name="matmul"),
        helper.make_node("Quant", ["h", "s", "z", "b"], ["y"], domain=dom, name="quant_out",
                         signed=1, narrow=0, rounding_mode="ROUND"),
    ]  # fmt: skip
    inits = [
        init("s", np.float32(scale)), init("z", np.float32(0)), init("b", np.float32(act_bits)),
        init("w", w), init("ws", np.float32(0.125)), init("wb", np.float32(w_bits)),
    ]  # fmt: skip
    return make_model(nodes, [float_input("x", ("batch", 16))], [float_input("y", ("batch", 8))], inits, qonnx=True)


def save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)


def qonnx_conv_bn(epsilon: float, var, gamma, w_codes=(32, 32), x_bits: float = 8.0) -> onnx.ModelProto:
    """x [batch, 1, 1, 16] -> Quant (scale 2**-4) -> Conv 1x1 (2 channels, Quant'd weight codes
    ``w_codes`` at scale 2**-3) -> BatchNormalization (``gamma``, ``var``, ``epsilon``; mean
    and beta 0) -> Relu -> Quant (unsigned 8 bits, scale 2**-2) in the QONNX dialect: with var
    + epsilon a square, a code that is odd lands exactly on a rounding tie."""
    dom = "qonnx.custom_op.general"
    nodes = [
        helper.make_node("Quant", ["x", "s", "z", "b"], ["xq"], domain=dom, signed=1, narrow=0, rounding_mode="ROUND"),
        helper.make_node("Quant", ["w", "ws", "z", "b"], ["wq"], domain=dom, signed=1, narrow=1, rounding_mode="ROUND"),
        helper.make_node("Conv", ["xq", "wq"], ["c"], kernel_shape=[1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "mean", "var"], ["n"], epsilon=epsilon),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("Quant", ["r", "so", "z", "b"], ["y"], domain=dom, signed=0, narrow=0, rounding_mode="ROUND"),
    ]  # fmt: skip
    inits = [
        init("s", np.float32(2**-4)), init("z", np.float32(0)), init("b", np.float32(x_bits)),
        init("w", (np.array(w_codes, np.float32) * np.float32(2**-3)).reshape(2, 1, 1, 1)),
        init("ws", np.float32(2**-3)), init("so", np.float32(2**-2)),
        init("g", np.array(gamma, np.float32)), init("beta", np.zeros(2, np.float32)),
        init("mean", np.zeros(2, np.float32)), init("var", np.array(var, np.float32)),
    ]  # fmt: skip
    return make_model([*nodes], [float_input("x", ("batch", 1, 1, 16))], [float_input("y", ("batch", 2, 1, 16))],
                      inits, qonnx=True)  # fmt: skip
