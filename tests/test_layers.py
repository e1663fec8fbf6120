"""Every supported layer, as a small hand-built quantized ONNX model, against an
independent reference executor.

Each model is built with ``onnx.helper`` (IR version 8 so that onnxruntime 1.31 loads it)
and run on seeded random inputs by

* onnxruntime with graph optimisations off (``ORT_DISABLE_ALL``: each operator with its
  own ONNX semantics) for QDQ and QOperator models;
* the qonnx executor (``execute_onnx`` on a ``ModelWrapper``) for QONNX models.

The golden interpreter must give the same integer codes on every element. It is exact;
the references compute in float32, so they could differ from it only where a value lies
on (or within float32 rounding of) a rounding tie. Scales are drawn at random (never
powers of two) so such ties do not occur, and none is tolerated. The tie tests do the
opposite: power-of-two scales make float32 exact, so every tie is a true tie in the
reference too.

Float tails (float bias + Softmax, Sigmoid) run on the host in float; they are compared
with a float32 tolerance. Every model is also compiled with the ``thresholds`` and
``multiply_shift`` requantization policies, which must give identical outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from accelgen import golden, ir
from accelgen.config import CompileConfig
from accelgen.errors import InputError
from accelgen.pipeline import compile_model
from tests.reference import ort_session

BATCH = 16
QONNX_DOMAIN = "qonnx.custom_op.general"
MS_DOMAIN = "com.microsoft"

#: ONNX integer types of the QDQ / QOperator dialects: numpy type, lowest and highest code
INT_TYPES = {
    "int8": (np.int8, -128, 127),
    "uint8": (np.uint8, 0, 255),
    "int4": (ml_dtypes.int4, -8, 7),
    "uint4": (ml_dtypes.uint4, 0, 15),
}


# ---------------------------------------------------------------------------------------
# reference executors
# ---------------------------------------------------------------------------------------


def run_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return ort_session(model, optimize=False).run(None, feeds)[0]


def run_qonnx(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    from tests.reference import _patch_qonnx_ir_version

    _patch_qonnx_ir_version()  # qonnx runs standard nodes in onnxruntime at IR <= 10
    wrapper = ModelWrapper(onnx.ModelProto.FromString(model.SerializeToString())).transform(InferShapes())
    return execute_onnx(wrapper, feeds)[model.graph.output[0].name]


REFERENCES = {"ort": run_onnxruntime, "qonnx": run_qonnx}


# ---------------------------------------------------------------------------------------
# model builder
# ---------------------------------------------------------------------------------------


@dataclass
class Net:
    """Nodes, initializers and seeded random inputs of one test model."""

    seed: int
    reference: str = "ort"  # or "qonnx"
    nodes: list = field(default_factory=list)
    inits: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    feeds: dict = field(default_factory=dict)
    domains: set = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def _name(self, base: str) -> str:
        return f"{base}{len(self.nodes) + len(self.inits) + len(self.inputs)}"

    def const(self, value, base: str = "c") -> str:
        name = self._name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs, domain: str = "", **attrs) -> str:
        out = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, domain=domain, **attrs))
        if domain:
            self.domains.add(domain)
        return out

    def float_input(self, shape, low: float = -1.0, high: float = 1.0) -> str:
        name = "x"
        self.feeds[name] = self.rng.uniform(low, high, shape).astype(np.float32)
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        return name

    def int_input(self, shape, dtype: str) -> str:
        np_type, lo, hi = INT_TYPES[dtype]
        name = "x"
        self.feeds[name] = self.rng.integers(lo, hi + 1, shape).astype(np_type)
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(np_type))
        self.inputs.append(helper.make_tensor_value_info(name, elem, list(shape)))
        return name

    def model(self, output: str, opset: int = 13, dtype: str | None = None, qonnx_opset: int = 1) -> onnx.ModelProto:
        """The model whose single output is ``output``, of ``dtype`` (default: inferred)."""
        out = helper.make_empty_tensor_value_info(output)
        graph = helper.make_graph(self.nodes, "layer_test", self.inputs, [out], self.inits)
        opsets = [helper.make_opsetid("", opset)]
        opsets += [helper.make_opsetid(d, qonnx_opset if d == QONNX_DOMAIN else 1) for d in sorted(self.domains)]
        model = helper.make_model(graph, opset_imports=opsets)
        model.ir_version = 8
        if dtype is not None:
            elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        else:
            inferred = onnx.shape_inference.infer_shapes(model)
            infos = [*inferred.graph.value_info, *inferred.graph.output]
            elem = next((vi.type.tensor_type.elem_type for vi in infos if vi.name == output), 0) or TensorProto.FLOAT
        model.graph.output[0].CopyFrom(helper.make_tensor_value_info(output, elem, None))
        return model

    def evaluate(self, tensor: str, opset: int = 13) -> np.ndarray:
        """The float tensor ``tensor`` of the model built so far, by the reference executor."""
        return REFERENCES[self.reference](self.model(tensor, opset), self.feeds)

    # -- scales ----------------------------------------------------------------------------

    def calibrate(self, tensor: str, dtype: str, opset: int = 13) -> tuple[np.float32, int]:
        """A random, non-power-of-two scale and a zero point covering most of ``tensor``."""
        _, qmin, qmax = INT_TYPES[dtype]
        return self.scale_for(self.evaluate(tensor, opset), qmin, qmax)

    def scale_for(self, values: np.ndarray, qmin: int, qmax: int) -> tuple[np.float32, int]:
        lo, hi = np.percentile(values, [2, 98])
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        scale = np.float32((hi - lo) / (qmax - qmin) * self.rng.uniform(0.85, 1.0))
        zp = int(np.clip(np.round(qmin - lo / scale), qmin, qmax))
        return scale, zp

    def random_scale(self, base: float, size: int | None = None) -> np.ndarray:
        shape = () if size is None else (size,)
        return (base * self.rng.uniform(0.6, 1.4, shape)).astype(np.float32)

    # -- QDQ ---------------------------------------------------------------------------------

    def quantize(self, x: str, dtype: str, scale, zp, axis: int | None = None) -> str:
        np_type = INT_TYPES[dtype][0]
        z = self.const(np.asarray(zp).astype(np_type), "zp")
        return self.op("QuantizeLinear", [x, self.const(np.asarray(scale, np.float32), "s"), z], axis=axis)

    def dequantize(self, x: str, dtype: str, scale, zp, axis: int | None = None) -> str:
        np_type = INT_TYPES[dtype][0] if dtype in INT_TYPES else np.dtype(dtype).type
        z = self.const(np.asarray(zp).astype(np_type), "zp")
        return self.op("DequantizeLinear", [x, self.const(np.asarray(scale, np.float32), "s"), z], axis=axis)

    def qdq(self, x: str, dtype: str, opset: int = 13, scale=None, zp=None) -> tuple[str, np.float32, int]:
        """Quantize ``x`` (calibrated unless given) and dequantize it: (real tensor, scale, zp)."""
        if scale is None:
            scale, zp = self.calibrate(x, dtype, opset)
        return self.dequantize(self.quantize(x, dtype, scale, zp), dtype, scale, zp), scale, zp

    def weights(self, shape, dtype: str, per_channel: bool, axis: int = 0) -> tuple[str, np.ndarray]:
        """Random integer weights through DequantizeLinear; returns (real tensor, scale)."""
        np_type, lo, hi = INT_TYPES[dtype]
        codes = self.rng.integers(lo, hi + 1, shape)
        zp = 0 if lo < 0 else (lo + hi + 1) // 2
        scale = self.random_scale(0.02, shape[axis] if per_channel else None)
        w = self.const(codes.astype(np_type), "w")
        return self.dequantize(w, dtype, scale, np.full(scale.shape, zp), axis if per_channel else None), scale

    def bias(self, channels: int, scale: np.ndarray) -> str:
        """An int32 bias through DequantizeLinear with scale = input scale * weight scale."""
        codes = self.rng.integers(-3000, 3000, channels).astype(np.int32)
        scale = np.asarray(scale, np.float32)
        zp = np.zeros(scale.shape, np.int32)
        return self.dequantize(self.const(codes, "b"), "int32", scale, zp, 0 if scale.size > 1 else None)

    # -- QONNX -------------------------------------------------------------------------------

    def quant(self, x: str, scale, zp, bits: int, signed: bool, narrow: bool = False, rounding="ROUND") -> str:
        s = self.const(np.asarray(scale, np.float32), "s")
        z = self.const(np.asarray(zp, np.float32), "zp")
        b = self.const(np.float32(bits), "bits")
        return self.op("Quant", [x, s, z, b], domain=QONNX_DOMAIN, signed=int(signed), narrow=int(narrow),
                       rounding_mode=rounding)  # fmt: skip


def qrange(bits: int, signed: bool, narrow: bool = False) -> tuple[int, int]:
    q = ir.QType(bits, signed, narrow=narrow)
    return q.qmin, q.qmax


# ---------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------


@dataclass
class Case:
    """A built model, its inputs, and how to read its output as integer codes."""

    model: onnx.ModelProto
    feeds: dict[str, np.ndarray]
    reference: str = "ort"
    # real-valued output: codes = round(y / scale) + zero_point (broadcast against y)
    out_scale: np.ndarray | None = None
    out_zp: np.ndarray | int = 0
    float_tail: bool = False
    #: False where no exact multiply-shift exists (bipolar outputs, half-even ties, see also
    #: ADD_MULTIPLY_SHIFT): the multiply_shift policy must then refuse with an InputError
    multiply_shift: bool = True


def _codes(case: Case, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if case.out_scale is None:
        return y.astype(np.int64)
    codes = np.asarray(y, np.float64) / case.out_scale + case.out_zp
    assert np.allclose(codes, np.round(codes), atol=1e-3), "output is not on the quantization grid"
    return np.round(codes).astype(np.int64)


def _golden(case: Case, requant: str = "auto") -> tuple[np.ndarray, ir.Graph]:
    graph = compile_model(case.model, CompileConfig(requant=requant)).graph
    outputs = golden.run(graph, case.feeds)
    return outputs[case.model.graph.output[0].name], graph  # named as in the model


def check(case: Case, min_levels: int = 4) -> ir.Graph:
    """Golden == reference on every element, under every requantization policy."""
    ref = REFERENCES[case.reference](case.model, case.feeds)
    got, graph = _golden(case)
    assert got.shape == ref.shape
    if case.float_tail:
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    else:
        assert got.dtype == ref.dtype
        want, have = _codes(case, ref), _codes(case, got)
        bad = np.flatnonzero(want != have)
        assert bad.size == 0, (
            f"{bad.size} of {want.size} codes differ, e.g. at {np.unravel_index(bad[0], want.shape)}: "
            f"golden {have.flat[bad[0]]} vs reference {want.flat[bad[0]]}"
        )
        assert len(np.unique(want)) >= min_levels, "the test output is (almost) constant"
    for policy in ("thresholds", "multiply_shift"):
        if policy == "multiply_shift" and not case.multiply_shift:
            with pytest.raises(InputError, match="multiply-shift"):
                _golden(case, policy)
            continue
        other, _ = _golden(case, policy)
        assert np.array_equal(other, got), f"requant policy {policy} changes the output"
    return graph


# ---------------------------------------------------------------------------------------
# QDQ: convolutions, activations, BatchNorm
# ---------------------------------------------------------------------------------------


def activation(net: Net, h: str, kind: str, channels: int) -> str:
    """Float ops between a layer and its quantizer, which the compiler fuses."""
    if kind == "relu":
        return net.op("Relu", [h])
    if kind == "clip":  # an asymmetric window inside the value range
        m = float(np.abs(net.evaluate(h)).max())
        return net.op("Clip", [h, net.const(np.float32(-0.3 * m)), net.const(np.float32(0.5 * m))])
    if kind == "relu6":  # stretch the values to about [-10, 10] so that both bounds bite
        m = float(np.abs(net.evaluate(h)).max())
        h = net.op("Mul", [h, net.const(np.float32(10.0 / m))])
        return net.op("Clip", [h, net.const(np.float32(0.0)), net.const(np.float32(6.0))])
    if kind == "bn":  # one channel with a negative gamma: its requantizer decreases
        gamma = net.rng.uniform(0.5, 2.0, channels).astype(np.float32)
        gamma[1] = -gamma[1]
        beta = net.rng.uniform(-0.5, 0.5, channels).astype(np.float32)
        mean = net.rng.uniform(-0.2, 0.2, channels).astype(np.float32)
        var = net.rng.uniform(0.5, 2.0, channels).astype(np.float32)
        params = [net.const(a) for a in (gamma, beta, mean, var)]
        return net.op("BatchNormalization", [h, *params], epsilon=1e-3)
    raise ValueError(kind)


def quantized_output(net: Net, h: str, dtype: str, opset: int = 13) -> Case:
    """Quantize ``h`` as the model's integer output.

    onnxruntime cannot hand 4-bit tensors to numpy, so 4-bit codes leave the model through
    a DequantizeLinear and are read back from the real values.
    """
    scale, zp = net.calibrate(h, dtype, opset)
    y = net.quantize(h, dtype, scale, zp)
    if dtype.endswith("4"):
        y = net.dequantize(y, dtype, scale, zp)
        return Case(net.model(y, opset), net.feeds, out_scale=scale, out_zp=zp)
    return Case(net.model(y, opset), net.feeds)


def qdq_conv(seed: int, *, cin=4, cout=6, hw=(7, 9), kernel=(3, 3), group=1, strides=(1, 1), pads=(1, 1, 1, 1),
             post=(), act="uint8", wdt="int8", out="uint8", per_channel=True, bias=True, opset=13) -> Case:  # fmt: skip
    net = Net(seed)
    x = net.float_input((BATCH, cin, *hw))
    xr, sx, _ = net.qdq(x, act, opset)
    w, sw = net.weights((cout, cin // group, *kernel), wdt, per_channel)
    inputs = [xr, w] + ([net.bias(cout, sx * sw)] if bias else [])
    h = net.op("Conv", inputs, group=group, strides=list(strides), pads=list(pads), kernel_shape=list(kernel))
    for kind in post:
        h = activation(net, h, kind, cout)
    return quantized_output(net, h, out, opset)


CONV_CASES = {
    "groups2_nonsquare": dict(cin=4, cout=6, hw=(7, 9), group=2, post=("relu",)),
    "depthwise": dict(cin=5, cout=5, hw=(8, 6), group=5),
    "depthwise_multiplier2": dict(cin=3, cout=6, hw=(6, 7), group=3, pads=(0, 0, 0, 0), post=("relu",)),
    "stride2_asymmetric_pads": dict(cin=3, cout=5, hw=(9, 6), strides=(2, 2), pads=(0, 1, 2, 1)),
    "stride2_1x1_no_bias": dict(
        cin=6, cout=4, hw=(5, 8), kernel=(1, 1), strides=(2, 1), pads=(0, 0, 0, 0), bias=False
    ),  # fmt: skip
    "nonsquare_kernel": dict(cin=2, cout=3, hw=(6, 10), kernel=(1, 3), pads=(0, 1, 0, 1), out="int8"),
    "clip": dict(post=("clip",)),
    "relu6": dict(post=("relu6",)),
    "batchnorm_negative_gamma": dict(cin=3, cout=4, bias=False, post=("bn",)),
    "batchnorm_relu": dict(cin=3, cout=4, post=("bn", "relu")),
    "per_tensor_weights": dict(per_channel=False, post=("relu",)),
}


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_qdq_conv(name: str) -> None:
    graph = check(qdq_conv(len(name), **CONV_CASES[name]))
    (conv,) = [op for op in graph.ops if isinstance(op, ir.Conv)]
    assert conv.requant is not None  # the activation and quantizer are fused into the layer
    if "batchnorm" in name:
        assert np.any(conv.requant.direction < 0), "negative gamma: the requantizer must decrease"


# ---------------------------------------------------------------------------------------
# QDQ: fully connected layers
# ---------------------------------------------------------------------------------------


def qdq_dense(seed: int, *, op="Gemm", trans_b=True, features=20, outputs=7, post=(), bias=True, act="uint8",
              wdt="int8", per_channel=True, out="uint8") -> Case:  # fmt: skip
    net = Net(seed)
    x = net.float_input((BATCH, features))
    xr, sx, _ = net.qdq(x, act)
    if op == "Gemm":
        shape = (outputs, features) if trans_b else (features, outputs)
        w, sw = net.weights(shape, wdt, per_channel, axis=0 if trans_b else 1)
        h = net.op("Gemm", [xr, w] + ([net.bias(outputs, sx * sw)] if bias else []), transB=int(trans_b))
    elif op == "MatMul_float_weights":  # float weights quantized by the graph itself (Q -> DQ)
        w = net.const(net.rng.uniform(-1, 1, (features, outputs)).astype(np.float32), "w")
        scale = net.random_scale(1 / 100, outputs)
        zp = net.rng.integers(-5, 6, outputs)
        w = net.dequantize(net.quantize(w, wdt, scale, zp, axis=1), wdt, scale, zp, axis=1)
        h = net.op("MatMul", [xr, w])
    else:  # MatMul, then a float bias constant
        w, _ = net.weights((features, outputs), wdt, per_channel, axis=1)
        h = net.op("MatMul", [xr, w])
        if bias:
            h = net.op("Add", [h, net.const(net.rng.uniform(-0.5, 0.5, outputs).astype(np.float32))])
    for kind in post:
        h = activation(net, h, kind, outputs)
    return quantized_output(net, h, out)


DENSE_CASES = {
    "gemm_transB1": dict(trans_b=True, post=("relu",)),
    "gemm_transB0": dict(trans_b=False),
    "gemm_transB0_per_tensor": dict(trans_b=False, per_channel=False, out="int8"),
    "gemm_no_bias_int8": dict(bias=False, act="int8", out="int8"),
    "gemm_clip": dict(post=("clip",)),
    "gemm_relu6": dict(post=("relu6",)),
    "matmul": dict(op="MatMul", bias=False),
    "matmul_float_bias_relu": dict(op="MatMul", post=("relu",)),
    "matmul_weights_quantized_in_graph": dict(op="MatMul_float_weights", bias=False),
}


@pytest.mark.parametrize("name", list(DENSE_CASES))
def test_qdq_dense(name: str) -> None:
    graph = check(qdq_dense(len(name) + 100, **DENSE_CASES[name]))
    (dense,) = [op for op in graph.ops if isinstance(op, ir.Dense)]
    assert dense.requant is not None


# ---------------------------------------------------------------------------------------
# QDQ: pools
# ---------------------------------------------------------------------------------------


def qdq_pool(seed: int, op: str, same_scale: bool = False, ties: bool = False, hw=(9, 10), **attrs) -> Case:
    """x -> Q/DQ -> pool -> Q: a new calibrated scale, or the input's own (``same_scale``).

    ``ties``: the output keeps the input's grid, so averages over power-of-two windows are
    exact halves. The scale is a power of two and the zero point odd: float32 is then exact,
    the reference's ties are true ties, and ONNX's order (round half to even, *then* add the
    zero point) is visible. Half-even ties are not a linear function of the window sum, so
    no multiply-shift reproduces them.
    """
    net = Net(seed)
    x = net.float_input((BATCH, 4, *hw))
    scale = zp = None
    if ties:
        scale, zp = np.float32(2.0**-7), 127
    xr, sx, zx = net.qdq(x, "uint8", scale=scale, zp=zp)
    h = net.op(op, [xr], **attrs)
    if same_scale:
        return Case(net.model(net.quantize(h, "uint8", sx, zx)), net.feeds, multiply_shift=op == "MaxPool")
    return quantized_output(net, h, "uint8")


POOL_CASES = {
    "maxpool_k3_s2_pad1": dict(op="MaxPool", same_scale=True, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "maxpool_k2_rescaled": dict(op="MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
    "avgpool_k2_s2": dict(op="AveragePool", kernel_shape=[2, 2], strides=[2, 2]),
    "avgpool_k3_s1_pad1_count_include_pad": dict(
        op="AveragePool", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1
    ),  # fmt: skip
    "avgpool_k3x2_asymmetric_pad": dict(
        op="AveragePool", kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 0, 1], count_include_pad=1
    ),  # fmt: skip
    "avgpool_same_scale_ties": dict(
        op="AveragePool", same_scale=True, ties=True, kernel_shape=[2, 2], strides=[2, 2]
    ),  # fmt: skip
    "global_avgpool": dict(op="GlobalAveragePool"),
    "global_avgpool_same_scale_ties": dict(op="GlobalAveragePool", same_scale=True, ties=True, hw=(4, 8)),
}


@pytest.mark.parametrize("name", list(POOL_CASES))
def test_qdq_pool(name: str) -> None:
    kw = dict(POOL_CASES[name])
    check(qdq_pool(len(name) + 200, kw.pop("op"), **kw))


# ---------------------------------------------------------------------------------------
# QDQ: residual add, concat, layout ops, float tail
# ---------------------------------------------------------------------------------------


#: Whether the multiply_shift policy can lower a residual Add with unrelated input scales.
#: Its accumulator ``m0 * a + m1 * b`` takes only some integer values, and the exact
#: thresholds sit on those; the multiply-shift fit asks for a match on every integer of the
#: range, which it does not find. The policy then refuses with a clear error (thresholds,
#: which ``auto`` picks, are exact).
ADD_MULTIPLY_SHIFT = False


def _conv_branch(net: Net, xr: str, sx, cin: int, cout: int, kernel: int) -> tuple[str, np.float32]:
    """Conv (+bias) -> Relu -> Q/DQ with its own calibrated scale."""
    w, sw = net.weights((cout, cin, kernel, kernel), "int8", True)
    pad = kernel // 2
    h = net.op("Conv", [xr, w, net.bias(cout, sx * sw)], pads=[pad] * 4, kernel_shape=[kernel, kernel])
    h = net.op("Relu", [h])
    real, scale, _ = net.qdq(h, "uint8")
    return real, scale


def test_qdq_residual_add_different_scales() -> None:
    net = Net(301)
    x = net.float_input((BATCH, 4, 6, 7))
    xr, sx, _ = net.qdq(x, "int8")
    a, sa = _conv_branch(net, xr, sx, 4, 4, 3)
    b, sb = _conv_branch(net, xr, sx, 4, 4, 1)
    assert sa != sb and np.log2(sa) % 1 and np.log2(sb) % 1
    case = quantized_output(net, net.op("Add", [a, b]), "uint8")
    case.multiply_shift = ADD_MULTIPLY_SHIFT
    graph = check(case)
    (add,) = [op for op in graph.ops if isinstance(op, ir.Add)]
    assert add.input_multipliers[0] != add.input_multipliers[1]


def test_qdq_residual_skip_connection() -> None:
    """y = quant(x + conv(x)): the identity branch keeps the input's scale."""
    net = Net(302)
    x = net.float_input((BATCH, 3, 5, 6))
    xr, sx, _ = net.qdq(x, "int8")
    a, _ = _conv_branch(net, xr, sx, 3, 3, 3)
    h = net.op("Relu", [net.op("Add", [xr, a])])
    case = quantized_output(net, h, "uint8")
    case.multiply_shift = ADD_MULTIPLY_SHIFT
    check(case)


def test_qdq_concat_different_scales() -> None:
    net = Net(303)
    x = net.float_input((BATCH, 3, 6, 5))
    xr, sx, _ = net.qdq(x, "uint8")
    a, sa = _conv_branch(net, xr, sx, 3, 4, 3)
    b, sb = _conv_branch(net, xr, sx, 3, 2, 1)
    assert sa != sb
    graph = check(quantized_output(net, net.op("Concat", [a, b], axis=1), "uint8"))
    assert any(isinstance(op, ir.Concat) for op in graph.ops)


def test_qdq_unflatten_into_feature_map_is_refused() -> None:
    """A vector reshaped into a multi-channel feature map would reorder the channels-last
    stream; the compiler says so instead of computing it in the wrong order."""
    net = Net(315)
    x = net.float_input((BATCH, 18))
    xr, _, _ = net.qdq(x, "uint8")
    h = net.op("Reshape", [xr, net.const(np.array([-1, 2, 3, 3], np.int64))])
    w, _ = net.weights((3, 2, 3, 3), "int8", True)
    y = net.op("Conv", [h, w], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    with pytest.raises(InputError, match="channels-last"):
        compile_model(net.model(net.quantize(y, "uint8", 0.1, 128)))


@pytest.mark.parametrize("layout", ["flatten", "reshape", "transpose", "identity_dropout"])
def test_qdq_layout_ops(layout: str) -> None:
    """Conv -> (Flatten | Reshape | layout-preserving Transpose | Identity, Dropout) -> Gemm."""
    net = Net(310 + len(layout))
    x = net.float_input((BATCH, 3, 6, 5))
    xr, sx, _ = net.qdq(x, "uint8")
    w, sw = net.weights((4, 3, 3, 3), "int8", True)
    h = net.op("Conv", [xr, w, net.bias(4, sx * sw)], pads=[1, 1, 1, 1], strides=[2, 2], kernel_shape=[3, 3])
    h, sh, _ = net.qdq(net.op("Relu", [h]), "uint8")
    features = 4 * 3 * 3
    if layout == "flatten":
        h = net.op("Flatten", [h], axis=1)
    elif layout == "reshape":
        h = net.op("Reshape", [h, net.const(np.array([-1, features], np.int64))])
    elif layout == "transpose":  # pool to 1x1 first: moving size-1 axes keeps the data order
        h, sh, _ = net.qdq(net.op("GlobalAveragePool", [h]), "uint8")
        h = net.op("Transpose", [h], perm=[0, 2, 3, 1])
        h = net.op("Reshape", [h, net.const(np.array([0, -1], np.int64))])
        features = 4
    else:
        h = net.op("Dropout", [net.op("Identity", [net.op("Flatten", [h])])])
    w2, sw2 = net.weights((5, features), "int8", True)
    y = net.op("Gemm", [h, w2, net.bias(5, sh * sw2)], transB=1)
    check(quantized_output(net, y, "int8"))


def test_qdq_float_tail_bias_softmax() -> None:
    net = Net(320)
    x = net.float_input((BATCH, 12))
    xr, _, _ = net.qdq(x, "uint8")
    w, _ = net.weights((12, 6), "int8", True, axis=1)
    h = net.op("Add", [net.op("MatMul", [xr, w]), net.const(net.rng.uniform(-1, 1, 6).astype(np.float32))])
    graph = check(Case(net.model(net.op("Softmax", [h], axis=-1)), net.feeds, float_tail=True))
    assert [op.kind for op in graph.ops if ir.is_host_op(op, graph.tensors)][-2:] == ["Affine", "Softmax"]


def test_qdq_float_tail_sigmoid() -> None:
    net = Net(321)
    x = net.float_input((BATCH, 3, 6, 6))
    xr, sx, _ = net.qdq(x, "int8")
    a, sa = _conv_branch(net, xr, sx, 3, 5, 3)
    g, sg, _ = net.qdq(net.op("GlobalAveragePool", [a]), "uint8")
    w, _ = net.weights((3, 5), "int8", False)
    h = net.op("Gemm", [net.op("Flatten", [g]), w, net.const(net.rng.uniform(-1, 1, 3).astype(np.float32))], transB=1)
    check(Case(net.model(net.op("Sigmoid", [h])), net.feeds, float_tail=True))


# ---------------------------------------------------------------------------------------
# QDQ: integer types, per-tensor and per-channel
# ---------------------------------------------------------------------------------------

QDQ_TYPES = [
    # activation, weights, per-channel weights, opset
    ("uint8", "int8", False, 13),
    ("int8", "int8", True, 13),
    ("uint8", "uint8", True, 13),
    ("int4", "int4", True, 21),
    ("uint4", "int4", False, 21),
    ("uint4", "uint4", True, 21),
    ("int8", "int4", True, 21),
]


@pytest.mark.parametrize("act,wdt,per_channel,opset", QDQ_TYPES,
                         ids=[f"a{a}_w{w}_{'pc' if p else 'pt'}_op{o}" for a, w, p, o in QDQ_TYPES])  # fmt: skip
def test_qdq_types(act: str, wdt: str, per_channel: bool, opset: int) -> None:
    case = qdq_conv(400 + len(act + wdt), cin=3, cout=4, hw=(6, 7), act=act, wdt=wdt, out=act,
                    per_channel=per_channel, opset=opset, post=("relu",) if act.startswith("u") else ())  # fmt: skip
    graph = check(case)
    (conv,) = [op for op in graph.ops if isinstance(op, ir.Conv)]
    assert conv.w_qtype.bits == int(wdt.lstrip("uint")) and conv.w_qtype.per_channel == per_channel


def test_qdq_per_channel_activation_quantizer() -> None:
    """A per-channel (axis=1) activation quantizer after a convolution."""
    net = Net(410)
    x = net.float_input((BATCH, 3, 5, 6))
    xr, sx, _ = net.qdq(x, "uint8")
    w, sw = net.weights((4, 3, 3, 3), "int8", True)
    h = net.op("Conv", [xr, w, net.bias(4, sx * sw)], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    values = net.evaluate(h)
    params = [net.scale_for(values[:, c], -128, 127) for c in range(4)]
    scale = np.array([p[0] for p in params], np.float32)
    zp = np.array([p[1] for p in params])
    check(Case(net.model(net.quantize(h, "int8", scale, zp, axis=1)), net.feeds))


# ---------------------------------------------------------------------------------------
# QOperator: QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger, com.microsoft ops
# ---------------------------------------------------------------------------------------


def qop_quantized_input(net: Net, shape, dtype: str = "uint8") -> tuple[str, np.float32, int]:
    """A float input quantized by QuantizeLinear: (codes tensor, scale, zero point)."""
    x = net.float_input(shape)
    _, qmin, qmax = INT_TYPES[dtype]
    scale, zp = net.scale_for(net.feeds[x], qmin, qmax)
    return net.quantize(x, dtype, scale, zp), scale, zp


def qop_params(net: Net, scale, zp, dtype: str) -> list[str]:
    return [net.const(np.asarray(scale, np.float32), "s"), net.const(np.asarray(zp).astype(INT_TYPES[dtype][0]), "zp")]


def qop_weights(net: Net, shape, dtype: str, per_channel: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer weight codes (zero point 0 for signed types), their scale and zero point."""
    _, lo, hi = INT_TYPES[dtype]
    codes = net.rng.integers(lo, hi + 1, shape)
    scale = net.random_scale(0.02, shape[0] if per_channel else None)
    zp = np.zeros(scale.shape, np.int64) if lo < 0 else np.full(scale.shape, (lo + hi + 1) // 2)
    return codes, scale, zp


def output_scale(net: Net, sx, x_spread: float, w_codes: np.ndarray, w_zp, w_scale, out_axis: int = 0) -> np.float32:
    """An output scale for a product layer from the spread of its inputs (+-3 sigma over 8 bits)."""
    w = np.moveaxis(w_codes - np.reshape(w_zp, (-1,) + (1,) * (w_codes.ndim - 1)) if out_axis == 0 else w_codes - w_zp,
                    out_axis, 0).reshape(w_codes.shape[out_axis], -1)  # fmt: skip
    sigma = float(sx) * x_spread * float(np.max(np.broadcast_to(w_scale, (w.shape[0],)) * np.linalg.norm(w, axis=1)))
    return np.float32(6 * sigma / 255 * net.rng.uniform(0.8, 1.0))


def qlinear_conv(net: Net, x: str, sx, zx, cin: int, cout: int, kernel=(3, 3), xdt="uint8", ydt="uint8",
                 per_channel=True, **attrs) -> tuple[str, np.float32, int]:  # fmt: skip
    """QLinearConv with random int8 weights and an int32 bias: (codes tensor, scale, zero point)."""
    group = attrs.get("group", 1)
    w, sw, zw = qop_weights(net, (cout, cin // group, *kernel), "int8", per_channel)
    bias = net.rng.integers(-2000, 2000, cout).astype(np.int32)
    sy = output_scale(net, sx, 60.0, w, zw, sw)
    zy = 128 if ydt == "uint8" else 0
    inputs = [x, *qop_params(net, sx, zx, xdt), net.const(w.astype(np.int8), "w"), *qop_params(net, sw, zw, "int8"),
              *qop_params(net, sy, zy, ydt), net.const(bias, "b")]  # fmt: skip
    return net.op("QLinearConv", inputs, kernel_shape=list(kernel), **attrs), sy, zy


QLINEAR_CONV_CASES = {
    "groups2_stride2_asymmetric_pads": dict(cin=4, cout=6, group=2, strides=[2, 2], pads=[0, 1, 2, 1]),
    "depthwise": dict(cin=4, cout=4, group=4, pads=[1, 1, 1, 1]),
    "per_tensor_int8": dict(cin=3, cout=5, per_channel=False, xdt="int8", ydt="int8", pads=[1, 0, 1, 0]),
}


@pytest.mark.parametrize("name", list(QLINEAR_CONV_CASES))
def test_qlinearconv(name: str) -> None:
    net = Net(500 + len(name))
    kw = dict(QLINEAR_CONV_CASES[name])
    x, sx, zx = qop_quantized_input(net, (BATCH, kw["cin"], 7, 8), kw.get("xdt", "uint8"))
    y, _, _ = qlinear_conv(net, x, sx, zx, **kw)
    check(Case(net.model(y), net.feeds))


@pytest.mark.parametrize("xdt", ["uint8", "int8"])
def test_qlinearmatmul(xdt: str) -> None:
    net = Net(510 + len(xdt))
    x, sx, zx = qop_quantized_input(net, (BATCH, 20), xdt)
    w, sw, zw = qop_weights(net, (20, 6), "int8", False)
    sy = output_scale(net, sx, 60.0, w, zw, sw, out_axis=1)
    inputs = [x, *qop_params(net, sx, zx, xdt), net.const(w.astype(np.int8), "w"), *qop_params(net, sw, zw, "int8"),
              *qop_params(net, sy, 3, xdt)]  # fmt: skip
    check(Case(net.model(net.op("QLinearMatMul", inputs)), net.feeds))


def test_convinteger() -> None:
    """Integer codes in, int32 accumulators out, with input and weight zero points."""
    net = Net(520)
    x = net.int_input((BATCH, 3, 6, 7), "uint8")
    w = net.rng.integers(0, 256, (4, 3, 3, 3)).astype(np.uint8)
    inputs = [x, net.const(w, "w"), net.const(np.uint8(131), "zp"), net.const(np.uint8(127), "zp")]
    check(Case(net.model(net.op("ConvInteger", inputs, pads=[1, 2, 0, 1], strides=[1, 2])), net.feeds))


def test_convinteger_cast_mul_quantize() -> None:
    """onnxruntime's dynamic-quantization pattern: ConvInteger -> Cast -> Mul(scale) -> Q."""
    net = Net(521)
    x = net.int_input((BATCH, 2, 7, 6), "uint8")
    w = net.rng.integers(-128, 128, (5, 2, 3, 3)).astype(np.int8)
    acc = net.op("ConvInteger", [x, net.const(w, "w"), net.const(np.uint8(129), "zp")], pads=[1, 1, 1, 1])
    real = net.op("Mul", [net.op("Cast", [acc], to=TensorProto.FLOAT), net.const(np.float32(0.00137), "s")])
    check(quantized_output(net, net.op("Relu", [real]), "uint8"))


def test_matmulinteger() -> None:
    net = Net(522)
    x = net.int_input((BATCH, 12), "uint8")
    w = net.rng.integers(-128, 128, (12, 5)).astype(np.int8)
    inputs = [x, net.const(w, "w"), net.const(np.uint8(120), "zp"), net.const(np.int8(0), "zp")]
    check(Case(net.model(net.op("MatMulInteger", inputs)), net.feeds))


def test_qlinearadd_of_two_qlinearconv() -> None:
    net = Net(530)
    x, sx, zx = qop_quantized_input(net, (BATCH, 3, 6, 6))
    a, sa, za = qlinear_conv(net, x, sx, zx, 3, 4, pads=[1, 1, 1, 1])
    b, sb, zb = qlinear_conv(net, x, sx, zx, 3, 4, kernel=(1, 1))
    sy = np.float32((sa + sb) * 0.7)
    inputs = [
        a,
        *qop_params(net, sa, za, "uint8"),
        b,
        *qop_params(net, sb, zb, "uint8"),
        *qop_params(net, sy, 125, "uint8"),
    ]
    case = Case(net.model(net.op("QLinearAdd", inputs, domain=MS_DOMAIN), dtype="uint8"), net.feeds)
    case.multiply_shift = ADD_MULTIPLY_SHIFT
    check(case)


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
def test_qgemm(per_channel: bool) -> None:
    net = Net(540 + per_channel)
    x, sx, zx = qop_quantized_input(net, (BATCH, 16))
    w, sw, zw = qop_weights(net, (7, 16), "int8", per_channel)
    bias = net.rng.integers(-2000, 2000, 7).astype(np.int32)
    sy = output_scale(net, sx, 60.0, w, zw, sw)
    inputs = [x, *qop_params(net, sx, zx, "uint8"), net.const(w.astype(np.int8), "w"), *qop_params(net, sw, zw, "int8"),
              net.const(bias, "b"), *qop_params(net, sy, 131, "uint8")]  # fmt: skip
    case = Case(net.model(net.op("QGemm", inputs, domain=MS_DOMAIN, transB=1), dtype="uint8"), net.feeds)
    # onnxruntime's float32 requantization rounds a near-tie of this layer to even, which no
    # multiply-shift reproduces on the whole accumulator range: the policy must refuse
    case.multiply_shift = per_channel
    check(case)


def test_qlinear_global_average_pool() -> None:
    net = Net(550)
    x, sx, zx = qop_quantized_input(net, (BATCH, 3, 5, 6))
    h, sh, zh = qlinear_conv(net, x, sx, zx, 3, 6, pads=[1, 1, 1, 1])
    inputs = [h, *qop_params(net, sh, zh, "uint8"), *qop_params(net, sh * 0.31, 127, "uint8")]
    y = net.op("QLinearGlobalAveragePool", inputs, domain=MS_DOMAIN, channels_last=0)
    check(Case(net.model(y, dtype="uint8"), net.feeds))


@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 1, 1)], ids=["no_pad", "pad1_count_include_pad"])
def test_qlinear_average_pool(pads) -> None:
    net = Net(560 + sum(pads))
    x, sx, zx = qop_quantized_input(net, (BATCH, 4, 7, 8))
    inputs = [x, *qop_params(net, sx, zx, "uint8"), *qop_params(net, sx * 0.43, 121, "uint8")]
    y = net.op("QLinearAveragePool", inputs, domain=MS_DOMAIN, kernel_shape=[3, 3], strides=[2, 2], pads=list(pads),
               count_include_pad=1)  # fmt: skip
    check(Case(net.model(y, dtype="uint8"), net.feeds))


def _tie_conv(net: Net, x: str, s, z) -> str:
    w = [net.const(np.ones((1, 1, 1, 1), np.int8), "w"), *qop_params(net, 0.5, 0, "int8")]
    return net.op("QLinearConv", [x, *qop_params(net, s, z, "uint8"), *w, *qop_params(net, s, 127, "uint8")],
                  kernel_shape=[1, 1])  # fmt: skip


def _tie_matmul(net: Net, x: str, s, z, op: str = "QLinearMatMul") -> str:
    flat = net.op("Reshape", [x, net.const(np.array([0, -1], np.int64))])
    w = net.rng.integers(-3, 4, (36, 2)).astype(np.int8)
    if op == "QGemm":
        inputs = [flat, *qop_params(net, s, z, "uint8"), net.const(np.ascontiguousarray(w.T), "w"),
                  *qop_params(net, 0.5, 0, "int8"), "", *qop_params(net, s, 127, "uint8")]  # fmt: skip
        return net.op("QGemm", inputs, domain=MS_DOMAIN, transB=1)
    inputs = [flat, *qop_params(net, s, z, "uint8"), net.const(w, "w"), *qop_params(net, 0.5, 0, "int8"),
              *qop_params(net, s, 127, "uint8")]  # fmt: skip
    return net.op("QLinearMatMul", inputs)


QOP_TIES = {
    # op: (builder(net, codes, scale, zero point), onnxruntime adds the zero point after rounding)
    "QLinearConv": (_tie_conv, True),
    "QLinearMatMul": (_tie_matmul, True),
    "QGemm": (lambda net, x, s, z: _tie_matmul(net, x, s, z, "QGemm"), True),
    "QLinearAdd": (
        lambda net, x, s, z: net.op(
            "QLinearAdd",
            [
                x,
                *qop_params(net, s, z, "uint8"),
                x,
                *qop_params(net, s, z, "uint8"),
                *qop_params(net, s * 4, 127, "uint8"),
            ],
            domain=MS_DOMAIN,
        ),
        False,
    ),  # fmt: skip
    "QLinearConcat": (
        lambda net, x, s, z: net.op(
            "QLinearConcat",
            [
                *qop_params(net, s * 2, 127, "uint8"),
                x,
                *qop_params(net, s, z, "uint8"),
                x,
                *qop_params(net, s, z, "uint8"),
            ],
            domain=MS_DOMAIN,
            axis=1,
        ),
        True,
    ),  # fmt: skip
    "QLinearGlobalAveragePool": (
        lambda net, x, s, z: net.op(
            "QLinearGlobalAveragePool",
            [x, *qop_params(net, s, z, "uint8"), *qop_params(net, s, 127, "uint8")],
            domain=MS_DOMAIN,
            channels_last=0,
        ),
        True,
    ),  # fmt: skip
    "QLinearAveragePool": (
        lambda net, x, s, z: net.op(
            "QLinearAveragePool",
            [x, *qop_params(net, s, z, "uint8"), *qop_params(net, s, 127, "uint8")],
            domain=MS_DOMAIN,
            kernel_shape=[2, 2],
            strides=[2, 2],
        ),
        False,
    ),  # fmt: skip
}


@pytest.mark.parametrize("op", list(QOP_TIES))
def test_qoperator_rounding_ties(op: str) -> None:
    """Outputs on exact halves with an odd zero point: where each kernel adds the zero point.

    Power-of-two scales make onnxruntime's float32 arithmetic exact, so every tie is a true
    tie. onnxruntime's QLinearAdd and QLinearAveragePool round ``y / scale + zero_point``; its
    other QLinear kernels round ``y / scale`` and then add the zero point.
    """
    build, after = QOP_TIES[op]
    net = Net(600 + len(op))
    x = net.float_input((BATCH, 1, 6, 6))
    scale = np.float32(2.0**-7)
    y = build(net, net.quantize(x, "uint8", scale, 127), scale, 127)
    case = Case(net.model(y, dtype="uint8"), net.feeds, multiply_shift=False)
    check(case)
    imported = compile_model(case.model).imported
    flags = [q.zero_point_after_rounding for q in imported.ops if isinstance(q, ir.Quantize) and q.inputs[0] != "x"]
    flags += [q.requant.zero_point_after_rounding for q in imported.ops if isinstance(q, ir.Requantize)]
    assert flags and set(flags) == {after}


# ---------------------------------------------------------------------------------------
# QONNX: Quant (1..8 bits), BipolarQuant, Trunc
# ---------------------------------------------------------------------------------------


def qonnx_quant_real(net: Net, x: str, bits: int, signed: bool, narrow: bool, values: np.ndarray,
                     per_channel: bool = False, zero_point: bool = True) -> tuple[str, np.ndarray, np.ndarray]:  # fmt: skip
    """A Quant node with a calibrated non-power-of-two scale (per tensor or per channel on
    axis 1) and, for multi-bit types, a random zero point: (output, scale, zero point)."""
    qmin, qmax = qrange(bits, signed, narrow)
    if per_channel:
        params = [net.scale_for(values[:, c], qmin, qmax) for c in range(values.shape[1])]
        scale = np.array([p[0] for p in params], np.float32)
        zp = np.array([p[1] for p in params], np.float32)
        shape = (1, values.shape[1]) + (1,) * (values.ndim - 2)
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    else:
        scale, zp = net.scale_for(values, qmin, qmax)
        scale, zp = np.float32(scale), np.float32(zp)
    if bits == 1 or not zero_point:
        zp = np.zeros_like(zp)
    return net.quant(x, scale, zp, bits, signed, narrow), scale, zp


def qonnx_weights(net: Net, shape, bits: int, out_axis: int) -> str:
    """Float weights through a narrow signed Quant with a per-output-channel scale."""
    w = net.rng.uniform(-1, 1, shape).astype(np.float32)
    bshape = [1] * len(shape)
    bshape[out_axis] = shape[out_axis]
    scale = np.abs(w).max(axis=tuple(i for i in range(len(shape)) if i != out_axis)) / max(
        qrange(bits, True, True)[1], 1
    )
    scale = (scale * net.rng.uniform(0.7, 1.0, scale.shape)).astype(np.float32).reshape(bshape)
    return net.quant(net.const(w, "w"), scale, np.float32(0), bits, True, narrow=bits > 1)


QUANT_TYPES = [
    # bits, signed, narrow, per-channel output scale
    (1, True, False, False), (1, False, False, True), (2, True, False, False), (2, False, True, True),
    (3, True, True, False), (3, False, False, False), (4, True, False, True), (4, False, False, False),
    (5, True, True, True), (6, False, True, False), (7, True, False, False), (8, False, False, True),
    (8, True, True, False),
]  # fmt: skip


@pytest.mark.parametrize("bits,signed,narrow,per_channel", QUANT_TYPES,
                         ids=[f"{'int' if s else 'uint'}{b}{'_narrow' if n else ''}{'_pc' if p else ''}"
                              for b, s, n, p in QUANT_TYPES])  # fmt: skip
def test_qonnx_quant_dense(bits: int, signed: bool, narrow: bool, per_channel: bool) -> None:
    """Quant(x) -> MatMul(Quant(W)) + bias -> Quant: activations and weights of ``bits`` bits."""
    net = Net(700 + 10 * bits + 2 * signed + narrow, reference="qonnx")
    x = net.float_input((BATCH, 12), -1.0, 1.5)
    xq, _, _ = qonnx_quant_real(net, x, max(bits, 2), signed, narrow, net.feeds[x])
    h = net.op("MatMul", [xq, qonnx_weights(net, (12, 6), bits, 1)])
    h = net.op("Add", [h, net.const(net.rng.uniform(-0.3, 0.3, 6).astype(np.float32))])
    y, scale, zp = qonnx_quant_real(net, h, bits, signed, narrow, net.evaluate(h), per_channel)
    bipolar = bits == 1 and signed  # qonnx reads a 1-bit signed Quant as bipolar (-1, +1)
    case = Case(net.model(y), net.feeds, "qonnx", out_scale=scale, out_zp=zp, multiply_shift=not bipolar)
    check(case, min_levels=min(4, 2**bits - narrow))


def test_qonnx_conv_batchnorm_relu() -> None:
    """Quant -> Conv(Quant W, float bias) -> BatchNorm (a negative gamma) -> Relu -> Quant(uint4)."""
    net = Net(720, reference="qonnx")
    x = net.float_input((BATCH, 3, 7, 6))
    xq, _, _ = qonnx_quant_real(net, x, 8, True, False, net.feeds[x])
    bias = net.const(net.rng.uniform(-0.2, 0.2, 4).astype(np.float32), "b")
    h = net.op("Conv", [xq, qonnx_weights(net, (4, 3, 3, 3), 4, 0), bias], kernel_shape=[3, 3], pads=[1, 0, 1, 2])
    h = net.op("Relu", [activation(net, h, "bn", 4)])
    y, scale, zp = qonnx_quant_real(net, h, 4, False, False, net.evaluate(h), zero_point=False)
    graph = check(Case(net.model(y), net.feeds, "qonnx", out_scale=scale, out_zp=zp))
    (conv,) = [op for op in graph.ops if isinstance(op, ir.Conv)]
    assert np.any(conv.requant.direction < 0)


def test_qonnx_bipolar() -> None:
    """BipolarQuant activations and weights; a BatchNorm-style affine before the last sign."""
    net = Net(730, reference="qonnx")
    x = net.float_input((BATCH, 16))
    xb = net.op("BipolarQuant", [x, net.const(np.float32(1.0), "s")], domain=QONNX_DOMAIN)
    w = net.rng.uniform(-1, 1, (16, 8)).astype(np.float32)
    wb = net.op("BipolarQuant", [net.const(w, "w"), net.const(np.float32(1.0), "s")], domain=QONNX_DOMAIN)
    h = net.op("MatMul", [xb, wb])
    h = net.op("Add", [net.op("Mul", [h, net.const(net.rng.uniform(-1, 1, 8).astype(np.float32))]),
                       net.const(net.rng.uniform(-2, 2, 8).astype(np.float32))])  # fmt: skip
    y = net.op("BipolarQuant", [h, net.const(np.float32(0.75), "s")], domain=QONNX_DOMAIN)
    check(Case(net.model(y), net.feeds, "qonnx", out_scale=np.float32(0.75), multiply_shift=False), min_levels=2)


def test_qonnx_bipolar_conv_maxpool() -> None:
    """FINN-style binarized CNN block: BipolarQuant -> Conv(bipolar W) -> BN -> BipolarQuant -> MaxPool."""
    net = Net(735, reference="qonnx")
    x = net.float_input((BATCH, 3, 6, 6))
    xb = net.op("BipolarQuant", [x, net.const(np.float32(1.0), "s")], domain=QONNX_DOMAIN)
    w = net.rng.uniform(-1, 1, (4, 3, 3, 3)).astype(np.float32)
    wb = net.op("BipolarQuant", [net.const(w, "w"), net.const(np.float32(1.0), "s")], domain=QONNX_DOMAIN)
    h = net.op("Conv", [xb, wb], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    h = net.op("Add", [net.op("Mul", [h, net.const(net.rng.uniform(-1, 1, (1, 4, 1, 1)).astype(np.float32))]),
                       net.const(net.rng.uniform(-2, 2, (1, 4, 1, 1)).astype(np.float32))])  # fmt: skip
    hb = net.op("BipolarQuant", [h, net.const(np.float32(1.0), "s")], domain=QONNX_DOMAIN)
    y = net.op("MaxPool", [hb], kernel_shape=[2, 2], strides=[2, 2])
    check(Case(net.model(y), net.feeds, "qonnx", out_scale=np.float32(1.0), multiply_shift=False), min_levels=2)


@pytest.mark.parametrize("version", [1, 2], ids=["v1", "v2"])
def test_qonnx_trunc_after_average_pool(version: int) -> None:
    """Brevitas' quantized average pool: AveragePool -> Mul(k*k) (the window sum) -> Trunc.

    qonnx's Trunc reads the integer sum as ``round(x / scale + zp)`` of ``in_bits`` bits and
    floors it by ``2 ** (in_bits - out_bits)`` (v1), or by ``out_scale / scale`` rounded to
    a power of two (v2, qonnx opset 2, which also clamps to ``out_bits``).
    """
    net = Net(740 + version, reference="qonnx")
    x = net.float_input((BATCH, 3, 8, 6))
    xq, scale, _ = qonnx_quant_real(net, x, 6, False, False, net.feeds[x], zero_point=False)
    total = net.op(
        "Mul", [net.op("AveragePool", [xq], kernel_shape=[2, 2], strides=[2, 2]), net.const(np.float32(4.0))]
    )
    consts = [net.const(np.float32(scale), "s"), net.const(np.float32(0.0), "zp"), net.const(np.float32(8.0), "bits")]
    if version == 1:  # out_scale = scale: the value is divided by 2 ** (8 - 6)
        y = net.op("Trunc", [total, *consts, net.const(np.float32(6.0), "bits")], domain=QONNX_DOMAIN,
                   rounding_mode="FLOOR")  # fmt: skip
        out_scale = scale
    else:
        out_scale = np.float32(scale * 4)
        y = net.op("Trunc", [total, *consts, net.const(out_scale, "s"), net.const(np.float32(6.0), "bits")],
                   domain=QONNX_DOMAIN, rounding_mode="FLOOR", signed=0)  # fmt: skip
    check(Case(net.model(y, qonnx_opset=version), net.feeds, "qonnx", out_scale=out_scale))


def test_qonnx_rounding_ties() -> None:
    """QONNX Quant adds the zero point *before* rounding (unlike ONNX QuantizeLinear).

    Power-of-two scales keep the qonnx executor's float32 exact; an average of two codes
    quantized onto the same grid with an odd zero point lands on true ties.
    """
    net = Net(750, reference="qonnx")
    x = net.float_input((BATCH, 2, 6, 8))
    scale = np.float32(2.0**-6)
    xq = net.quant(x, scale, np.float32(0), 8, True)
    h = net.op("AveragePool", [xq], kernel_shape=[1, 2], strides=[1, 2])
    y = net.quant(h, scale, np.float32(-3), 8, True)
    check(Case(net.model(y), net.feeds, "qonnx", out_scale=scale, out_zp=-3, multiply_shift=False))


def test_qonnx_residual_concat_pools() -> None:
    """Two Quant branches with different scales: Add, Concat, MaxPool, GlobalAveragePool."""
    net = Net(760, reference="qonnx")
    x = net.float_input((BATCH, 2, 6, 6))
    xq, _, _ = qonnx_quant_real(net, x, 8, True, False, net.feeds[x], zero_point=False)
    branches = []
    for k in (3, 1):
        h = net.op("Conv", [xq, qonnx_weights(net, (3, 2, k, k), 4, 0)], kernel_shape=[k, k], pads=[k // 2] * 4)
        h = net.op("Relu", [h])
        branches.append(qonnx_quant_real(net, h, 4, False, False, net.evaluate(h), zero_point=False)[0])
    added = net.op("Add", branches)
    a, _, _ = qonnx_quant_real(net, added, 5, False, False, net.evaluate(added), zero_point=False)
    cat = net.op("Concat", [a, branches[0]], axis=1)
    c, _, _ = qonnx_quant_real(net, cat, 5, False, False, net.evaluate(cat), zero_point=False)
    pooled = net.op("GlobalAveragePool", [net.op("MaxPool", [c], kernel_shape=[2, 2], strides=[2, 2])])
    y, scale, zp = qonnx_quant_real(net, pooled, 8, False, False, net.evaluate(pooled))
    case = Case(net.model(y), net.feeds, "qonnx", out_scale=scale, out_zp=zp)
    case.multiply_shift = ADD_MULTIPLY_SHIFT
    check(case)


def test_qonnx_bipolar_quant_with_zero_point_is_refused() -> None:
    """qonnx reads a 1-bit signed Quant as (+-1 - zero_point) * scale: refused, not misread."""
    net = Net(770, reference="qonnx")
    x = net.float_input((BATCH, 12))
    h = net.op("MatMul", [net.quant(x, np.float32(0.1), np.float32(0), 4, True), qonnx_weights(net, (12, 6), 3, 1)])
    model = net.model(net.quant(h, np.float32(0.3), np.float32(1), 1, True))
    with pytest.raises(InputError, match="zero point"):
        compile_model(model)
