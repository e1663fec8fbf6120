"""ONNX (QONNX, QDQ or QOperator) -> accelgen IR.

The three dialects say the same thing in different words. Every ONNX tensor is mapped to
a :class:`Value`: an IR tensor plus the *view* the ONNX graph has of it. A QDQ model's
``QuantizeLinear`` output is the ``int`` view of a codes tensor and the following
``DequantizeLinear`` output is its ``real`` view; a QONNX ``Quant`` output is directly
the real view; a QOperator ``QLinearConv`` reads and writes int views. Float ops between
integer layers are kept as IR float ops; the passes fuse them into requantizers.

Each ONNX op type has one handler function, registered in the table of
:mod:`accelgen.frontend.registry` by the package's modules, all imported below; the driver
(:class:`ImportContext`) looks every node's handler up there.
"""

from __future__ import annotations

import importlib
import pkgutil

import onnx

from accelgen import frontend, ir
from accelgen.frontend.base import ImportContext


def _load_handlers() -> None:
    """Import every module of the front-end package: a module's ``@handler`` functions
    register themselves in the table, so an op type is added by adding its module."""
    for info in sorted(pkgutil.iter_modules(frontend.__path__), key=lambda m: m.name):
        importlib.import_module(f"{frontend.__name__}.{info.name}")


_load_handlers()


def import_model(model: onnx.ModelProto, name: str = "model") -> ir.Graph:
    """Translate a quantized ONNX model into an IR graph (before any pass)."""
    return ImportContext(model, name).run()
