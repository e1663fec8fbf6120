"""ONNX (QONNX, QDQ or QOperator) -> accelgen IR.

The three dialects say the same thing in different words. Every ONNX tensor is mapped to
a :class:`Value`: an IR tensor plus the *view* the ONNX graph has of it. A QDQ model's
``QuantizeLinear`` output is the ``int`` view of a codes tensor and the following
``DequantizeLinear`` output is its ``real`` view; a QONNX ``Quant`` output is directly
the real view; a QOperator ``QLinearConv`` reads and writes int views. Float ops between
integer layers are kept as IR float ops; the passes fuse them into requantizers.

Each ONNX op type has one handler function, registered in the table of
:mod:`accelgen.frontend.registry` by the modules imported below; the driver
(:class:`ImportContext`) looks every node's handler up there.
"""

from __future__ import annotations

import onnx

from accelgen import ir

# the modules whose handlers make up the table (importing one registers its handlers)
from accelgen.frontend import (  # noqa: F401
    elementwise,
    layers,
    layout,
    qoperator,
    quantizers,
    tensor_train,
)
from accelgen.frontend.base import ImportContext


def import_model(model: onnx.ModelProto, name: str = "model") -> ir.Graph:
    """Translate a quantized ONNX model into an IR graph (before any pass)."""
    return ImportContext(model, name).run()
