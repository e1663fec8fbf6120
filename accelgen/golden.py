"""The golden model: the bit-exact integer evaluation of a lowered graph.

This IS the definition of what the hardware computes, element for element. The
interpreter itself lives in the standalone runtime (:mod:`accelgen.runtime.interpreter`)
so that a board with only numpy can run the very same code from a build's driver
directory; here its failures become the compiler's errors.
"""

from __future__ import annotations

import numpy as np

from accelgen import ir
from accelgen.errors import InputError, InternalError
from accelgen.runtime import interpreter


def run(graph: ir.Graph, inputs: dict[str, np.ndarray] | np.ndarray, *, keep: bool = False) -> dict[str, np.ndarray]:
    """Evaluate ``graph`` on a batch. Returns the graph outputs (or every tensor if ``keep``).

    ``inputs`` maps each graph input name to an array whose first axis is the batch; a
    bare array is accepted for single-input graphs. Arrays use the model's own ONNX
    layout and dtype.
    """
    try:
        return interpreter.run(graph, inputs, keep=keep)
    except interpreter.InputValidationError as exc:
        raise InputError(str(exc)) from None
    except interpreter.OpFailure as exc:
        raise InternalError(f"golden failed: {exc}") from exc
