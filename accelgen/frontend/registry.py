"""The importer's handler table: ONNX op type -> the function that imports such a node.

A handler is ``handler_fn(ctx, node)``: ``ctx`` is the :class:`~accelgen.frontend.base.ImportContext`
(the tensors, constants and ops imported so far), ``node`` the ONNX node. To support a new op
type, write the handler in its own module, register it with :func:`handler` and add the
module to the list the importer imports (accelgen/frontend/importer.py)::

    @handler("Resize")
    def import_resize(ctx: ImportContext, node: onnx.NodeProto) -> None:
        ...

Handlers answer for the standard ONNX domains ("", "ai.onnx", "com.microsoft"); ``qonnx=True``
also registers the op type for the QONNX domains (Quant, BipolarQuant, Trunc).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import onnx

from accelgen.frontend.load import QONNX_DOMAINS

if TYPE_CHECKING:
    from accelgen.frontend.base import ImportContext

Handler = Callable[["ImportContext", onnx.NodeProto], None]

#: the standard domains every handler answers for
STANDARD_DOMAINS = ("", "ai.onnx", "com.microsoft")

#: op type -> handler (standard domains)
HANDLERS: dict[str, Handler] = {}
#: op type -> handler (QONNX domains)
QONNX_HANDLERS: dict[str, Handler] = {}


def handler(*op_types: str, qonnx: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated function as the importer of ``op_types``."""

    def register(fn: Handler) -> Handler:
        for op_type in op_types:
            tables = (HANDLERS, QONNX_HANDLERS) if qonnx else (HANDLERS,)
            for table in tables:
                if op_type in table:
                    raise ValueError(f"two importers for ONNX op {op_type}: {table[op_type].__name__}, {fn.__name__}")
                table[op_type] = fn
        return fn

    return register


def handler_for(node: onnx.NodeProto) -> Handler | None:
    """The handler of ``node`` (by domain and op type), None if accelgen cannot import it."""
    if node.domain in QONNX_DOMAINS:
        return QONNX_HANDLERS.get(node.op_type)
    if node.domain not in STANDARD_DOMAINS:
        return None
    return HANDLERS.get(node.op_type)
