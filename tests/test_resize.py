"""Resize (nearest-neighbour upsampling by whole factors on H and W), end to end.

* Front end and golden model against onnxruntime / the qonnx executor on every element, in
  QDQ (DQ -> Resize -> Q), QONNX (Quant -> Resize -> Conv) and QOperator (Resize on uint8
  codes between QLinearConvs, no float anywhere) models, hand-built and from onnxruntime's
  own ``quantize_static``; opsets 10, 11, 13, 18 (axes, sizes) and 19.
* Which coordinate_transformation_mode / nearest_mode pairs are accepted: exactly those
  for which onnxruntime's output is pixel repetition (asked of onnxruntime on a float
  Resize of distinct values, not of accelgen).
* Bad inputs: an InputError naming the node, exit 2 from ``accelgen inspect``.
* The cost model's cycles against the generated kernel's loop trip count, and C simulation
  (``csim`` marker) of conv -> resize(2x) -> conv, of 1x3 / 3x1 factors with pe > 1 and of a
  feature-pyramid step (strided branch upsampled and added to a lateral branch).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from accelgen import golden, ir
from accelgen.cli import main
from accelgen.codegen import generate
from accelgen.errors import InputError
from accelgen.kernels import kernel_for
from accelgen.pipeline import compile_model
from accelgen.plan import FoldingPlan, LayerFold
from tests.test_layers import (
    ADD_MULTIPLY_SHIFT,
    BATCH,
    Case,
    Net,
    check,
    qlinear_conv,
    qonnx_quant_real,
    qonnx_weights,
    qop_quantized_input,
    run_onnxruntime,
)

HEADER = Path(__file__).resolve().parent.parent / "hls" / "accelgen" / "resize.h"
TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
              "tf_half_pixel_for_nn")  # fmt: skip
NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def resize(net: Net, x: str, shape, factors, *, opset: int = 13, by: str = "scales", axes=None, **attrs) -> str:
    """A Resize node of ``x`` (N, C, H, W) ``shape`` by ``factors`` (fh, fw), inputs as opset ``opset`` has them."""
    n, c, h, w = shape
    fh, fw = factors
    full = [1.0, 1.0, fh, fw] if axes is None else [fh, fw]
    if by == "scales":
        scales = net.const(np.array(full, np.float32), "scales")
        if opset == 10:
            inputs = [x, scales]
        else:
            inputs = [x, net.const(np.zeros(0, np.float32), "roi") if opset < 13 else "", scales]
    else:
        sizes = [n, c, h * fh, w * fw] if axes is None else [h * fh, w * fw]
        empty = net.const(np.zeros(0, np.float32), "scales") if opset < 13 else ""
        inputs = [x, net.const(np.zeros(0, np.float32), "roi") if opset < 13 else "", empty,
                  net.const(np.array(sizes, np.int64), "sizes")]  # fmt: skip
    if axes is not None:
        attrs["axes"] = list(axes)
    return net.op("Resize", inputs, **attrs)


def finish(net: Net, output: str, opset: int) -> onnx.ModelProto:
    model = net.model(output, opset)
    if opset >= 19:
        model.ir_version = 9  # opset 19 needs IR 9
    return model


def qdq_resize(seed: int, factors, *, opset: int = 13, shape=(BATCH, 3, 4, 5), rescale=False, **kw) -> Case:
    """x -> Q/DQ -> Resize -> Q: onto the input's own grid, or (``rescale``) onto a new one."""
    net = Net(seed)
    x = net.float_input(shape)
    xr, sx, zx = net.qdq(x, "uint8", opset)
    y = resize(net, xr, shape, factors, opset=opset, **kw)
    scale, zp = net.calibrate(y, "uint8", opset) if rescale else (sx, zx)
    return Case(finish(net, net.quantize(y, "uint8", scale, zp), opset), net.feeds)


def the_resize(graph: ir.Graph) -> ir.Resize:
    (op,) = [op for op in graph.ops if isinstance(op, ir.Resize)]
    return op


# -- front end and golden model against the reference executors ------------------------------------

QDQ_CASES = {
    "opset10_scales_2x3": dict(factors=(2, 3), opset=10),
    "opset11_roi_scales_default_modes": dict(factors=(2, 2), opset=11),
    "opset13_asymmetric_floor_3x1": dict(factors=(3, 1), coordinate_transformation_mode="asymmetric",
                                         nearest_mode="floor"),  # fmt: skip
    "opset13_sizes_1x3_rescaled": dict(factors=(1, 3), by="sizes", rescale=True),
    "opset18_axes_sizes": dict(factors=(2, 4), opset=18, by="sizes", axes=(2, 3)),
    "opset18_axes_scales_negative": dict(factors=(3, 2), opset=18, axes=(-2, -1)),
    "opset18_keep_aspect_not_larger": dict(factors=(2, 2), opset=18, by="sizes", axes=(2, 3),
                                           keep_aspect_ratio_policy="not_larger"),  # fmt: skip
    "opset19_half_pixel_symmetric": dict(factors=(2, 2), opset=19, coordinate_transformation_mode="half_pixel_symmetric"),
    "opset19_pytorch_half_pixel_round_ceil": dict(factors=(4, 3), opset=19, rescale=True,
                                                  coordinate_transformation_mode="pytorch_half_pixel",
                                                  nearest_mode="round_prefer_ceil"),  # fmt: skip
}


@pytest.mark.parametrize("name", list(QDQ_CASES))
def test_qdq_resize_equals_onnxruntime(name: str) -> None:
    kw = QDQ_CASES[name]
    graph = check(qdq_resize(900 + len(name), **kw))
    assert the_resize(graph).factors == kw["factors"]


def test_factor_one_is_no_layer() -> None:
    graph = check(qdq_resize(930, (1, 1), rescale=True))
    assert not [op for op in graph.ops if isinstance(op, ir.Resize)]


def test_qonnx_quant_resize_conv() -> None:
    """Quant(int4) -> Resize(2x) -> Conv(Quant W) -> Relu -> Quant, against the qonnx executor."""
    net = Net(940, reference="qonnx")
    x = net.float_input((BATCH, 3, 4, 3))
    xq, _, _ = qonnx_quant_real(net, x, 4, True, False, net.feeds[x])
    up = resize(net, xq, (BATCH, 3, 4, 3), (2, 2), coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    h = net.op("Relu", [net.op("Conv", [up, qonnx_weights(net, (4, 3, 3, 3), 4, 0)], kernel_shape=[3, 3],
                                pads=[1, 1, 1, 1])])  # fmt: skip
    y, scale, zp = qonnx_quant_real(net, h, 4, False, False, net.evaluate(h), zero_point=False)
    graph = check(Case(net.model(y), net.feeds, "qonnx", out_scale=scale, out_zp=zp))
    op = the_resize(graph)
    assert graph.tensors[op.inputs[0]].qtype.bits == 4 and graph.producer(op.inputs[0]).kind == "Quantize"


def test_qonnx_resize_between_quantizers() -> None:
    """Quant -> Resize -> Quant onto another grid: a Requantize after the copies."""
    net = Net(941, reference="qonnx")
    x = net.float_input((BATCH, 2, 3, 4))
    xq, _, _ = qonnx_quant_real(net, x, 8, False, False, net.feeds[x])
    up = resize(net, xq, (BATCH, 2, 3, 4), (3, 2))
    y, scale, zp = qonnx_quant_real(net, up, 5, True, False, net.evaluate(up))
    graph = check(Case(net.model(y), net.feeds, "qonnx", out_scale=scale, out_zp=zp))
    assert [op.kind for op in graph.integer_ops()] == ["Resize", "Requantize"]


def test_qoperator_float_free_resize_between_qlinearconvs() -> None:
    """uint8 codes in and out, Resize on the codes between two QLinearConvs: no float on the way."""
    net = Net(950)
    x = net.int_input((BATCH, 3, 5, 4), "uint8")
    sx, zx = np.float32(0.02), 120
    h, sh, zh = qlinear_conv(net, x, sx, zx, 3, 4, pads=[1, 1, 1, 1])
    up = resize(net, h, (BATCH, 4, 5, 4), (2, 3), coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    y, _, _ = qlinear_conv(net, up, sh, zh, 4, 5, kernel=(1, 1))
    model = net.model(y)
    assert {vi.type.tensor_type.elem_type for vi in (*model.graph.input, *model.graph.output)} == {TensorProto.UINT8}
    # onnxruntime requantizes in float32: no multiply-shift reproduces this pair of layers exactly
    graph = check(Case(model, net.feeds, multiply_shift=False))
    assert graph.meta["dialect"] == "qoperator"
    assert graph.tensors[the_resize(graph).outputs[0]].shape[1:] == (10, 12, 4)  # channels-last


def test_qoperator_quantized_input_resize() -> None:
    """QuantizeLinear -> Resize (uint8) -> QLinearConv, the form onnxruntime's QOperator export writes."""
    net = Net(951)
    x, sx, zx = qop_quantized_input(net, (BATCH, 2, 4, 4))
    up = resize(net, x, (BATCH, 2, 4, 4), (2, 2), opset=11)
    y, _, _ = qlinear_conv(net, up, sx, zx, 2, 3, pads=[0, 1, 0, 1])
    check(Case(net.model(y, 11), net.feeds))


def float_conv_resize_conv(path: Path) -> np.ndarray:
    """A float Conv -> Relu -> Resize(2x, PyTorch's nearest) -> Conv model; returns calibration inputs."""
    rng = np.random.default_rng(960)
    w1 = rng.normal(0, 0.4, (4, 3, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (5, 4, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["h"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h"], ["r"], name="relu1"),
        helper.make_node("Resize", ["r", "", "scales"], ["u"], name="upsample", mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Conv", ["u", "w2", "b2"], ["y"], name="conv2", pads=[1, 1, 1, 1]),
    ]  # fmt: skip
    inits = [numpy_helper.from_array(a, n) for n, a in [
        ("w1", w1), ("b1", rng.normal(0, 0.1, 4).astype(np.float32)), ("w2", w2),
        ("b2", rng.normal(0, 0.1, 5).astype(np.float32)), ("scales", np.array([1, 1, 2, 2], np.float32))]]  # fmt: skip
    graph = helper.make_graph(nodes, "upsample", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 12, 10])], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return rng.uniform(-1, 1, (40, 1, 3, 6, 5)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_onnxruntime_quantize_static(tmp_path: Path, fmt: str) -> None:
    """onnxruntime's own quantizer writes the Resize (DQ -> Resize -> Q, or Resize on uint8)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    calib = float_conv_resize_conv(tmp_path / "float.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter({"x": b} for b in calib)

        def get_next(self):
            return next(self.batches, None)

    out = tmp_path / "quantized.onnx"
    quantize_static(str(tmp_path / "float.onnx"), str(out), Reader(), quant_format=getattr(QuantFormat, fmt),
                    per_channel=True)  # fmt: skip
    model = onnx.load(str(out))
    assert "Resize" in [n.op_type for n in model.graph.node]
    x = np.random.default_rng(961).uniform(-1, 1, (1, 3, 6, 5)).astype(np.float32)
    ref = run_onnxruntime(model, {"x": x})
    got = golden.run(compile_model(model).graph, {"x": x})["y"]
    # the float tail is the last layer's float dequantization: equal codes give equal floats
    np.testing.assert_array_equal(got, ref)


# -- which coordinate modes are pixel repetition: onnxruntime decides ------------------------------


def onnxruntime_repeats_pixels(factors, opset: int, **attrs) -> bool:
    """Whether onnxruntime's float Resize of distinct values copies pixel (y // fh, x // fw)."""
    net = Net(0)
    shape = (2, 3, 4, 5)
    x = net.float_input(shape)
    net.feeds[x] = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    y = run_onnxruntime(finish(net, resize(net, x, shape, factors, opset=opset, **attrs), opset), net.feeds)
    want = np.repeat(np.repeat(net.feeds[x], factors[0], axis=2), factors[1], axis=3)
    return y.shape == want.shape and np.array_equal(y, want)


MODE_CASES = [(t, m, f) for t in TRANSFORMS for m in NEAREST for f in ((2, 2), (3, 2), (4, 1))]


@pytest.mark.parametrize("transform,nearest,factors", MODE_CASES, ids=[f"{t}-{m}-{f[0]}x{f[1]}" for t, m, f in MODE_CASES])
def test_accepted_exactly_when_onnxruntime_repeats_pixels(transform: str, nearest: str, factors) -> None:
    opset = 11 if transform == "tf_half_pixel_for_nn" else 19  # tf_half_pixel_for_nn left the standard at 13
    attrs = dict(coordinate_transformation_mode=transform, nearest_mode=nearest)
    repeats = onnxruntime_repeats_pixels(factors, opset, **attrs)
    case = qdq_resize(970, factors, opset=opset, **attrs)
    if repeats:
        check(case)
    else:
        with pytest.raises(InputError, match=r"node 'resize\d+' \(Resize\): coordinate_transformation_mode"):
            compile_model(case.model)


def test_the_usual_modes_are_accepted() -> None:
    """PyTorch's nearest (asymmetric + floor) and ONNX's default pair, at factors 2, 3 and 4."""
    for attrs in (dict(coordinate_transformation_mode="asymmetric", nearest_mode="floor"), {}):
        for factors in ((2, 2), (3, 4)):
            assert onnxruntime_repeats_pixels(factors, 13, **attrs)
            compile_model(qdq_resize(980, factors, **attrs).model)
    accepted = sum(onnxruntime_repeats_pixels(f, 19 if t != "tf_half_pixel_for_nn" else 11,
                                              coordinate_transformation_mode=t, nearest_mode=m) for t, m, f in MODE_CASES)  # fmt: skip
    assert 0 < accepted < len(MODE_CASES)  # the parametrized test above sees both outcomes


# -- bad input --------------------------------------------------------------------------------------

BAD = {
    "non_integer_factor": (dict(factors=(1.5, 2)), "factor 1.5 on axis H is not a whole number"),
    "downsampling": (dict(factors=(2, 0.5)), "factor 0.5 on axis W is not a whole number >= 1"),
    "linear_mode": (dict(factors=(2, 2), mode="linear"), "mode 'linear' interpolates"),
    "cubic_mode": (dict(factors=(2, 2), mode="cubic"), "mode 'cubic' interpolates"),
    "align_corners": (dict(factors=(2, 2), coordinate_transformation_mode="align_corners", nearest_mode="floor"),
                      "'align_corners' with nearest_mode 'floor' maps output H = 2 to input 0 instead of repeating "
                      "each pixel (input 1)"),  # fmt: skip
    "tf_crop_and_resize": (dict(factors=(2, 2), coordinate_transformation_mode="tf_crop_and_resize"),
                           "'tf_crop_and_resize' with nearest_mode 'round_prefer_floor' is not supported"),  # fmt: skip
    "sizes_not_a_multiple": (dict(factors=(2, 2), by="sizes_odd"), "factor 2.5 on axis W"),
}


def bad_model(factors, by="scales", mode="nearest", **attrs) -> onnx.ModelProto:
    net = Net(990)
    shape = (BATCH, 3, 4, 2)
    x = net.float_input(shape)
    xr, sx, zx = net.qdq(x, "uint8")
    if by == "sizes_odd":  # W: 2 -> 5
        sizes = net.const(np.array([BATCH, 3, 8, 5], np.int64), "sizes")
        y = net.op("Resize", [xr, "", "", sizes], mode=mode, **attrs)
    else:
        y = net.op("Resize", [xr, "", net.const(np.array([1, 1, *factors], np.float32), "scales")], mode=mode, **attrs)
    return net.model(net.quantize(y, "uint8", sx, zx))


@pytest.mark.parametrize("name", list(BAD))
def test_bad_resize_exits_2_naming_the_node(name: str, tmp_path: Path, capsys) -> None:
    kw, needle = BAD[name]
    path = tmp_path / "bad.onnx"
    onnx.save(bad_model(**kw), str(path))
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("accelgen: error: ")
    assert re.search(r"node 'resize\d+' \(Resize\)", err), err
    assert needle in err, err
    assert "accelgen builds nearest-neighbour upsampling by whole factors on H and W" in err


@pytest.mark.parametrize("scales,axis", [((2, 1, 2, 2), "batch axis N"), ((1, 3, 1, 1), "channel axis C")])
def test_scaling_n_or_c_is_refused(scales, axis: str) -> None:
    net = Net(991)
    x = net.float_input((BATCH, 3, 4, 4))
    xr, sx, zx = net.qdq(x, "uint8")
    y = net.op("Resize", [xr, "", net.const(np.array(scales, np.float32), "scales")], mode="nearest")
    with pytest.raises(InputError, match=rf"node 'resize\d+' \(Resize\): scales the {axis} by [23]; only H and W"):
        compile_model(net.model(net.quantize(y, "uint8", sx, zx)))


def test_float_input_is_refused() -> None:
    net = Net(992)
    x = net.float_input((BATCH, 3, 4, 4))
    y = net.op("Resize", [x, "", net.const(np.array([1, 1, 2, 2], np.float32), "scales")], mode="nearest")
    with pytest.raises(InputError, match=r"input 'x' is a float tensor; put a quantizer"):
        compile_model(net.model(net.quantize(y, "uint8", np.float32(0.01), 128)))


def test_sizes_with_symbolic_batch_is_refused() -> None:
    net = Net(993)
    x = net.float_input((BATCH, 3, 4, 4))
    net.inputs[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    xr, sx, zx = net.qdq(x, "uint8", scale=np.float32(0.01), zp=128)
    sizes = net.const(np.array([1, 3, 8, 8], np.int64), "sizes")
    y = net.op("Resize", [xr, "", "", sizes], mode="nearest")
    with pytest.raises(InputError, match=r"'sizes' fixes the batch dimension.*axes = \[2, 3\]"):
        compile_model(net.model(net.quantize(y, "uint8", np.float32(0.01), 128)))


# -- the kernel: cost model, generated code, C simulation ----------------------------------------------


def trip_count(config: str) -> int:
    """The trip count of upsample_words in hls/accelgen/resize.h, with the constants of one generated config."""
    bound = re.search(r"upsample_words:\s*for \(unsigned i = 0; i < ([^;]+);", HEADER.read_text()).group(1)
    consts = dict(re.findall(r"static const unsigned (\w+) = (\d+);", config))
    expr = re.sub(r"CFG::(\w+)", lambda m: consts[m.group(1)], bound).replace("NF", consts["WORDS_PER_PIXEL"])
    assert re.fullmatch(r"[\d\s*]+", expr), expr
    return eval(expr)  # noqa: S307 -- a product of integers checked just above


def lowered_resize(h: int, w: int, c: int, factors, bits: int = 4) -> tuple[ir.Graph, ir.Resize]:
    q = ir.QType(bits, False, (0.1,), (3,))
    fh, fw = factors
    x = ir.Tensor("x", (None, h, w, c), "codes", q, "NHWC")
    y = ir.Tensor("y", (None, h * fh, w * fw, c), "codes", q, "NHWC")
    op = ir.Resize("up", ("x",), ("y",), factors=(fh, fw))
    graph = ir.Graph("resize", {"x": x, "y": y}, [op], ["x"], ["y"])
    ir.verify(graph, lowered=True)
    return graph, op


@pytest.mark.parametrize("h,w,c,factors,pe", [(3, 5, 4, (2, 2), 1), (2, 3, 6, (1, 3), 3), (4, 1, 8, (3, 1), 8),
                                               (1, 1, 2, (5, 4), 2)])  # fmt: skip
def test_cost_cycles_equal_the_kernel_trip_count(tmp_path: Path, h, w, c, factors, pe) -> None:
    graph, op = lowered_resize(h, w, c, factors)
    kernel = kernel_for(op)
    spec = kernel.describe(op, graph)
    assert kernel.legal(spec)["pe"] == [d for d in range(1, c + 1) if c % d == 0]
    cost = kernel.cost(spec, LayerFold(pe, 1))
    assert cost.cycles == h * factors[0] * w * factors[1] * c // pe  # output elements / pe
    out = generate(graph, FoldingPlan({op.name: LayerFold(pe, 1)}), tmp_path / "d", vectors=None)
    (config,) = [p for p in (out / "hls" / "config").glob("L1_*.h")]
    assert trip_count(config.read_text()) == cost.cycles
    assert f"ap_uint<{pe * 4}> word_t" in config.read_text()


def test_line_buffer_is_one_input_row() -> None:
    costs = {}
    for h, w in ((2, 256), (32, 256), (2, 512)):
        graph, op = lowered_resize(h, w, 16, (2, 2), bits=8)
        costs[h, w] = kernel_for(op).cost(kernel_for(op).describe(op, graph), LayerFold(1, 1)).resources
    assert costs[2, 256] == costs[32, 256]  # one input row, whatever the height
    # 8-bit words, W * 16 of them: 4096 -> two 2048 x 9 BRAM18s, 8192 -> four
    assert (costs[2, 256].bram18, costs[2, 512].bram18) == (2, 4)


def test_illegal_fold_is_refused(tmp_path: Path) -> None:
    graph, op = lowered_resize(2, 2, 6, (2, 2))
    with pytest.raises(InputError, match=r"layer 'up' \(Resize\) has pe=4 \(legal: 1, 2, 3, 6\)"):
        generate(graph, FoldingPlan({op.name: LayerFold(4, 1)}), tmp_path / "d", vectors=None)


@pytest.mark.csim
def test_build_conv_resize_conv_csim_equals_golden(tmp_path: Path) -> None:
    """``accelgen build`` (explorer, codegen, C simulation) of a QDQ conv -> resize(2x) -> conv model."""
    from accelgen.pipeline import build

    net = Net(1000)
    x = net.float_input((8, 3, 5, 6))
    xr, sx, _ = net.qdq(x, "uint8")
    w, sw = net.weights((4, 3, 3, 3), "int8", True)
    h = net.op("Relu", [net.op("Conv", [xr, w, net.bias(4, sx * sw)], pads=[1, 1, 1, 1], kernel_shape=[3, 3])])
    hr, sh, _ = net.qdq(h, "uint8")
    up = resize(net, hr, (8, 4, 5, 6), (2, 2))
    w2, sw2 = net.weights((6, 4, 3, 3), "int8", True)
    y = net.op("Conv", [up, w2, net.bias(6, sh * sw2)], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    scale, zp = net.calibrate(y, "uint8")
    model = net.model(net.dequantize(net.quantize(y, "uint8", scale, zp), "uint8", scale, zp))
    path = tmp_path / "up.onnx"
    onnx.save(model, str(path))
    np.save(tmp_path / "x.npy", net.feeds[x])
    design = build(path, tmp_path / "out", board="ultra96", vectors=str(tmp_path / "x.npy"))
    report = design.report
    assert report["csim"]["passed"] and report["csim"]["mismatches"] == 0 and report["csim"]["vectors"] == 8
    (layer,) = [r for r in report["layers"] if r["op"] == "Resize"]
    assert (layer["in_shape"], layer["out_shape"]) == ([5, 6, 4], [10, 12, 4])  # channels-last
    assert layer["cycles"] == 10 * 12 * 4 // layer["pe"]
    ref = run_onnxruntime(model, net.feeds)
    np.testing.assert_array_equal(design.run(net.feeds[x], backend="golden"), ref)  # the driver's program
    np.testing.assert_array_equal(design.run(net.feeds[x], backend="csim"), ref)


@pytest.mark.csim
@pytest.mark.parametrize("pe", [2, 4])
def test_csim_1x3_and_3x1_factors_with_pe(tmp_path: Path, pe: int) -> None:
    """Quant -> Conv -> Resize(1x3) -> Resize(3x1) -> Conv, both resizes at pe > 1, against numpy repeats."""
    from accelgen.csim import Emulator, build_group, run_csim
    from accelgen.runtime.accelerator import Partition

    net = Net(1010 + pe)
    x = net.float_input((6, 2, 3, 4))
    xr, sx, _ = net.qdq(x, "int8")
    w, sw = net.weights((4, 2, 1, 1), "int8", True)
    h = net.op("Conv", [xr, w, net.bias(4, sx * sw)], kernel_shape=[1, 1])
    hr, sh, _ = net.qdq(h, "int8")
    wide = resize(net, hr, (6, 4, 3, 4), (1, 3), coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    tall = resize(net, wide, (6, 4, 3, 12), (3, 1))
    w2, sw2 = net.weights((3, 4, 3, 3), "int8", True)
    y = net.op("Conv", [tall, w2, net.bias(3, sh * sw2)], kernel_shape=[3, 3], strides=[2, 2])
    scale, zp = net.calibrate(y, "int8")
    model = net.model(net.quantize(y, "int8", scale, zp))
    compiled = compile_model(model)
    ups = [op for op in compiled.graph.ops if isinstance(op, ir.Resize)]
    assert [op.factors for op in ups] == [(1, 3), (3, 1)]
    env = golden.run(compiled.graph, net.feeds, keep=True)
    for op in ups:  # golden is numpy's repeat, and the model equals onnxruntime
        np.testing.assert_array_equal(env[op.outputs[0]], np.repeat(np.repeat(env[op.inputs[0]], op.factors[0], 1),
                                                                     op.factors[1], 2))  # fmt: skip
    np.testing.assert_array_equal(env[model.graph.output[0].name], run_onnxruntime(model, net.feeds))
    plan = FoldingPlan({op.name: LayerFold(pe, 1) for op in ups})
    out = generate(compiled, plan, tmp_path / "d", vectors=(net.feeds[x],))
    result = run_csim(out)
    assert result["passed"], result.get("first_mismatch") or result.get("error")
    assert result["mismatches"] == 0 and result["vectors"] == 6
    top = (out / "hls" / "top.cpp").read_text()
    assert top.count("accelgen::upsample_nearest<") == 2
    layers = {r["name"]: r for r in result["layers"] if r["kind"] == "layer"}
    assert all(layers[op.name]["mismatches"] == 0 for op in ups)
    # the same design on the ap_types model of every operation (what synthesis compiles)
    emu = Emulator(out, library=build_group([out], ap_model=True))
    got = emu.run_layers({t: env[t] for t in Partition(compiled.graph).hw_inputs})
    for op in ups:
        np.testing.assert_array_equal(got[op.name], env[op.outputs[0]])


@pytest.mark.csim
def test_fpn_upsample_and_lateral_add(tmp_path: Path) -> None:
    """A feature-pyramid step: a strided conv branch upsampled 2x and added to a 1x1 lateral branch of
    the same input (the forked stream joins again): golden == onnxruntime, C-sim == golden."""
    from accelgen.csim import run_csim

    net = Net(1020)
    x = net.float_input((6, 4, 8, 6))
    xr, sx, _ = net.qdq(x, "uint8")
    w, sw = net.weights((4, 4, 3, 3), "int8", True)
    down = net.op("Relu", [net.op("Conv", [xr, w, net.bias(4, sx * sw)], kernel_shape=[3, 3], strides=[2, 2],
                                  pads=[1, 1, 1, 1])])  # fmt: skip
    down, _, _ = net.qdq(down, "uint8")
    up = resize(net, down, (6, 4, 4, 3), (2, 2), coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    wl, swl = net.weights((4, 4, 1, 1), "int8", True)
    lateral, _, _ = net.qdq(net.op("Conv", [xr, wl, net.bias(4, sx * swl)], kernel_shape=[1, 1]), "uint8")
    y = net.op("Add", [up, lateral])
    scale, zp = net.calibrate(y, "uint8")
    case = Case(net.model(net.quantize(y, "uint8", scale, zp)), net.feeds)
    case.multiply_shift = ADD_MULTIPLY_SHIFT  # residual adds: see tests.test_layers
    graph = check(case)
    assert [op.kind for op in graph.integer_ops()] == ["Conv", "Resize", "Conv", "Add"]
    out = generate(compile_model(case.model), None, tmp_path / "d", vectors=(net.feeds[x],))
    assert "accelgen::duplicate<" in (out / "hls" / "top.cpp").read_text()  # the fork of the input stream
    result = run_csim(out)
    assert result["passed"] and result["mismatches"] == 0 and result["vectors"] == 6, result.get("first_mismatch")
