"""The one up-front check of an ONNX model: onnx's full checker plus accelgen's own rules.

:func:`check_model` runs on the parsed model before the importer does any work, so that a
malformed or invalid model ends in one :class:`InputError` (exit code 2) that names the file,
tensor or node and says what to do, never in an exception deep inside the compiler or in a
design built from NaN weights. :func:`check_resources` refuses imported graphs whose golden
evaluation would need more memory than :data:`MAX_SAMPLE_BYTES` for one sample.

The rules, in order: graph structure (outputs exist, an input is not also an output, every
input has a type); external data (relative paths inside the model's directory, which are then
loaded); op domains (standard ops in the standard domain, QONNX and contrib ops in theirs);
the opset; every constant readable, numeric and finite; onnx's checker and strict type and
shape inference; and per node: attribute types and values, convolution and pooling
geometry, Transpose permutations, quantizer parameters, BatchNorm parameters.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import AttributeProto, numpy_helper

from accelgen.errors import InputError
from accelgen.frontend.constants import int_dtype_bits
from accelgen.frontend.load import QONNX_DOMAINS, QONNX_OPS

#: the oldest default-domain opset whose operator semantics accelgen implements
#: (QuantizeLinear appeared in opset 10; Gemm, BatchNormalization changed before it)
MIN_OPSET = 10
#: most memory the golden interpreter may need per sample for one layer
MAX_SAMPLE_BYTES = 64 * 2**20
#: the widest bit width of a quantized constant (QONNX biases are quantized to 32 bits)
MAX_CONST_BITS = 32

STANDARD_DOMAINS = ("", "ai.onnx")
#: onnxruntime contrib ops (domain com.microsoft) that accelgen reads
CONTRIB_OPS = {
    "QLinearAdd", "QGemm", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat",
    "QLinearSigmoid", "QLinearLeakyRelu", "QLinearMul",
}  # fmt: skip
#: standard ops that onnxruntime also defines in com.microsoft (quantize_static's UseQDQContribOps)
CONTRIB_STANDARD = {"QuantizeLinear", "DequantizeLinear"}
#: attribute types of the non-standard ops (onnx's checker verifies the standard ones)
CUSTOM_ATTRS = {
    "Quant": {"signed": "INT", "narrow": "INT", "rounding_mode": "STRING"},
    "IntQuant": {"signed": "INT", "narrow": "INT", "rounding_mode": "STRING"},
    "Trunc": {"signed": "INT", "narrow": "INT", "rounding_mode": "STRING", "output_scale": "FLOAT"},
    "BipolarQuant": {},
    "QGemm": {"alpha": "FLOAT", "transA": "INT", "transB": "INT"},
    "QLinearGlobalAveragePool": {"channels_last": "INT"},
    "QLinearAveragePool": {"auto_pad": "STRING", "ceil_mode": "INT", "count_include_pad": "INT",
                           "kernel_shape": "INTS", "pads": "INTS", "strides": "INTS", "channels_last": "INT"},
    "QLinearConcat": {"axis": "INT"},
    "QLinearLeakyRelu": {"alpha": "FLOAT"},
}  # fmt: skip
#: attributes that are flags: 0 or 1
FLAG_ATTRS = {"signed", "narrow", "transA", "transB", "ceil_mode", "count_include_pad", "keepdims",
              "channels_last", "training_mode"}  # fmt: skip
#: ops with a sliding window, and the input index of their weights (None: no weights)
WINDOW_OPS = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "MaxPool": None, "AveragePool": None,
              "QLinearAveragePool": None}  # fmt: skip
#: tensor element types that cannot hold weights or quantization parameters
NON_NUMERIC = {onnx.TensorProto.STRING, onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128}
#: ops whose bound inputs may be infinite (Clip's min/max)
INF_ALLOWED = {"Clip", "Min", "Max"}

REEXPORT = "re-export the model from the training framework"


def check_model(model: onnx.ModelProto, base_dir: str | Path | None = None, where: str = "the model") -> None:
    """Raise InputError unless ``model`` is a well-formed ONNX model accelgen can read.

    ``base_dir`` is the model file's directory (external data is read from there and only
    there); None for a model held in memory, which must then carry all its data inside.
    ``where`` names the model in messages (its path).
    """
    _check_text(model, where)
    _check_structure(model, where)
    _load_external_data(model, base_dir, where)
    _check_domains(model, where)
    _check_opset(model, where)
    consts = _read_constants(model, where)
    shapes = _check_onnx(model, where)
    constant = _constant_tensors(model, consts)
    opset = next((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), MIN_OPSET)
    problems: list[str] = []
    for node in model.graph.node:
        problems += _node_problems(node, consts, shapes, opset)
        problems += _qparam_problems(node, consts, constant)
    if problems:
        raise InputError(_listing(where, problems))


def _listing(where: str, problems: list[str]) -> str:
    lines = [f"{where} is not a valid model ({len(problems)} problem(s)):"] + [f"  - {p}" for p in problems]
    return "\n".join(lines + [f"Fix the model or {REEXPORT}."])


def _label(node: onnx.NodeProto) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


# -- the graph as a whole ---------------------------------------------------------------------


def _check_text(model: onnx.ModelProto, where: str) -> None:
    """Names must be text: a damaged file can parse with bytes that are not UTF-8."""
    g = model.graph
    try:
        names = [g.name, *(imp.domain for imp in model.opset_import)]
        for n in g.node:
            names += [n.name, n.op_type, n.domain, *n.input, *n.output, *(a.name for a in n.attribute)]
        for t in g.initializer:
            names += [t.name, *(e.key for e in t.external_data), *(e.value for e in t.external_data)]
        for vi in (*g.input, *g.output, *g.value_info):
            names += [vi.name, *(d.dim_param for d in vi.type.tensor_type.shape.dim)]
        ok = all(isinstance(name, str) for name in names)
    except UnicodeDecodeError:
        ok = False
    if not ok:
        raise InputError(f"{where}: a name in the model is not valid UTF-8 text; the file is damaged, {REEXPORT}")


def _check_structure(model: onnx.ModelProto, where: str) -> None:
    g = model.graph
    if not g.output:
        raise InputError(f"{where}: the graph has no outputs; export the model with its output tensor(s) declared")
    inits = {t.name for t in g.initializer}
    inputs = {vi.name for vi in g.input}
    for vi in g.output:
        if vi.name in inputs and vi.name not in inits:
            raise InputError(
                f"{where}: graph input '{vi.name}' is also a graph output; accelgen needs each output "
                "computed by the model (remove it from the outputs)"
            )
    for vi in g.input:
        if vi.name in inits:
            continue
        if not vi.type.HasField("tensor_type"):
            raise InputError(f"{where}: graph input '{vi.name}' is not a tensor; accelgen takes tensor inputs")
        if vi.type.tensor_type.elem_type == onnx.TensorProto.UNDEFINED:
            raise InputError(f"{where}: graph input '{vi.name}' has no element type (UNDEFINED); {REEXPORT}")
        if not vi.type.tensor_type.HasField("shape"):
            raise InputError(
                f"{where}: graph input '{vi.name}' has no shape: export the model with static input "
                "shapes (the batch dimension may be symbolic)"
            )


def _external_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            yield t
    for node in model.graph.node:
        for a in node.attribute:
            if a.HasField("t") and a.t.data_location == onnx.TensorProto.EXTERNAL:
                yield a.t


def _load_external_data(model: onnx.ModelProto, base_dir: str | Path | None, where: str) -> None:
    """Read external tensor data, but only from files inside the model's own directory."""
    tensors = list(_external_tensors(model))
    if not tensors:
        return
    if base_dir is None:
        raise InputError(
            f"{where}: tensor '{tensors[0].name}' keeps its data in an external file; pass the model's "
            "path instead of a loaded model, or save it with onnx.save(..., save_as_external_data=False)"
        )
    root = Path(base_dir).resolve()
    for t in tensors:
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        what = f"{where}: tensor '{t.name}' keeps its data in the external file '{location}'"
        if not location or os.path.isabs(location) or ".." in Path(location).parts:
            raise InputError(f"{what}; external data must be a relative path inside the model's directory")
        file = (root / location).resolve()
        if root not in file.parents or not file.is_file():
            raise InputError(f"{what}, which is not a file in {root}; keep the data file next to the model")
        try:
            offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
        except ValueError:
            raise InputError(f"{what} with an offset or length that is not a number") from None
        size = file.stat().st_size
        if offset < 0 or offset > size or (length >= 0 and offset + length > size):
            raise InputError(f"{what}: offset {offset} / length {length} lie outside the file ({size} bytes)")
    onnx.external_data_helper.load_external_data_for_model(model, str(root))


def _check_domains(model: onnx.ModelProto, where: str) -> None:
    """Standard ops in the standard domain; QONNX and contrib ops in their own."""
    problems = []
    for node in model.graph.node:
        op, dom = node.op_type, node.domain
        standard = onnx.defs.has(op)
        if dom in STANDARD_DOMAINS and op in QONNX_OPS and not standard:
            problems.append(f"node '{_label(node)}': {op} is a QONNX op; its domain must be 'qonnx.custom_op.general'")
        elif dom in STANDARD_DOMAINS and op in CONTRIB_OPS:
            problems.append(
                f"node '{_label(node)}': {op} is an onnxruntime contrib op; its domain must be 'com.microsoft'"
            )
        elif dom == "com.microsoft" and standard and op not in CONTRIB_OPS | CONTRIB_STANDARD:
            problems.append(
                f"node '{_label(node)}': {op} in domain '{dom}' is either onnxruntime's contrib {op}, which "
                f"accelgen does not read (it reads {', '.join(sorted(CONTRIB_OPS | CONTRIB_STANDARD))}), or the "
                "standard ONNX op in a foreign domain"
            )
        elif dom in QONNX_DOMAINS and standard and op not in QONNX_OPS:
            problems.append(f"node '{_label(node)}': standard ONNX op {op} in the foreign domain '{dom}'")
    if problems:
        raise InputError(_listing(where, problems + ["standard ONNX ops belong to the default domain ''"]))


def _check_opset(model: onnx.ModelProto, where: str) -> None:
    for imp in model.opset_import:
        if imp.domain in STANDARD_DOMAINS and not MIN_OPSET <= imp.version <= onnx.defs.onnx_opset_version():
            raise InputError(
                f"{where}: default-domain opset {imp.version} is not supported; accelgen reads opsets "
                f"{MIN_OPSET} to {onnx.defs.onnx_opset_version()} (export with e.g. opset_version=13)"
            )


def _check_onnx(model: onnx.ModelProto, where: str) -> dict[str, tuple]:
    """onnx's checker and strict type and shape inference; the inferred shapes by tensor name.

    A graph output declared without a shape is accepted (onnxruntime runs such models and
    accelgen computes every output's shape): the checker sees the model without it.
    """
    shapeless = [vi for vi in model.graph.output if not vi.type.tensor_type.HasField("shape")]
    if shapeless:
        tolerant = onnx.ModelProto()
        tolerant.CopyFrom(model)
        kept = [vi for vi in tolerant.graph.output if vi.type.tensor_type.HasField("shape")]
        del tolerant.graph.output[:]
        tolerant.graph.output.extend(kept)
        model = tolerant
    try:
        onnx.checker.check_model(model)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{where}: the ONNX checker rejects the model: {first}; {REEXPORT}") from None
    shapes: dict[str, tuple] = {}
    g = inferred.graph
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
    return shapes


def _read_constants(model: onnx.ModelProto, where: str) -> dict[str, np.ndarray]:
    """Every initializer and Constant value as an array: readable, numeric, finite."""
    consts: dict[str, np.ndarray] = {}
    readers: dict[str, list[str]] = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(f"'{_label(n)}'")
    allow_inf = {i for n in model.graph.node if n.op_type in INF_ALLOWED for i in n.input[1:]}
    tensors = [(t.name, t) for t in model.graph.initializer]
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            tensors += [(node.output[0], a.t) for a in node.attribute if a.HasField("t")]
    for name, t in tensors:
        what = f"{where}: tensor '{name}'"
        if name in readers:
            what += f" (read by node {', '.join(readers[name][:3])})"
        if t.data_type in NON_NUMERIC:
            raise InputError(
                f"{what} holds {onnx.TensorProto.DataType.Name(t.data_type).lower()} values; accelgen needs "
                "numeric weights and quantization parameters"
            )
        try:
            arr = numpy_helper.to_array(t)
        except (ValueError, TypeError, KeyError) as exc:
            raise InputError(f"{what} cannot be read ({exc}); {REEXPORT}") from None
        if arr.dtype.kind == "f":
            bad = np.isnan(arr) if name in allow_inf else ~np.isfinite(arr)
            if np.any(bad):
                raise InputError(
                    f"{what} has {int(bad.sum())} non-finite value(s) (e.g. {arr[bad].reshape(-1)[0]}); "
                    "weights, biases, BatchNorm parameters, scales and zero points must be finite "
                    f"numbers; {REEXPORT}"
                )
        consts[name] = arr
    return consts


# -- per node ---------------------------------------------------------------------------------


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _node_problems(node: onnx.NodeProto, consts: dict, shapes: dict, opset: int) -> list[str]:
    label = f"node '{_label(node)}' ({node.op_type})"
    problems = _attr_problems(node, opset)
    if problems:  # the values below assume well-typed attributes
        return [f"{label}: {p}" for p in problems]
    attrs = _attrs(node)
    if node.op_type in WINDOW_OPS:
        problems += _window_problems(node, attrs, consts, shapes)
    if node.op_type == "Transpose" and "perm" in attrs:
        problems += _perm_problems(node, attrs["perm"], consts, shapes)
    if node.op_type in ("Quant", "IntQuant", "Trunc") and node.domain in QONNX_DOMAINS:
        problems += _qonnx_quant_problems(node, attrs, consts, shapes)
    if node.op_type == "BipolarQuant" and node.domain in QONNX_DOMAINS:
        problems += _broadcast_problem(node, 1, consts, shapes, "scale")
    if node.op_type in QOPERATOR_BIAS:
        problems += _qoperator_bias_problems(node, attrs, consts)
    if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
        problems += _linear_quant_problems(node, attrs, consts, shapes)
    if node.op_type == "BatchNormalization":
        problems += _batchnorm_problems(node, attrs, consts)
    return [f"{label}: {p}" for p in problems]


def _standard_attr_types(node: onnx.NodeProto, opset: int) -> dict[str, str] | None:
    """Attribute types of a standard op at the model's opset (onnx's checker does not check them)."""
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        return None
    return {name: AttributeProto.AttributeType.Name(a.type) for name, a in schema.attributes.items()}


def _attr_problems(node: onnx.NodeProto, opset: int) -> list[str]:
    problems = []
    if node.domain in STANDARD_DOMAINS or node.op_type in CONTRIB_STANDARD:
        schema = _standard_attr_types(node, opset)
    else:
        schema = CUSTOM_ATTRS.get(node.op_type)
    for a in node.attribute:
        kind = AttributeProto.AttributeType.Name(a.type)
        if schema is not None and a.name in schema and schema[a.name] != kind:
            problems.append(f"attribute '{a.name}' is {kind}, expected {schema[a.name]}")
            continue
        value = onnx.helper.get_attribute_value(a)
        if a.name in FLAG_ATTRS and kind == "INT" and value not in (0, 1):
            problems.append(f"attribute '{a.name}' is {value}; it is a flag, 0 or 1")
        floats = [value] if kind == "FLOAT" else list(value) if kind == "FLOATS" else []
        if any(math.isnan(f) or (math.isinf(f) and node.op_type not in INF_ALLOWED) for f in floats):
            problems.append(f"attribute '{a.name}' is {value}, not a finite number")
    return problems


def _shape_of(name: str, consts: dict, shapes: dict) -> tuple | None:
    if name in consts:
        return tuple(consts[name].shape)
    return shapes.get(name)


def _window_problems(node, attrs, consts, shapes) -> list[str]:
    w_index = WINDOW_OPS[node.op_type]
    w_shape = None
    if w_index is not None and len(node.input) > w_index:
        w_shape = _shape_of(node.input[w_index], consts, shapes)
    x_shape = _shape_of(node.input[0], consts, shapes) if node.input else None
    if w_shape is not None and len(w_shape) >= 3:
        rank = len(w_shape) - 2
    elif "kernel_shape" in attrs:
        rank = len(attrs["kernel_shape"])
    elif x_shape is not None and len(x_shape) >= 3:
        rank = len(x_shape) - 2
    else:
        return [] if w_index is not None else ["no kernel_shape attribute"]
    problems = []
    kernel = attrs.get("kernel_shape")
    if kernel is not None:
        if len(kernel) != rank or any(k < 1 for k in kernel):
            problems.append(f"kernel_shape {kernel} is not {rank} positive sizes")
        elif w_shape is not None and tuple(kernel) != tuple(w_shape[2:]):
            problems.append(f"kernel_shape {kernel} contradicts the weights '{node.input[w_index]}' of shape {w_shape}")
    for name, length, least in (("strides", rank, 1), ("dilations", rank, 1), ("pads", 2 * rank, 0)):
        value = attrs.get(name)
        if value is not None and (len(value) != length or any(v < least for v in value)):
            problems.append(f"{name} {value} must be {length} values >= {least}")
    group = attrs.get("group", 1)
    if group < 1 or (w_shape is not None and w_shape and w_shape[0] % group):
        problems.append(f"group {group} does not divide the {w_shape[0] if w_shape else '?'} output channels")
    return problems


def _perm_problems(node, perm, consts, shapes) -> list[str]:
    x_shape = _shape_of(node.input[0], consts, shapes) if node.input else None
    if sorted(perm) != list(range(len(perm))):
        return [f"perm {perm} is not a permutation of 0..{len(perm) - 1}"]
    if x_shape is not None and len(x_shape) != len(perm):
        return [f"perm {perm} does not match the {len(x_shape)}-D input '{node.input[0]}'"]
    return []


def _const_input(node, index, consts):
    return consts.get(node.input[index]) if len(node.input) > index and node.input[index] else None


def _broadcast_problem(node, index, consts, shapes, what) -> list[str]:
    """A quantization parameter that does not broadcast against the quantized tensor."""
    param = _const_input(node, index, consts)
    x_shape = _shape_of(node.input[0], consts, shapes)
    if param is None or x_shape is None or any(d is None for d in x_shape[1:]):
        return []
    full = tuple(1 if d is None else d for d in x_shape)
    try:
        fits = param.ndim <= len(full) and np.broadcast_shapes(param.shape, full) == full
    except ValueError:
        fits = False
    if not fits:
        return [f"{what} '{node.input[index]}' of shape {param.shape} does not fit the input of shape {x_shape}"]
    return []


def _bits_problem(value: np.ndarray | None, name: str) -> list[str]:
    if value is None:
        return []
    flat = value.astype(np.float64).reshape(-1)
    if flat.size != 1 or not (flat[0] == round(flat[0]) and 1 <= flat[0] <= MAX_CONST_BITS):
        return [f"bit width '{name}' is {value.tolist()}; it must be one whole number from 1 to {MAX_CONST_BITS}"]
    return []


def _qonnx_quant_problems(node, attrs, consts, shapes) -> list[str]:
    if len(node.input) < 4:
        return [f"{len(node.input)} inputs; it takes (x, scale, zero_point, bit_width, ...)"]
    problems = _broadcast_problem(node, 1, consts, shapes, "scale")
    problems += _broadcast_problem(node, 2, consts, shapes, "zero point")
    bit_inputs = (
        [3, 5] if node.op_type == "Trunc" and len(node.input) >= 6 else [3, 4] if node.op_type == "Trunc" else [3]
    )
    for i in bit_inputs:
        problems += _bits_problem(_const_input(node, i, consts), node.input[i])
    zp = _const_input(node, 2, consts)
    bits = _const_input(node, 3, consts)
    if problems or zp is None or node.op_type == "Trunc":
        return problems
    if np.any(zp != np.round(zp)):
        return [f"zero point '{node.input[2]}' is not a whole number"]
    if bits is not None:
        b = int(bits.reshape(-1)[0])
        signed, narrow = attrs.get("signed", 1), attrs.get("narrow", 0)
        lo = -(2 ** (b - 1)) + narrow if signed else 0
        hi = 2 ** (b - 1) - 1 if signed else 2**b - 1 - narrow
        if b == 1 and signed:
            lo, hi = -1, 1  # bipolar
        if np.any((zp < lo) | (zp > hi)):
            return [
                f"zero point '{node.input[2]}' ({zp.reshape(-1)[0]:g}) lies outside the {b}-bit code range [{lo}, {hi}]"
            ]
    return problems


def _linear_quant_problems(node, attrs, consts, shapes) -> list[str]:
    scale = _const_input(node, 1, consts)
    problems = []
    if not attrs.get("block_size"):
        for i, what in ((1, "scale"), (2, "zero point")):
            param = _const_input(node, i, consts)
            if param is not None and param.ndim > 1:
                problems.append(
                    f"{what} '{node.input[i]}' has shape {param.shape}; it must be a scalar (per tensor) or "
                    "1-D (per channel)"
                )
    if problems:
        return problems
    x_shape = _shape_of(node.input[0], consts, shapes)
    if scale is None or scale.size <= 1 or x_shape is None or attrs.get("block_size"):
        return problems
    axis = attrs.get("axis", 1)
    if not -len(x_shape) <= axis < len(x_shape):
        return problems + [f"axis {axis} is outside the {len(x_shape)}-D input"]
    channels = x_shape[axis]
    if channels is not None and scale.size != channels:
        problems.append(
            f"per-channel scale '{node.input[1]}' has {scale.size} values but axis {axis} of "
            f"'{node.input[0]}' has {channels}"
        )
    return problems


def _batchnorm_problems(node, attrs, consts) -> list[str]:
    var = _const_input(node, 4, consts)
    eps = attrs.get("epsilon", 1e-5)
    if eps < 0:
        return [f"epsilon {eps} is negative"]
    if var is not None and np.any(var.astype(np.float64) + eps <= 0):
        bad = var.reshape(-1)[(var.reshape(-1) + eps) <= 0][0]
        return [f"variance '{node.input[4]}' has a value {bad:g} that is not positive (with epsilon {eps:g})"]
    return []


#: quantizer inputs that must be constants: every input but the data of these ops
QUANTIZERS = {"Quant", "IntQuant", "BipolarQuant", "Trunc", "QuantizeLinear", "DequantizeLinear"}
#: QOperator ops: (scale, zero point, weights or None, weights' channel axis) per quantized operand;
#: an operand without weights is quantized per tensor
QOPERATOR_PARAMS = {
    "QLinearConv": [(1, 2, None, None), (4, 5, 3, 0), (6, 7, None, None)],
    "QLinearMatMul": [(1, 2, None, None), (4, 5, 3, -1), (6, 7, None, None)],
    "QGemm": [(1, 2, None, None), (4, 5, 3, "transB"), (7, 8, None, None)],
    "QLinearAdd": [(1, 2, None, None), (4, 5, None, None), (6, 7, None, None)],
    "QLinearMul": [(1, 2, None, None), (4, 5, None, None), (6, 7, None, None)],
    "QLinearGlobalAveragePool": [(1, 2, None, None), (3, 4, None, None)],
    "QLinearAveragePool": [(1, 2, None, None), (3, 4, None, None)],
    "QLinearSigmoid": [(1, 2, None, None), (3, 4, None, None)],
    "QLinearLeakyRelu": [(1, 2, None, None), (3, 4, None, None)],
    "ConvInteger": [(None, 2, None, None), (None, 3, 1, 0)],
    "MatMulInteger": [(None, 2, None, None), (None, 3, 1, -1)],
}  # fmt: skip


def _zero_point_type_ok(node: onnx.NodeProto, dtype: np.dtype) -> bool:
    """Zero-point types of the ops onnx's checker has no schema for (onnxruntime's contrib ops);
    the standard ops' types are checked by onnx's strict type inference."""
    if node.domain != "com.microsoft":
        return True
    if node.op_type in CONTRIB_STANDARD:
        return int_dtype_bits(dtype) is not None or dtype.name == "int32"
    return dtype.name in ("int8", "uint8")


#: QOperator ops with an int32 bias: (bias input, weight input, the weight axis of the outputs)
QOPERATOR_BIAS = {"QLinearConv": (8, 3, 0), "QGemm": (6, 3, "transB")}


def _qoperator_bias_problems(node, attrs, consts) -> list[str]:
    """The bias holds one value per output channel (or one for all, QGemm)."""
    b_i, w_i, axis = QOPERATOR_BIAS[node.op_type]
    bias, weights = _const_input(node, b_i, consts), _const_input(node, w_i, consts)
    if bias is None or weights is None or weights.ndim < 2:
        return []
    if axis == "transB":
        axis = 0 if attrs.get("transB", 0) else 1
    channels = weights.shape[axis]
    allowed = (channels,) if node.op_type == "QLinearConv" else (1, channels)
    if bias.size not in allowed or (bias.ndim > 1 and max(bias.shape) != bias.size):
        return [
            f"bias '{node.input[b_i]}' of shape {bias.shape} does not hold one value per output channel ({channels})"
        ]
    return []


def _constant_tensors(model: onnx.ModelProto, consts: dict) -> set[str]:
    """Tensors known before any input arrives: constants and what is computed from them alone."""
    constant = set(consts)
    for n in model.graph.node:
        if all(i in constant for i in n.input if i):
            constant.update(n.output)
    return constant


def _qparam_problems(node: onnx.NodeProto, consts: dict, constant: set[str]) -> list[str]:
    """Quantization parameters: constant, non-empty, zero point beside scale, one per channel."""
    label = f"node '{_label(node)}' ({node.op_type})"
    if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
        groups = [(1, 2, None, None)]
    elif node.op_type in QUANTIZERS:  # QONNX: a per-channel scale may share one zero point
        groups = [(i, None, None, None) for i in range(1, len(node.input))]
    else:
        groups = QOPERATOR_PARAMS.get(node.op_type, [])
    problems = []
    for scale_i, zp_i, w_i, axis in groups:
        params = [i for i in (scale_i, zp_i) if i is not None and i < len(node.input) and node.input[i]]
        for i in params:
            name = node.input[i]
            if name not in constant:
                problems.append(
                    f"{label}: quantization parameter '{name}' is computed from the input; it must be a constant"
                )
            elif name in consts and consts[name].size == 0:
                problems.append(f"{label}: quantization parameter '{name}' is empty")
            elif i == zp_i and name in consts and not _zero_point_type_ok(node, consts[name].dtype):
                problems.append(
                    f"{label}: zero point '{name}' is {consts[name].dtype.name}; {node.op_type} takes integer "
                    "zero points of its code type (int8 or uint8 for the QLinear ops)"
                )
        if problems or len(params) < 1:
            continue
        sizes = {node.input[i]: consts[node.input[i]].size for i in params if node.input[i] in consts}
        if len(set(sizes.values())) > 1:
            problems.append(f"{label}: scale and zero point differ in size ({sizes})")
        weights = consts.get(node.input[w_i]) if w_i is not None and w_i < len(node.input) else None
        if weights is not None and weights.size == 0:
            problems.append(f"{label}: the weights '{node.input[w_i]}' are empty")
            continue
        if axis == "transB":
            axis = 0 if _attrs(node).get("transB", 0) else 1
        for name, size in sizes.items():
            if w_i is None and size != 1 and node.op_type not in QUANTIZERS:
                problems.append(f"{label}: '{name}' has {size} values; this operand is quantized per tensor")
            elif weights is not None and weights.ndim and size not in (1, weights.shape[axis]):
                problems.append(
                    f"{label}: '{name}' has {size} values but the weights '{node.input[w_i]}' have "
                    f"{weights.shape[axis]} channels"
                )
    return problems


# -- the golden evaluation's memory -------------------------------------------------------------


def check_resources(graph) -> None:
    """Refuse an imported graph whose golden evaluation needs too much memory per sample.

    Per layer the interpreter holds its input (padded for windows), its output and, for
    convolutions, the window matrix (im2col) in int64.
    """
    from accelgen import ir

    for op in graph.ops:
        need = sum(graph.tensors[t].elements_per_sample() for t in (*op.inputs, *op.outputs))
        if isinstance(op, (ir.Conv, ir.MaxPool, ir.AvgPool)):
            x = graph.tensors[op.inputs[0]]
            out = graph.tensors[op.outputs[0]]
            c, h, w = x.shape[1:4]
            top, left, bottom, right = op.pads
            need += c * (h + top + bottom) * (w + left + right)
            if isinstance(op, ir.Conv):
                oc, icg, kh, kw = op.weights.shape
                need += out.elements_per_sample() // max(oc, 1) * icg * kh * kw * op.groups
        if isinstance(op, ir.TTDense):  # the largest intermediate state, twice (before and after a step)
            need += 2 * max(state for state, _ in op.step_sizes())
        if need * 8 > MAX_SAMPLE_BYTES:
            raise InputError(
                f"node '{op.source}': evaluating this layer needs {need * 8 / 2**20:,.0f} MiB per sample, more "
                f"than accelgen's limit of {MAX_SAMPLE_BYTES // 2**20} MiB; check its shape, pads and strides"
            )
