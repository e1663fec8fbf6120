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


def _ort_session(model_path, optimize: bool = True):
    import onnxruntime as ort

    key = _key(model_path) + (optimize,)
    with _lock:
        sess = _ort_sessions.get(key)
        if sess is None:
            options = None
            if not optimize:
                options = ort.SessionOptions()
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            sess = ort.InferenceSession(key[0], options, providers=["CPUExecutionProvider"])
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
