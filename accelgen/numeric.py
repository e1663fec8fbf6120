"""Rounding and integer ranges shared by the front end, the passes and the golden model."""

from __future__ import annotations

import numpy as np

from accelgen.errors import InputError

ROUNDING_MODES = ("HALF_EVEN", "HALF_UP", "HALF_DOWN", "FLOOR", "CEIL", "UP", "DOWN", "BIPOLAR")


def round_mode(x: np.ndarray, mode: str) -> np.ndarray:
    """Round with one of the QONNX rounding modes (HALF_EVEN is ONNX QuantizeLinear's).

    ``BIPOLAR`` maps x >= 0 to +1 and x < 0 to -1 (BipolarQuant).
    """
    if mode == "HALF_EVEN":
        return np.round(x)
    if mode == "FLOOR":
        return np.floor(x)
    if mode == "CEIL":
        return np.ceil(x)
    if mode == "UP":
        return np.sign(x) * np.ceil(np.abs(x))
    if mode == "DOWN":
        return np.trunc(x)
    if mode == "HALF_UP":
        return np.sign(x) * np.floor(np.abs(x) + 0.5)
    if mode == "HALF_DOWN":
        return np.sign(x) * np.ceil(np.abs(x) - 0.5)
    if mode == "BIPOLAR":
        return np.where(x >= 0, 1.0, -1.0)
    raise InputError(f"unsupported rounding mode {mode}")


def to_codes(
    scaled: np.ndarray, zero_point, qmin: int, qmax: int, mode: str, zero_point_after_rounding: bool = False
) -> np.ndarray:
    """Integer codes of values already divided by their scale, clipped to [qmin, qmax].

    QONNX Quant rounds ``scaled + zero_point``; ONNX QuantizeLinear (and the QLinear* ops)
    round ``scaled`` and add the zero point after (``zero_point_after_rounding``). With an
    odd zero point the two differ on exact ties.
    """
    if zero_point_after_rounding:
        codes = round_mode(np.clip(scaled, qmin - zero_point, qmax - zero_point), mode) + zero_point
    else:
        codes = round_mode(np.clip(scaled + zero_point, qmin, qmax), mode)
    return np.clip(codes, qmin, qmax)
