"""Reading an ONNX file: every way it can be wrong gets a message that says what to do."""

from __future__ import annotations

from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from accelgen.errors import InputError

QONNX_DOMAINS = ("qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general")
QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
QOPERATOR_OPS = {
    "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QLinearAdd", "QGemm",
    "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat", "QLinearSigmoid",
    "QLinearLeakyRelu", "QLinearMul",
}  # fmt: skip
QONNX_OPS = {"Quant", "BipolarQuant", "Trunc", "IntQuant"}

SUPPORTED_EXPORTERS = (
    "Brevitas export_qonnx (QONNX), onnxruntime quantize_static (QDQ or QOperator), "
    "or torch.onnx.export of a model with fake-quantization (QDQ)"
)


def load_model(path: str | Path) -> onnx.ModelProto:
    """Read and parse an ONNX file, or raise InputError saying why it cannot be used."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: is not a file (expected an .onnx model file)")
    data = path.read_bytes()
    if not data:
        raise InputError(f"{path}: the file is empty, not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InputError(
            f"{path}: not a valid ONNX model (the protobuf does not parse: {exc}); "
            "is the file truncated or not an .onnx file?"
        ) from None
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise InputError(f"{path}: parses as protobuf but holds no ONNX graph with nodes")
    for fn in model.functions:
        raise InputError(f"{path}: model-local functions ('{fn.name}') are not supported")
    from accelgen.frontend.check import check_model  # check.py reads this module's op tables

    check_model(model, path.parent, str(path))
    return model


def detect_dialect(model: onnx.ModelProto) -> str:
    """'qonnx', 'qoperator' or 'qdq'; InputError for a float model with no quantization."""
    ops = {(n.domain, n.op_type) for n in model.graph.node}
    types = {op for _, op in ops}
    if any(d in QONNX_DOMAINS for d, _ in ops) or types & QONNX_OPS:
        return "qonnx"
    if types & QOPERATOR_OPS:
        return "qoperator"
    if types & QDQ_OPS:
        return "qdq"
    name = model.graph.name or "the model"
    raise InputError(
        f"{name} has no quantization (no Quant, QuantizeLinear/DequantizeLinear or QLinear* "
        f"nodes): accelgen builds integer hardware from quantized models. Quantize it with "
        f"{SUPPORTED_EXPORTERS}."
    )


def opset_version(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 13
