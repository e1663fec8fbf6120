"""ONNX (QONNX, QDQ or QOperator) -> accelgen IR.

The three dialects say the same thing in different words. Every ONNX tensor is mapped to
a :class:`Value`: an IR tensor plus the *view* the ONNX graph has of it. A QDQ model's
``QuantizeLinear`` output is the ``int`` view of a codes tensor and the following
``DequantizeLinear`` output is its ``real`` view; a QONNX ``Quant`` output is directly
the real view; a QOperator ``QLinearConv`` reads and writes int views. Float ops between
integer layers are kept as IR float ops; the passes fuse them into requantizers.

Each handler is one method named after the ONNX op type it reads.
"""

from __future__ import annotations

import onnx

from accelgen import ir
from accelgen.frontend.base import ImporterBase
from accelgen.frontend.elementwise import ElementwiseHandlers
from accelgen.frontend.layers import LayerHandlers
from accelgen.frontend.layout import LayoutHandlers
from accelgen.frontend.qoperator import QOperatorHandlers
from accelgen.frontend.quantizers import QuantizerHandlers
from accelgen.frontend.resize import resize
from accelgen.frontend.tensor_train import TensorTrainHandlers


class _Importer(
    TensorTrainHandlers,
    QuantizerHandlers,
    LayoutHandlers,
    ElementwiseHandlers,
    LayerHandlers,
    QOperatorHandlers,
    ImporterBase,
):
    """The handlers of every dialect over one shared state (see ImporterBase)."""

    op_Resize = resize


def import_model(model: onnx.ModelProto, name: str = "model") -> ir.Graph:
    """Translate a quantized ONNX model into an IR graph (before any pass)."""
    return _Importer(model, name).run()
