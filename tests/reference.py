"""Independent reference executors for the fixture models.

``run_reference(model_path, x)`` runs a quantized ONNX model on a batch ``x`` with
the executor that defines what the model computes, independently of accelgen:

* QDQ and QOperator models: onnxruntime, ``CPUExecutionProvider``, default
  session options (``ort_optimize=False`` switches every graph optimisation off,
  which gives the literal ONNX operator semantics instead: with the defaults,
  onnxruntime fuses DequantizeLinear -> Gemm/MatMul/Conv -> QuantizeLinear into its
  integer kernels, e.g. QGemm, whose requantisation and int32 re-quantised float bias
  can land one step away from the float reference on a few elements; see the
  ``ort_unoptimized_*`` fields of ``models/manifest.json``);
* QONNX models (``Quant`` / ``BipolarQuant`` / ``Trunc`` nodes): the ``qonnx``
  package, ``qonnx.core.onnx_exec.execute_onnx`` on a ``ModelWrapper`` after
  ``qonnx.util.cleanup.cleanup_model``.  The qonnx executor needs static shapes,
  so the batch dimension is fixed to ``len(x)`` at load time; one cleaned-up
  wrapper is cached per (file, input shape).

Sessions and wrappers are cached (keyed by the resolved path and the file's
modification time, so regenerating a fixture invalidates the cache).

Every onnxruntime session of the test suite is made by :func:`ort_session`, which first
rewrites constant int8 weights of the integer matrix ops to uint8 with their zero point
raised by 128 (:func:`unsaturated_weights`). The two models mean the same numbers. The
rewrite is needed because onnxruntime's u8s8 kernels on x86-64 CPUs without VNNI (AVX2,
AVX-512 before Cascade Lake) multiply with ``vpmaddubsw``, which adds two uint8 x int8
products into a *saturating* int16: a pair such as 255*127 + 255*127 comes out as 32767,
not 64770, so onnxruntime departs from the ONNX definition on those machines and not on
others (onnxruntime issues #6004, #5849). Its u8u8 kernels widen to 16 bits first and are
exact everywhere, so the rewritten model gives the ONNX result on every CPU.

``detect_dialect(model_path)`` answers ``"qonnx"``, ``"qdq"`` or ``"qoperator"``:
from ``manifest.json`` next to the model when it lists the file, else from the
graph's op types.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

MODELS_DIR = Path(__file__).resolve().parent / "models"

QONNX_OPS = frozenset({"Quant", "BipolarQuant", "Trunc", "MultiThreshold"})
QOPERATOR_OPS = frozenset(
    {
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
        "QGemm",
        "QLinearAdd",
        "QLinearMul",
        "QLinearGlobalAveragePool",
        "QLinearAveragePool",
        "QLinearConcat",
        "QLinearLeakyRelu",
        "QLinearSigmoid",
        "QLinearSoftmax",
        "QLinearReduceMean",
        "QLinearWhere",
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
    }
)

_lock = threading.Lock()
_ort_sessions: dict = {}
_qonnx_wrappers: OrderedDict = OrderedDict()
_QONNX_CACHE_SIZE = 16
_manifests: dict = {}


def _key(model_path) -> tuple[str, int]:
    p = Path(model_path).resolve()
    return str(p), p.stat().st_mtime_ns


def _manifest_entry(path: Path) -> dict | None:
    mpath = path.parent / "manifest.json"
    if not mpath.is_file():
        return None
    mkey = (str(mpath), mpath.stat().st_mtime_ns)
    if mkey not in _manifests:
        with open(mpath) as f:
            _manifests[mkey] = json.load(f)
    for entry in _manifests[mkey].get("models", []):
        if entry.get("file") == path.name:
            return entry
    return None


def dialect_of_graph(model) -> str:
    """Classify an ``onnx.ModelProto`` by the op types it contains."""
    ops = {n.op_type for n in model.graph.node}
    if ops & QONNX_OPS:
        return "qonnx"
    if ops & QOPERATOR_OPS:
        return "qoperator"
    if ops & {"QuantizeLinear", "DequantizeLinear"}:
        return "qdq"
    raise ValueError(f"model contains no quantization operators: {sorted(ops)}")


def detect_dialect(model_path) -> str:
    """``"qonnx"``, ``"qdq"`` or ``"qoperator"`` for a model file."""
    path = Path(model_path).resolve()
    entry = _manifest_entry(path)
    if entry is not None and entry.get("dialect"):
        return entry["dialect"]
    import onnx

    return dialect_of_graph(onnx.load(str(path), load_external_data=False))


# (op type, activation input, weight input, weight zero-point input) of the ops whose
# weights onnxruntime multiplies in its u8s8 / u8u8 integer GEMM kernels
_INTEGER_MATMULS = {
    "QLinearConv": (0, 3, 5),
    "QLinearMatMul": (0, 3, 5),
    "QGemm": (0, 3, 5),
    "ConvInteger": (0, 1, 3),
    "MatMulInteger": (0, 1, 3),
}
# zero-point input of the activation, which gives its element type
_ACTIVATION_ZP = {"QLinearConv": 2, "QLinearMatMul": 2, "QGemm": 2, "ConvInteger": 2, "MatMulInteger": 2}


def unsaturated_weights(model):
    """A copy of ``model`` in which onnxruntime computes the ONNX result on every x86 CPU.

    Every constant int8 weight of QLinearConv, QLinearMatMul, com.microsoft QGemm,
    ConvInteger and MatMulInteger whose activation is uint8 becomes uint8 ``w + 128``
    with zero point ``zp + 128`` (per tensor or per channel): ``w - zp`` is unchanged, so
    the model is the same function; see the module docstring for why it matters. In QDQ
    graphs a DequantizeLinear of constant int8 weight codes (an initializer, or a float
    weight quantized by a QuantizeLinear of constants) feeding Conv / MatMul / Gemm is
    rewritten the same way, since onnxruntime's optimiser fuses it into those kernels.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    producers = {o: n for n in g.node for o in n.output}

    def const(name):
        if name in inits:
            return numpy_helper.to_array(inits[name])
        node = producers.get(name)
        if node is not None and node.op_type == "Constant" and node.attribute[0].name == "value":
            return numpy_helper.to_array(node.attribute[0].t)
        if node is not None and node.op_type == "QuantizeLinear" and node.domain in ("", "ai.onnx"):
            # a float weight quantized in the graph (torch's export): onnxruntime folds it
            # into int8 codes, so take the codes from ONNX's reference implementation
            args = [const(i) if i else None for i in node.input]
            if any(a is None for a, i in zip(args, node.input) if i):
                return None
            from onnx.reference import ReferenceEvaluator

            names = [f"i{k}" if i else "" for k, i in enumerate(node.input)]
            one = helper.make_graph(
                [helper.make_node("QuantizeLinear", names, ["q"], **{a.name: helper.get_attribute_value(a) for a in node.attribute})],
                "q", [], [helper.make_empty_tensor_value_info("q")],
                [numpy_helper.from_array(a, n) for a, n in zip(args, names) if n],
            )  # fmt: skip
            return ReferenceEvaluator(helper.make_model(one, opset_imports=list(model.opset_import))).run(None, {})[0]
        return None

    def add(array: np.ndarray, base: str) -> str:
        name, i = f"{base}__u8", 0
        while name in inits or name in producers:
            i += 1
            name = f"{base}__u8_{i}"
        t = numpy_helper.from_array(array, name)
        g.initializer.append(t)
        inits[name] = t
        return name

    def shifted(node, w_at: int, zp_at: int) -> None:
        w = const(node.input[w_at])
        zp_name = node.input[zp_at] if len(node.input) > zp_at else ""
        zp = const(zp_name) if zp_name else np.zeros((), np.int8)
        if w is None or w.dtype != np.int8 or zp is None or zp.dtype != np.int8:
            return
        node.input[w_at] = add((w.astype(np.int16) + 128).astype(np.uint8), node.input[w_at])
        new_zp = add((zp.astype(np.int16) + 128).astype(np.uint8), zp_name or f"{node.name or node.output[0]}_w_zp")
        while len(node.input) <= zp_at:
            node.input.append("")
        node.input[zp_at] = new_zp

    types: dict[str, int] = {}

    def uint8_activation(node) -> bool:
        at = _ACTIVATION_ZP[node.op_type]
        zp = const(node.input[at]) if len(node.input) > at and node.input[at] else None
        if zp is not None:
            return zp.dtype == np.uint8
        # MatMulInteger / ConvInteger without a zero point: the activation's type (inferred once)
        if not types:
            inferred = onnx.shape_inference.infer_shapes(model)
            types.update((v.name, v.type.tensor_type.elem_type) for v in [*inferred.graph.value_info, *g.input])
        return types.get(node.input[0]) == TensorProto.UINT8

    weight_consumers = {n.input[1] for n in g.node if n.op_type in ("Conv", "MatMul", "Gemm") and len(n.input) > 1}
    for node in g.node:
        if node.op_type in _INTEGER_MATMULS and node.domain in ("", "ai.onnx", "com.microsoft"):
            _, w_at, zp_at = _INTEGER_MATMULS[node.op_type]
            if uint8_activation(node):
                shifted(node, w_at, zp_at)
        elif node.op_type == "DequantizeLinear" and node.output[0] in weight_consumers:
            shifted(node, 0, 2)
    return model


def ort_session(model, optimize: bool = True):
    """An onnxruntime CPU session of ``model`` (a ModelProto or a path) after
    :func:`unsaturated_weights`; ``optimize=False`` switches graph optimisations off."""
    import onnx
    import onnxruntime as ort

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = unsaturated_weights(model).SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _ort_session(model_path, optimize: bool = True):
    key = _key(model_path) + (optimize,)
    with _lock:
        sess = _ort_sessions.get(key)
        if sess is None:
            sess = ort_session(key[0], optimize)
            _ort_sessions[key] = sess
    return sess


def _run_ort(model_path, x: np.ndarray, optimize: bool = True) -> np.ndarray:
    sess = _ort_session(model_path, optimize)
    name = sess.get_inputs()[0].name
    out = sess.run([sess.get_outputs()[0].name], {name: x})[0]
    return np.asarray(out)


# onnx 1.23 stamps every new ModelProto with IR version 14, which onnxruntime 1.31
# refuses (it reads IR <= 13).  qonnx executes each standard ONNX node by wrapping it
# in a one-node model made with ``qonnx.util.basic.qonnx_make_model`` and running it in
# onnxruntime, so every such model must be re-stamped.  This changes no semantics: it
# only lowers the ``ir_version`` field of the throw-away single-node models.
_QONNX_IR_CAP = 10


def _patch_qonnx_ir_version() -> None:
    # import the modules that bind the name ``qonnx_make_model`` before patching them
    import importlib

    import qonnx.util.basic as qb

    importlib.import_module("qonnx.core.modelwrapper")
    importlib.import_module("qonnx.core.onnx_exec")

    original = getattr(qb, "_accelgen_original_make_model", None)
    if original is None:
        original = qb.qonnx_make_model

        def capped_make_model(graph_proto, **kwargs):
            model = original(graph_proto, **kwargs)
            model.ir_version = min(model.ir_version, _QONNX_IR_CAP)
            return model

        qb._accelgen_original_make_model = original
        qb._accelgen_capped_make_model = capped_make_model
    capped = qb._accelgen_capped_make_model
    for name, mod in list(sys.modules.items()):
        if name.startswith("qonnx.") and getattr(mod, "qonnx_make_model", None) is original:
            mod.qonnx_make_model = capped


def _qonnx_wrapper(model_path, shape: tuple[int, ...]):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    _patch_qonnx_ir_version()
    key = _key(model_path) + (tuple(shape),)
    with _lock:
        wrapper = _qonnx_wrappers.get(key)
        if wrapper is not None:
            _qonnx_wrappers.move_to_end(key)
            return wrapper
    wrapper = cleanup_model(ModelWrapper(key[0]), override_inpsize=tuple(shape))
    with _lock:
        _qonnx_wrappers[key] = wrapper
        while len(_qonnx_wrappers) > _QONNX_CACHE_SIZE:
            _qonnx_wrappers.popitem(last=False)
    return wrapper


def _run_qonnx(model_path, x: np.ndarray) -> np.ndarray:
    from qonnx.core.onnx_exec import execute_onnx

    wrapper = _qonnx_wrapper(model_path, x.shape)
    graph = wrapper.graph
    inits = {i.name for i in graph.initializer}
    in_name = next(i.name for i in graph.input if i.name not in inits)
    out_name = graph.output[0].name
    out = execute_onnx(wrapper, {in_name: x})[out_name]
    return np.asarray(out)


def run_reference(model_path, x: np.ndarray, *, ort_optimize: bool = True) -> np.ndarray:
    """Run ``model_path`` on the batch ``x`` (first axis = batch) with its reference
    executor and return the model's (first) output as a numpy array.

    ``ort_optimize=False`` (QDQ / QOperator only) disables onnxruntime's graph
    optimisations; the default is onnxruntime's default session options."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch, got shape {x.shape}")
    dialect = detect_dialect(model_path)
    if dialect == "qonnx":
        return _run_qonnx(model_path, x)
    if dialect in ("qdq", "qoperator"):
        return _run_ort(model_path, x, ort_optimize)
    raise ValueError(f"unknown dialect {dialect!r} for {model_path}")


def opset_of(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _float64_copy(model):
    """The model with every float32 tensor (initializers, Constant values, I/O types) in float64."""
    import onnx
    import onnx.version_converter
    from onnx import TensorProto, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    for node in model.graph.node:  # onnxruntime's contrib Q/DQ are the standard ops (opset 21 types)
        if node.domain == "com.microsoft" and node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            node.domain = ""
    if opset_of(model) < 21:  # the reference implementation has QuantizeLinear from opset 19 on
        model = onnx.version_converter.convert_version(model, 21)
    g = model.graph

    def widened(t):
        return numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name)

    for i, t in enumerate(g.initializer):
        if t.data_type == TensorProto.FLOAT:
            g.initializer[i].CopyFrom(widened(t))
    for node in g.node:
        for a in node.attribute:
            if a.name == "value" and a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(widened(a.t))
    for vi in [*g.input, *g.output, *g.value_info]:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.DOUBLE
    return model


def run_onnx_float64(model_path, x: np.ndarray) -> np.ndarray:
    """The model's ONNX operator semantics evaluated in float64 by ONNX's own reference
    implementation (``onnx.reference.ReferenceEvaluator``) on a float64 copy of the model.

    onnxruntime evaluates a QDQ model's float Conv / Gemm / Add in float32, whose rounding can
    move a value across a quantization tie; in float64 those errors are ~1e-16 and the
    quantization decisions are the exact ones. This explains (or not) every element on which
    the golden model and onnxruntime differ.
    """
    import onnx
    from onnx.reference import ReferenceEvaluator

    model = _float64_copy(onnx.load(str(model_path)))
    name = next(i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer})
    return np.asarray(ReferenceEvaluator(model).run(None, {name: np.asarray(x, dtype=np.float64)})[0])


def clear_caches() -> None:
    """Drop every cached session / wrapper (e.g. after regenerating fixtures)."""
    with _lock:
        _ort_sessions.clear()
        _qonnx_wrappers.clear()
        _manifests.clear()
