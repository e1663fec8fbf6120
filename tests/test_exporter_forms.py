"""What real exporters write beyond the plain dialects (issue 9), against onnxruntime.

* QCDQ: QuantizeLinear -> Clip -> DequantizeLinear, how Brevitas ``export_onnx_qcdq`` and
  torch.ao (reduce-range activations) write 2- to 7-bit quantization;
* onnxruntime's QOperator Linear layer: QLinearMatMul -> com.microsoft QLinearAdd with a
  constant (the bias) that has its own scale and zero point;
* ReduceMean / ReduceMax / ReduceSum over H and W as global pooling (Brevitas with
  torch >= 2.9), keepdims 0 or 1, axes as attribute (opset 13) or input (opset 18).

Each model is checked by ``tests.test_layers.check``: golden equals onnxruntime on every
element under every requantization policy.
"""

from __future__ import annotations

import numpy as np
import pytest

from accelgen import ir
from accelgen.errors import InputError
from accelgen.pipeline import compile_model
from tests.test_layers import (
    BATCH,
    INT_TYPES,
    MS_DOMAIN,
    Case,
    Net,
    check,
    output_scale,
    qop_params,
    qop_quantized_input,
    qop_weights,
    quantized_output,
)


def qcdq(net: Net, x: str, dtype: str, scale, zp, lo: int, hi: int, opset: int = 13) -> str:
    """QuantizeLinear -> Clip(lo, hi) on the codes -> DequantizeLinear."""
    np_type = INT_TYPES[dtype][0]
    q = net.quantize(x, dtype, scale, zp)
    if opset >= 11:
        c = net.op("Clip", [q, net.const(np.array(lo, np_type), "lo"), net.const(np.array(hi, np_type), "hi")])
    else:
        c = net.op("Clip", [q], min=float(lo), max=float(hi))
    return net.dequantize(c, dtype, scale, zp)


def _qtypes(model) -> dict[str, ir.QType]:
    g = compile_model(model).graph
    return {n: t.qtype for n, t in g.tensors.items() if t.kind == "codes"}


# ---------------------------------------------------------------------------------------
# QCDQ
# ---------------------------------------------------------------------------------------

QCDQ_CASES = {
    # (activation dtype, act clip, weight clip, output clip, weights in graph as float->Q->Clip)
    "brevitas_int4_weights_int4_acts": ("int8", (-8, 7), (-7, 7), (-8, 7), True),
    "brevitas_int3_narrow": ("int8", (-4, 3), (-3, 3), (-4, 3), False),
    "torch_ao_reduce_range": ("uint8", (0, 127), (-128, 127), (0, 127), True),
    "unsigned_4bit": ("uint8", (0, 15), (-8, 7), (0, 15), False),
    "clip_inside_a_bit_width": ("uint8", (0, 100), (-100, 90), (3, 200), True),
}


@pytest.mark.parametrize("name", list(QCDQ_CASES))
def test_qcdq_dense(name: str) -> None:
    act, a_clip, w_clip, y_clip, float_weights = QCDQ_CASES[name]
    net = Net(900 + len(name))
    x = net.float_input((BATCH, 24))
    _, qmin, qmax = INT_TYPES[act]
    sx, zx = net.scale_for(net.feeds[x], *a_clip)
    xr = qcdq(net, x, act, sx, zx, *a_clip)
    sw = net.random_scale(0.05, 7)
    if float_weights:  # Brevitas QCDQ: float weights -> Q -> Clip -> DQ, folded at import
        w = net.const(net.rng.uniform(-0.5, 0.5, (7, 24)).astype(np.float32), "w")
        wq = net.quantize(w, "int8", sw, np.zeros(7, np.int8), axis=0)
        c = net.op("Clip", [wq, net.const(np.int8(w_clip[0]), "lo"), net.const(np.int8(w_clip[1]), "hi")])
        wr = net.dequantize(c, "int8", sw, np.zeros(7), axis=0)
    else:  # integer weight initializer -> Clip -> DQ
        codes = net.rng.integers(-128, 128, (7, 24)).astype(np.int8)
        c = net.op(
            "Clip", [net.const(codes, "w"), net.const(np.int8(w_clip[0]), "lo"), net.const(np.int8(w_clip[1]), "hi")]
        )
        wr = net.dequantize(c, "int8", sw, np.zeros(7), axis=0)
    h = net.op("Relu", [net.op("Gemm", [xr, wr], transB=1)])
    sy, zy = net.scale_for(net.evaluate(h), *y_clip)
    y = qcdq(net, h, "uint8" if y_clip[0] >= 0 else "int8", sy, zy, *y_clip)
    case = Case(net.model(y), net.feeds, out_scale=sy, out_zp=zy)
    graph = check(case)
    (dense,) = [op for op in graph.ops if isinstance(op, ir.Dense)]
    xq = graph.tensors[dense.inputs[0]].qtype
    want_x = ir.signed_bits_for(*a_clip) if a_clip[0] < 0 else int(a_clip[1]).bit_length()
    assert (xq.bits, xq.signed) == (want_x, a_clip[0] < 0), "the Clip narrows the activation codes"
    w_lo, w_hi = int(dense.weights.min()), int(dense.weights.max())
    assert w_clip[0] <= w_lo and w_hi <= w_clip[1], "the Clip narrows the weight codes"
    assert dense.w_qtype.bits == ir.signed_bits_for(*w_clip)
    assert dense.w_qtype.narrow == (w_clip[0] == -w_clip[1])


def test_qcdq_conv_opset21_int4_acts() -> None:
    """A Brevitas-style 3-bit CNN layer at opset 21 (Clip with int8 bounds on int8 codes)."""
    net = Net(950)
    x = net.float_input((BATCH, 2, 6, 7))
    sx, zx = net.scale_for(net.feeds[x], -4, 3)
    xr = qcdq(net, x, "int8", sx, zx, -4, 3, opset=21)
    w, sw = net.weights((5, 2, 3, 3), "int8", True)
    h = net.op("Relu", [net.op("Conv", [xr, w], pads=[1, 1, 1, 1], kernel_shape=[3, 3])])
    sy, zy = net.scale_for(net.evaluate(h, 21), 0, 7)
    y = qcdq(net, h, "uint8", sy, zy, 0, 7, opset=21)
    check(Case(net.model(y, 21), net.feeds, out_scale=sy, out_zp=zy))


def test_qcdq_clip_on_shared_codes_adds_a_requantizer() -> None:
    """The quantizer's codes are also read unclipped: a separate requantizer narrows them."""
    net = Net(951)
    x = net.float_input((BATCH, 12))
    sx, zx = net.scale_for(net.feeds[x], 0, 255)
    q = net.quantize(x, "uint8", sx, zx)
    c = net.op("Clip", [q, net.const(np.uint8(0), "lo"), net.const(np.uint8(63), "hi")])
    a = net.dequantize(q, "uint8", sx, zx)
    b = net.dequantize(c, "uint8", sx, zx)
    w1, _ = net.weights((4, 12), "int8", False)
    w2, _ = net.weights((4, 12), "int8", False)
    h1, _, _ = net.qdq(net.op("Gemm", [a, w1], transB=1), "uint8")
    h2, _, _ = net.qdq(net.op("Gemm", [b, w2], transB=1), "uint8")
    case = quantized_output(net, net.op("Add", [h1, h2]), "uint8")
    case.multiply_shift = False  # a residual Add of unrelated scales (see test_layers.ADD_MULTIPLY_SHIFT)
    graph = check(case)
    bits = sorted(graph.tensors[op.inputs[0]].qtype.bits for op in graph.ops if isinstance(op, ir.Dense))
    assert bits == [6, 8]
    assert any(isinstance(op, ir.Requantize) for op in graph.ops)


def test_qcdq_clip_with_no_values_left_is_refused() -> None:
    net = Net(952)
    x = net.float_input((BATCH, 8))
    q = net.quantize(x, "uint8", np.float32(0.01), 0)
    c = net.op("Clip", [q, net.const(np.uint8(200), "lo"), net.const(np.uint8(100), "hi")])
    model = net.model(net.dequantize(c, "uint8", np.float32(0.01), 0))
    with pytest.raises(InputError, match="leaves no value"):
        compile_model(model)


# ---------------------------------------------------------------------------------------
# QLinearAdd with a constant operand
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("constant_first", [False, True], ids=["bias_second", "bias_first"])
def test_qlinearmatmul_qlinearadd_constant_bias(constant_first: bool) -> None:
    net = Net(960 + constant_first)
    x, sx, zx = qop_quantized_input(net, (BATCH, 20), "uint8")
    w, sw, zw = qop_weights(net, (20, 6), "int8", False)
    sy = output_scale(net, sx, 60.0, w, zw, sw, out_axis=1)
    inputs = [x, *qop_params(net, sx, zx, "uint8"), net.const(w.astype(np.int8), "w"),
              *qop_params(net, sw, zw, "int8"), *qop_params(net, sy, 120, "uint8")]  # fmt: skip
    h = net.op("QLinearMatMul", inputs)
    bias = [net.const(net.rng.integers(0, 256, 6).astype(np.uint8), "bias"), *qop_params(net, 0.0123, 131, "uint8")]
    data = [h, *qop_params(net, sy, 120, "uint8")]
    operands = bias + data if constant_first else data + bias
    y = net.op("QLinearAdd", [*operands, *qop_params(net, sy * 1.3, 125, "uint8")], domain=MS_DOMAIN)
    graph = check(Case(net.model(y, dtype="uint8"), net.feeds))
    # onnxruntime rounds twice (QLinearMatMul's codes, then the sum): a layer and a requantizer
    assert [op.kind for op in graph.ops if not op.on_host] == ["Dense", "Requantize"]


# ---------------------------------------------------------------------------------------
# ReduceMean / ReduceMax / ReduceSum as pooling
# ---------------------------------------------------------------------------------------

REDUCE_CASES = [
    ("ReduceMean", 0, 13),
    ("ReduceMean", 1, 13),
    ("ReduceMean", 0, 18),
    ("ReduceMax", 0, 18),
    ("ReduceMax", 1, 13),
    ("ReduceSum", 0, 13),
    ("ReduceSum", 1, 18),
]


@pytest.mark.parametrize("op,keepdims,opset", REDUCE_CASES, ids=[f"{o}_keep{k}_opset{s}" for o, k, s in REDUCE_CASES])
def test_reduce_as_global_pool(op: str, keepdims: int, opset: int) -> None:
    net = Net(970 + len(op) + keepdims + opset)
    x = net.float_input((BATCH, 3, 5, 6))
    xr, sx, _ = net.qdq(x, "uint8", opset)
    w, sw = net.weights((4, 3, 3, 3), "int8", True)  # a conv so that the pooled values vary
    h = net.op("Conv", [xr, w, net.bias(4, sx * sw)], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    xr, _, _ = net.qdq(h, "uint8", opset)
    axes_as_input = opset >= 18 or op == "ReduceSum"
    if axes_as_input:
        h = net.op(op, [xr, net.const(np.array([-2, -1], np.int64), "axes")], keepdims=keepdims)
    else:
        h = net.op(op, [xr], axes=[2, 3], keepdims=keepdims)
    if not keepdims:  # a head: pooled [N, C] features into a quantized MatMul
        hq, _, _ = net.qdq(h, "uint8", opset)
        w, _ = net.weights((4, 3), "int8", False, axis=1)
        h = net.op("MatMul", [hq, w])
    graph = check(quantized_output(net, h, "uint8", opset))
    pools = [o for o in graph.ops if isinstance(o, (ir.AvgPool, ir.MaxPool))]
    assert len(pools) == 1 and pools[0].kernel == (5, 6)


def test_reduce_over_channels_is_refused() -> None:
    net = Net(990)
    x = net.float_input((BATCH, 4, 5, 6))
    xr, _, _ = net.qdq(x, "uint8")
    h = net.op("ReduceMean", [xr], axes=[1], keepdims=1)
    model = quantized_output(net, h, "uint8").model
    with pytest.raises(InputError, match=r"ReduceMean over axes \[1\]"):
        compile_model(model)


# ---------------------------------------------------------------------------------------
# onnxruntime's float32 requantization (the default arithmetic for QOperator layers)
# ---------------------------------------------------------------------------------------

#: x_scale * w_scale = (1 + 2**-23)(1 - 2**-24) = 1 + 2**-24 - 2**-47 rounds to 1.0 in float32,
#: so onnxruntime's multiplier is exactly 0.5 while the exact ratio is 0.5 + 2**-25 - 2**-48.
#: An odd accumulator then sits on a tie in float32 (rounded to even) and just beyond it in
#: exact arithmetic (rounded away from zero): the two differ by one code where |acc| % 4 == 1.
NEAR_TIE_SCALES = (np.float32(1 + 2.0**-23), np.float32(1 - 2.0**-24), np.float32(2.0))


def _near_tie_layer(op: str) -> Case:
    net = Net(980)
    x = net.int_input((BATCH, 6, 3, 3) if op == "QLinearConv" else (BATCH, 6), "uint8")
    net.feeds[x][:] = net.rng.permutation(np.resize(np.arange(256), net.feeds[x].size)).reshape(net.feeds[x].shape)
    sx, sw, sy = NEAR_TIE_SCALES
    params = [*qop_params(net, sx, 128, "uint8")]
    if op == "QLinearConv":
        w = np.zeros((4, 6, 1, 1), np.int8)
        w[np.arange(4), np.arange(4)] = 1  # output channel c passes input channel c through
        inputs = [x, *params, net.const(w, "w"), *qop_params(net, sw, 0, "int8"),
                  *qop_params(net, sy, 128, "uint8")]  # fmt: skip
        y = net.op("QLinearConv", inputs, kernel_shape=[1, 1])
    elif op == "QLinearMatMul":
        w = np.eye(6, 4, dtype=np.int8)
        inputs = [x, *params, net.const(w, "w"), *qop_params(net, sw, 0, "int8"),
                  *qop_params(net, sy, 128, "uint8")]  # fmt: skip
        y = net.op("QLinearMatMul", inputs)
    else:
        w = np.eye(4, 6, dtype=np.int8)
        inputs = [x, *params, net.const(w, "w"), *qop_params(net, sw, 0, "int8"), "",
                  *qop_params(net, sy, 128, "uint8")]  # fmt: skip
        y = net.op("QGemm", inputs, domain=MS_DOMAIN, transB=1)
    return Case(net.model(y, dtype="uint8"), net.feeds, multiply_shift=False)


@pytest.mark.parametrize("op", ["QLinearConv", "QLinearMatMul", "QGemm"])
def test_float32_requantization_matches_onnxruntime(op: str) -> None:
    from accelgen import golden
    from accelgen.config import CompileConfig
    from tests.test_layers import run_onnxruntime

    case = _near_tie_layer(op)
    check(case)  # the default (reference) arithmetic: identical to onnxruntime everywhere
    ref = run_onnxruntime(case.model, case.feeds).astype(np.int64)
    exact = compile_model(case.model, CompileConfig(arithmetic="exact")).graph
    got = golden.run(exact, case.feeds)[case.model.graph.output[0].name].astype(np.int64)
    acc = case.feeds["x"].astype(np.int64)[:, :4] - 128
    sx, sw, sy = (np.float64(s) for s in NEAR_TIE_SCALES)
    want_exact = np.clip(np.rint(acc * (sx * sw / sy)) + 128, 0, 255)  # no true tie: rint is exact
    assert np.array_equal(got, want_exact), "exact arithmetic is the float64 definition"
    differ = got != ref
    assert differ.sum() >= 10, "the case must separate the two semantics"
    assert np.all(np.abs(got - ref)[differ] == 1)
    assert np.array_equal(differ, np.abs(acc) % 4 == 1), "they differ exactly on the float32 ties"


def test_rejected_forms_exit_2_naming_the_node(tmp_path, capsys):
    """A reduction over channels and a Clip that leaves no code: exit 2, the node named."""
    from accelgen.cli import main

    net = Net(991)
    x = net.float_input((BATCH, 4, 5, 6))
    xr, _, _ = net.qdq(x, "uint8")
    h = net.op("ReduceMax", [xr], axes=[1, 2, 3], keepdims=0)
    path = tmp_path / "reduce_channels.onnx"
    path.write_bytes(quantized_output(net, h, "uint8").model.SerializeToString())
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert h in err and "axes [1, 2, 3]" in err and "Traceback" not in err
