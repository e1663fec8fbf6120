"""Malformed models made from the fixtures: named regression cases and a seeded fuzzer.

Each named case (:data:`CASES`) is one class of invalid input from issue 10 applied to one
fixture; it returns the model and the name (tensor, node or file) that accelgen's error
message must mention. :func:`mutate` applies random structural or byte-level mutations of the
same kinds for the fuzz tier (tests/test_fuzz.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODELS = Path(__file__).parent / "models"
FIXTURES = sorted(p.name for p in MODELS.glob("*.onnx"))


def load(fixture: str) -> onnx.ModelProto:
    return onnx.load(str(MODELS / fixture), load_external_data=False)


def initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def set_initializer(model: onnx.ModelProto, name: str, array: np.ndarray) -> None:
    initializer(model, name).CopyFrom(numpy_helper.from_array(np.asarray(array), name))


def node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


def set_attr(n: onnx.NodeProto, name: str, value) -> None:
    """Set (or replace) attribute ``name``; the value's Python type picks the attribute type."""
    kept = [a for a in n.attribute if a.name != name]
    del n.attribute[:]
    n.attribute.extend(kept + [helper.make_attribute(name, value)])


def poke(model: onnx.ModelProto, name: str, value: float, index: int = 0) -> str:
    """Put ``value`` at flat ``index`` of the float initializer ``name``."""
    arr = numpy_helper.to_array(initializer(model, name)).copy()
    arr.reshape(-1)[index] = value
    set_initializer(model, name, arr)
    return name


def external(model: onnx.ModelProto, name: str, location: str) -> str:
    """Make initializer ``name`` point at external data in ``location``."""
    t = initializer(model, name)
    t.ClearField("raw_data")
    for field in ("float_data", "int32_data", "int64_data", "double_data"):
        t.ClearField(field)
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    t.external_data.add(key="location", value=location)
    return name


# ---------------------------------------------------------------------------------------
# the named classes of issue 10 (parts 2 and 3): (fixture, mutation) -> name in the message
# ---------------------------------------------------------------------------------------

QONNX_MLP = "qonnx_mlp_w4a4.onnx"
QONNX_CNN = "qonnx_cnn_w4a8.onnx"
QDQ_MLP = "qdq_mlp_pertensor.onnx"
QDQ_CNN = "qdq_cnn_perchannel_residual.onnx"
W1A1 = "qonnx_mlp_w1a1.onnx"
ACT_BITS = "/inp/act_quant/export_handler/Constant_2_output_0"  # the input quantizer's bit width
ZERO = "/inp/act_quant/export_handler/Constant_1_output_0"  # the zero point QONNX_MLP's Quants share
QDQ_CONV1 = QONNX_CONV1 = "/conv1/Conv"


def _nan_weight(m):
    return poke(m, "fc1.weight", np.nan, 5)


def _inf_bias(m):
    return poke(m, "fc3.bias", np.inf, 2)


def _nan_bn(m):
    return poke(m, "bn1.weight", np.nan, 3)


def _inf_scale(m):
    return poke(m, "/fc1/weight_quant/export_handler/Constant_output_0", np.inf)


def _bn_negative_var(m):
    return poke(m, "bn1.running_var", -0.5, 4)


def _bn_nan_eps(m):
    set_attr(node(m, "/bn1/BatchNormalization"), "epsilon", float("nan"))
    return "/bn1/BatchNormalization"


def _duplicate_init(m):
    m.graph.initializer.append(numpy_helper.from_array(np.float32(0.5), "x_scale"))
    return "x_scale"


def _string_scale(m):
    initializer(m, "x_scale").CopyFrom(helper.make_tensor("x_scale", TensorProto.STRING, [], [b"0.1"]))
    return "x_scale"


def _string_scale_qonnx(m):
    name = "/fc1/weight_quant/export_handler/Constant_output_0"
    initializer(m, name).CopyFrom(helper.make_tensor(name, TensorProto.STRING, [], [b"0.1"]))
    return name


def _kernel_shape(m):
    set_attr(node(m, QDQ_CONV1), "kernel_shape", [5, 5])
    return QDQ_CONV1


def _output_shape(m):
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 11
    return "logits"


def _output_shape_qdq(m):
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 7
    return "/Softmax"  # onnx's inference names the node that computes the output


def _narrow(m):
    set_attr(node(m, "/fc1/weight_quant/export_handler/Quant"), "narrow", 2)
    return "/fc1/weight_quant/export_handler/Quant"


def _signed(m):
    set_attr(node(m, "/act1/act_quant/export_handler/Quant"), "signed", -1)
    return "/act1/act_quant/export_handler/Quant"


def _foreign_domain(m):
    node(m, "/inner/fc1/Gemm").domain = "com.microsoft"
    if not any(o.domain == "com.microsoft" for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return "/inner/fc1/Gemm"


def _foreign_domain_qonnx(m):
    node(m, "/act1/act_quant/activation_impl/Relu").domain = "qonnx.custom_op.general"
    return "/act1/act_quant/activation_impl/Relu"


def _quant_in_onnx_domain(m):
    node(m, "/fc1/weight_quant/export_handler/Quant").domain = ""
    return "/fc1/weight_quant/export_handler/Quant"


def _opset(version):
    def mutate(m):
        next(o for o in m.opset_import if o.domain in ("", "ai.onnx")).version = version
        return "opset"

    return mutate


def _zp_int32(m):
    set_initializer(m, "x_zero_point", np.int32(0))
    return "x_QuantizeLinear"


def _zp_float(m):
    set_initializer(m, "x_zero_point", np.float32(0))
    return "x_QuantizeLinear"


def _zp_out_of_range(m):
    set_initializer(m, "/act1/act_quant/export_handler/Constant_output_0", np.float32(0.1))
    for n in m.graph.node:
        if n.name == "/act1/act_quant/export_handler/Quant":
            zp = "act1_zero_point"
            m.graph.initializer.append(numpy_helper.from_array(np.float32(1000), zp))
            n.input[2] = zp
    return "act1_zero_point"


def _dims_disagree(m):
    t = initializer(m, "fc1.weight")
    t.dims[0] = 65
    return "fc1.weight"


def _dims_disagree_qdq(m):
    t = initializer(m, "inner.fc1.weight_quantized")
    t.dims[1] = 32
    return "inner.fc1.weight_quantized"


def _perchannel_length(m):
    set_initializer(m, "onnx::Conv_39_scale", np.full(15, 0.01, np.float32))
    return "onnx::Conv_39_scale"


def _perchannel_length_qonnx(m):
    set_initializer(m, "/conv1/weight_quant/export_handler/Constant_output_0", np.full((15, 1, 1, 1), 0.1, np.float32))
    return "/conv1/weight_quant/export_handler/Constant_output_0"


def _conv_attr(name, value, target=QDQ_CONV1):
    def mutate(m):
        set_attr(node(m, target), name, value)
        return target

    return mutate


def _huge_pads(m):
    """Pads that make every later feature map ~60000 x 60000; the declared intermediate
    shapes are dropped so that only the size, not a contradiction, is wrong."""
    del m.graph.value_info[:]
    set_attr(node(m, QDQ_CONV1), "pads", [30000, 30000, 30000, 30000])
    return QDQ_CONV1


def _bits(value):
    def mutate(m):
        set_initializer(m, ACT_BITS, np.float32(value))
        return ACT_BITS

    return mutate


def _weight_bits(value):
    def mutate(m):
        name = "/fc1/weight_quant/export_handler/Constant_1_output_0"
        set_initializer(m, name, np.float32(value))
        return name

    return mutate


def _zp_inf(m):
    return poke(m, ZERO, np.inf)


def _undefined_init(m):
    initializer(m, "fc1.weight").data_type = TensorProto.UNDEFINED
    return "fc1.weight"


def _undefined_input(m):
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.UNDEFINED
    return "x"


def _external(location):
    def mutate(m):
        return external(m, "fc1.weight", location)

    return mutate


def _no_outputs(m):
    del m.graph.output[:]
    return "no outputs"


def _transpose_perm(perm):
    def mutate(m):
        set_attr(node(m, "/fc1/Transpose"), "perm", perm)
        return "/fc1/Transpose"

    return mutate


def _attr_type(name, value, target):
    def mutate(m):
        set_attr(node(m, target), name, value)
        return target

    return mutate


def _input_is_output(m):
    m.graph.output.append(m.graph.input[0])
    return "x"


# -- classes found by the long fuzz run (seed 11, 3,000 mutants) ---------------------------------


def _rewire(node_name: str, index: int, tensor: str, array: np.ndarray | None = None):
    """Point input ``index`` of ``node_name`` at ``tensor`` (a new initializer when ``array``)."""

    def mutate(m):
        if array is not None:
            m.graph.initializer.append(numpy_helper.from_array(np.asarray(array), tensor))
        node(m, node_name).input[index] = tensor
        return node_name

    return mutate


def _reshaped(name: str, shape: tuple, value=None):
    """Initializer ``name`` with a new shape (filled with its first value, or ``value``)."""

    def mutate(m):
        arr = numpy_helper.to_array(initializer(m, name))
        fill = arr.reshape(-1)[0] if value is None else value
        set_initializer(m, name, np.full(shape, fill, dtype=arr.dtype if value is None else np.asarray(value).dtype))
        return name

    return mutate


def _attr_float(node_name: str, attr: str):
    def mutate(m):
        set_attr(node(m, node_name), attr, 1.0)
        return node_name

    return mutate


def _retyped(name: str, dtype):
    def mutate(m):
        arr = numpy_helper.to_array(initializer(m, name))
        set_initializer(m, name, arr.astype(dtype))
        return name

    return mutate


def _unread_input(m):
    m.graph.input.append(helper.make_tensor_value_info("stray", TensorProto.FLOAT, [1, 4]))
    return "stray"


def _second_input(m):
    """A second data input that a node reads (an Add on the model's first quantizer input)."""
    first = m.graph.input[0].name
    m.graph.input.append(helper.make_tensor_value_info("second", TensorProto.FLOAT, [1, 64]))
    add = helper.make_node("Add", [first, "second"], ["summed"], name="add_second")
    for n in m.graph.node:
        n.input[:] = ["summed" if i == first else i for i in n.input]
    m.graph.node.insert(0, add)
    return "second"


def _output_type(m):
    m.graph.output[0].type.tensor_type.elem_type = 76
    return m.graph.output[0].name


@dataclass(frozen=True)
class Case:
    """One class of invalid model: ``mutate`` edits a copy of ``fixture`` and returns the name
    that the error message must contain (unless ``named`` says otherwise)."""

    fixture: str
    mutate: Callable[[onnx.ModelProto], str]
    named: str = ""  # the name in the message when it is not the one mutate returns


CASES: dict[str, Case] = {
    # part 2: invalid models that used to build
    "nan_weight": Case(QONNX_MLP, _nan_weight),
    "inf_bias": Case(QONNX_MLP, _inf_bias),
    "nan_batchnorm_param": Case(QONNX_CNN, _nan_bn),
    "inf_weight_scale": Case(QONNX_MLP, _inf_scale),
    "batchnorm_negative_variance": Case(QONNX_CNN, _bn_negative_var),
    "batchnorm_nan_epsilon": Case(QONNX_CNN, _bn_nan_eps),
    "duplicate_initializer": Case(QDQ_MLP, _duplicate_init),
    "string_scale_qdq": Case(QDQ_MLP, _string_scale),
    "string_scale_qonnx": Case(QONNX_MLP, _string_scale_qonnx),
    "kernel_shape_contradicts_weight": Case(QDQ_CNN, _kernel_shape),
    "output_shape_contradicts_inference": Case(QONNX_MLP, _output_shape),
    "output_shape_contradicts_inference_qdq": Case(QDQ_MLP, _output_shape_qdq),
    "narrow_2": Case(QONNX_MLP, _narrow),
    "signed_minus_1": Case(QONNX_MLP, _signed),
    "standard_op_in_contrib_domain": Case(QDQ_MLP, _foreign_domain),
    "standard_op_in_qonnx_domain": Case(QONNX_MLP, _foreign_domain_qonnx),
    "qonnx_op_in_onnx_domain": Case(QONNX_MLP, _quant_in_onnx_domain),
    "opset_0": Case(QDQ_MLP, _opset(0)),
    "opset_1": Case(QONNX_MLP, _opset(1)),
    "zero_point_int32_quantizelinear": Case(QDQ_MLP, _zp_int32),
    "zero_point_float_quantizelinear": Case(QDQ_MLP, _zp_float),
    "zero_point_1000": Case(QONNX_MLP, _zp_out_of_range),
    # part 3: malformed models that used to end in an internal error
    "initializer_dims_disagree": Case(QONNX_MLP, _dims_disagree),
    "initializer_dims_disagree_int8": Case(QDQ_MLP, _dims_disagree_qdq),
    "perchannel_scale_length_qdq": Case(QDQ_CNN, _perchannel_length),
    "perchannel_scale_length_qonnx": Case(QONNX_CNN, _perchannel_length_qonnx),
    "pads_length_2": Case(QDQ_CNN, _conv_attr("pads", [1, 1])),
    "pads_length_3": Case(QDQ_CNN, _conv_attr("pads", [1, 1, 1])),
    "stride_0": Case(QDQ_CNN, _conv_attr("strides", [0, 1])),
    "pool_stride_0": Case(QDQ_CNN, _conv_attr("strides", [0, 0], "/pool/MaxPool")),
    "dilation_negative": Case(QDQ_CNN, _conv_attr("dilations", [-1, 1])),
    "huge_pads": Case(QDQ_CNN, _huge_pads),
    "huge_pads_contradicting_declared_shapes": Case(QDQ_CNN, _conv_attr("pads", [30000, 30000, 30000, 30000])),
    # the same on QONNX, where onnx's shape inference stops at the first Quant
    "kernel_shape_contradicts_weight_qonnx": Case(QONNX_CNN, _conv_attr("kernel_shape", [5, 5], QONNX_CONV1)),
    "pads_length_2_qonnx": Case(QONNX_CNN, _conv_attr("pads", [1, 1], QONNX_CONV1)),
    "stride_0_qonnx": Case(QONNX_CNN, _conv_attr("strides", [1, 0], QONNX_CONV1)),
    "pool_stride_0_qonnx": Case(QONNX_CNN, _conv_attr("strides", [0, 2], "/pool1/MaxPool")),
    "dilation_negative_qonnx": Case(QONNX_CNN, _conv_attr("dilations", [1, -2], QONNX_CONV1)),
    "huge_pads_qonnx": Case(QONNX_CNN, _conv_attr("pads", [30000, 30000, 30000, 30000], QONNX_CONV1), "/fc/Gemm"),
    "bits_0": Case(QONNX_MLP, _bits(0)),
    "bits_minus_1": Case(QONNX_MLP, _bits(-1)),
    "bits_nan": Case(QONNX_MLP, _bits(float("nan"))),
    "bits_1e9": Case(QONNX_MLP, _bits(1e9)),
    "weight_bits_nan": Case(QONNX_MLP, _weight_bits(float("nan"))),
    "weight_bits_1e9": Case(QONNX_MLP, _weight_bits(1e9)),
    "zero_point_inf": Case(QONNX_MLP, _zp_inf),
    "undefined_initializer_type": Case(QONNX_MLP, _undefined_init),
    "undefined_input_type": Case(QONNX_MLP, _undefined_input),
    "external_data_missing": Case(QONNX_MLP, _external("weights.bin")),
    "external_data_absolute": Case(QONNX_MLP, _external("/etc/passwd")),
    "external_data_parent": Case(QONNX_MLP, _external("../weights.bin")),
    "no_outputs": Case(QDQ_MLP, _no_outputs),
    "transpose_perm_repeated": Case(W1A1, _transpose_perm([0, 0])),
    "transpose_perm_out_of_range": Case(W1A1, _transpose_perm([1, 2])),
    "attribute_type_float_for_ints": Case(QDQ_CNN, _attr_type("strides", [1.0, 1.0], QDQ_CONV1)),
    "attribute_type_string_for_int": Case(QDQ_MLP, _attr_type("transB", "yes", "/inner/fc1/Gemm")),
    "attribute_type_qonnx": Case(QONNX_MLP, _attr_type("signed", "one", "/fc1/weight_quant/export_handler/Quant")),
    "input_is_output": Case(QDQ_MLP, _input_is_output),
    "output_element_type_unknown": Case(QONNX_MLP, _output_type),
    "constant_fold_fails": Case(
        W1A1, _rewire("/fc1/weight_quant/export_handler/BipolarQuant", 0, "flat_weight", np.ones(32, np.float32)),
        "/fc1/Transpose",
    ),
    "bit_width_computed": Case(
        QONNX_MLP, _rewire("/fc2/weight_quant/export_handler/Quant", 3, "/fc1/bias_quant/export_handler/Quant_output_0")
    ),
    "graph_input_read_by_no_node": Case(QONNX_MLP, _unread_input),
    "two_data_inputs": Case(QDQ_MLP, _second_input),
    "clip_bound_empty": Case("qcdq_mlp_w4a4.onnx", _reshaped("/fc1/weight_quant/export_handler/Constant_2_output_0", (0,))),
    "gemm_bias_of_two_dimensions": Case(
        "qonnx_mlp_w4a4_dynamo.onnx", _rewire("node_linear_1", 2, "wide_bias", np.zeros((10, 32), np.float32))
    ),
    "standard_attribute_float_for_int": Case("qdq_dscnn_s8w4_msdomain.onnx", _attr_float("onnx::Conv_64_DequantizeLinear", "axis")),
    "standard_attribute_float_for_int_qdq": Case(QDQ_CNN, _attr_float("onnx::Conv_39_DequantizeLinear", "axis")),
    "zero_point_computed": Case(
        "qdq_dscnn_s8w4_msdomain.onnx", _rewire("/GlobalAveragePool_output_0_QuantizeLinear", 2, "onnx::Conv_67")
    ),
    "quant_scale_wider_than_bias": Case(QONNX_MLP, _reshaped("/fc1/bias_quant/export_handler/Constant_output_0", (1, 1))),
    "dequantize_scale_of_two_dimensions": Case("qcdq_mlp_w4a4.onnx", _reshaped("onnx::DequantizeLinear_36", (1, 1))),
    "bipolar_scale_shape": Case(W1A1, _reshaped("/fc1/weight_quant/export_handler/Constant_output_0", (2,))),
    "qlinearconv_bias_length": Case("qop_dscnn_perchannel.onnx", _reshaped("onnx::Conv_70_quantized", (31,))),
    "qgemm_zero_point_float16": Case("qop_mlp_pertensor.onnx", _retyped("/inner/fc2/Gemm_output_0_zero_point", np.float16)),
    "qlinear_pool_zero_point_float16": Case(
        "qop_cnn_perchannel_residual.onnx", _retyped("/gap/GlobalAveragePool_output_0_zero_point", np.float16)
    ),
    "quant_scale_is_a_weight_matrix": Case(W1A1, _rewire("/inp/act_quant/export_handler/Quant", 1, "fc1.weight")),
    # found by the fuzzer
    "residual_add_scales_1e30_apart": Case(
        "qop_cnn_perchannel_residual.onnx", lambda m: poke(m, "/conv1/Conv_output_0_scale", 1e30), "residual Add"
    ),
}


# ---------------------------------------------------------------------------------------
# the fuzzer: random mutations of the same kinds, plus byte-level damage
# ---------------------------------------------------------------------------------------

BAD_FLOATS = (float("nan"), float("inf"), float("-inf"), 0.0, -1.0, 1e30, 1e-30, 1000.0, 0.5)
BAD_INTS = (0, -1, 1, 2, 3, -7, 1000, 2**31 - 1, 2**40)


def _float_inits(m):
    return [t for t in m.graph.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.DOUBLE)]


def _fz_poke(m, rng):
    inits = _float_inits(m)
    if not inits:
        return None
    t = rng.choice(inits)
    arr = numpy_helper.to_array(t).copy()
    if arr.size == 0:
        return None
    arr.reshape(-1)[rng.randrange(arr.size)] = rng.choice(BAD_FLOATS)
    t.CopyFrom(numpy_helper.from_array(arr, t.name))
    return f"poke {t.name}"


def _fz_resize(m, rng):
    t = rng.choice(list(m.graph.initializer))
    arr = numpy_helper.to_array(t)
    flat = arr.reshape(-1)
    new = rng.choice([flat[:-1], np.concatenate([flat, flat[:1]]), flat[:1], flat.reshape(1, -1), flat[:0]])
    t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(new), t.name))
    return f"resize {t.name}"


def _fz_dims(m, rng):
    t = rng.choice(list(m.graph.initializer))
    if t.dims:
        t.dims[rng.randrange(len(t.dims))] = rng.choice([0, 1, 2, 65, -1])
    else:
        t.dims.append(rng.choice([0, 2, 3]))
    return f"dims {t.name}"


def _fz_dtype(m, rng):
    t = rng.choice(list(m.graph.initializer))
    kind = rng.choice(["string", "undefined", "int32", "float64", "int8", "bool", "float16", "raw"])
    if kind == "string":
        t.CopyFrom(helper.make_tensor(t.name, TensorProto.STRING, [], [b"1"]))
    elif kind == "undefined":
        t.data_type = TensorProto.UNDEFINED
    elif kind == "raw":
        t.data_type = rng.choice([TensorProto.INT64, TensorProto.FLOAT16, TensorProto.INT4, TensorProto.UINT8])
    else:
        arr = numpy_helper.to_array(t)
        t.CopyFrom(numpy_helper.from_array(arr.astype(kind), t.name))
    return f"dtype {t.name} {kind}"


def _fz_duplicate(m, rng):
    t = rng.choice(list(m.graph.initializer))
    dup = onnx.TensorProto()
    dup.CopyFrom(t)
    m.graph.initializer.append(dup)
    if rng.random() < 0.7:
        _fz_poke_tensor(dup, rng)
    return f"duplicate {t.name}"


def _fz_poke_tensor(t, rng):
    arr = numpy_helper.to_array(t).copy()
    if arr.size:
        arr.reshape(-1)[rng.randrange(arr.size)] = 3 if arr.dtype.kind in "iub" else rng.choice(BAD_FLOATS)
        t.CopyFrom(numpy_helper.from_array(arr, t.name))


def _random_attr_value(rng, old):
    choice = rng.randrange(8)
    if choice == 0:
        return rng.choice(BAD_INTS)
    if choice == 1:
        return rng.choice(BAD_FLOATS)
    if choice == 2:
        return rng.choice(["", "SAME_UPPER", "VALID", "bogus", "FLOOR"])
    if choice == 3:
        return [rng.choice(BAD_INTS) for _ in range(rng.randrange(1, 6))]
    if choice == 4:
        return [rng.choice(BAD_FLOATS) for _ in range(rng.randrange(1, 4))]
    if choice == 5 and isinstance(old, list) and old:
        new = list(old)
        new[rng.randrange(len(new))] = rng.choice(BAD_INTS)
        return new
    if choice == 6 and isinstance(old, list):
        return list(old)[: rng.randrange(len(old) + 1)] + [rng.choice(BAD_INTS)] * rng.randrange(2)
    return rng.choice([0, 1, 2, -1])


def _fz_attr(m, rng):
    n = rng.choice(list(m.graph.node))
    names = [a.name for a in n.attribute]
    extra = ["kernel_shape", "pads", "strides", "dilations", "group", "axis", "perm", "narrow", "signed",
             "epsilon", "transA", "transB", "alpha", "auto_pad", "rounding_mode", "ceil_mode", "block_size"]  # fmt: skip
    name = rng.choice(names + extra) if names and rng.random() < 0.7 else rng.choice(extra)
    old = next((helper.get_attribute_value(a) for a in n.attribute if a.name == name), None)
    if name in names and rng.random() < 0.15:
        kept = [a for a in n.attribute if a.name != name]
        del n.attribute[:]
        n.attribute.extend(kept)
        return f"drop attr {n.name}.{name}"
    set_attr(n, name, _random_attr_value(rng, old))
    return f"attr {n.name}.{name}"


def _fz_domain(m, rng):
    n = rng.choice(list(m.graph.node))
    n.domain = rng.choice(["", "com.microsoft", "qonnx.custom_op.general", "ai.onnx", "foo.bar", "ai.onnx.ml"])
    return f"domain {n.name} {n.domain!r}"


def _fz_opset(m, rng):
    imp = rng.choice(list(m.opset_import))
    imp.version = rng.choice([0, 1, 6, 9, 10, 11, 12, 19, 23, 24, 99])
    return f"opset {imp.domain!r} {imp.version}"


def _fz_io(m, rng):
    g = m.graph
    kind = rng.randrange(7)
    vi = rng.choice(list(g.output) + list(g.input[:1]))
    tt = vi.type.tensor_type
    if kind == 0:
        del g.output[:]
    elif kind == 1:
        g.output.append(g.input[0])
    elif kind == 2 and tt.shape.dim:
        tt.shape.dim[rng.randrange(len(tt.shape.dim))].dim_value = rng.choice([0, 1, 3, 7, 11, 10**7])
    elif kind == 3:
        tt.elem_type = rng.choice([TensorProto.UNDEFINED, TensorProto.STRING, TensorProto.INT8, TensorProto.INT64])
    elif kind == 4:
        tt.ClearField("shape")
    elif kind == 5:
        vi.name = rng.choice(["", "nonexistent", g.node[rng.randrange(len(g.node))].output[0]])
    else:
        g.output.append(g.output[0])
    return f"io {kind} {vi.name}"


def _fz_wire(m, rng):
    n = rng.choice(list(m.graph.node))
    if not n.input:
        return None
    i = rng.randrange(len(n.input))
    names = [t.name for t in m.graph.initializer] + [o for k in m.graph.node for o in k.output] + ["", "ghost"]
    n.input[i] = rng.choice(names)
    return f"wire {n.name}[{i}]"


def _fz_node(m, rng):
    g = m.graph
    i = rng.randrange(len(g.node))
    kind = rng.randrange(3)
    if kind == 0:
        del g.node[i]
    elif kind == 1:
        dup = onnx.NodeProto()
        dup.CopyFrom(g.node[i])
        g.node.insert(rng.randrange(len(g.node) + 1), dup)
    else:
        j = rng.randrange(len(g.node))
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(g.node[i])
        b.CopyFrom(g.node[j])
        g.node[i].CopyFrom(b)
        g.node[j].CopyFrom(a)
    return f"node {kind} {i}"


def _fz_external(m, rng):
    t = rng.choice(list(m.graph.initializer))
    return "external " + external(m, t.name, rng.choice(["w.bin", "/etc/hostname", "../w.bin", "", "a/../../b"]))


STRUCTURAL = [_fz_poke, _fz_poke, _fz_resize, _fz_dims, _fz_dtype, _fz_duplicate, _fz_attr, _fz_attr,
              _fz_attr, _fz_domain, _fz_opset, _fz_io, _fz_wire, _fz_node, _fz_external]  # fmt: skip


def _damage_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    buf = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randrange(1, 9)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == 1:
        buf = buf[: rng.randrange(1, len(buf))]
    elif kind == 2:
        pos = rng.randrange(len(buf))
        buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 17)))
    else:
        start = rng.randrange(len(buf))
        del buf[start : start + rng.randrange(1, 64)]
    return bytes(buf), f"bytes {kind}"


def mutate(fixture: str, rng: random.Random) -> tuple[bytes, list[str]]:
    """One mutant of ``fixture``: its serialized bytes and what was done to it."""
    model = load(fixture)
    done = []
    if rng.random() < 0.2:
        data, what = _damage_bytes(model.SerializeToString(), rng)
        return data, [what]
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        try:
            what = rng.choice(STRUCTURAL)(model, rng)
        except Exception:  # noqa: BLE001 - an earlier mutation broke the target (external data, ...)
            what = None
        if what:
            done.append(what)
    return model.SerializeToString(), done


def nonfinite_parameters(data: bytes) -> list[str]:
    """Float initializers and Constant values with NaN/Inf (read independently of accelgen)."""
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception:  # noqa: BLE001 - an unparsable mutant has no parameters
        return []
    bad = []
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    for t in tensors:
        try:
            arr = numpy_helper.to_array(t)
        except Exception:  # noqa: BLE001 - unreadable tensors are another kind of invalid
            continue
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            bad.append(t.name)
    return bad
