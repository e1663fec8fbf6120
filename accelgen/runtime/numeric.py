"""Rounding, code ranges and requantizers: the integer arithmetic shared by every backend.

Part of the standalone runtime: numpy only, Python >= 3.8, no import from the compiler.
"""

from __future__ import annotations

import numpy as np

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
    raise ValueError(f"unsupported rounding mode {mode}")


def to_codes(scaled, zero_point, qmin: int, qmax: int, mode: str, zero_point_after_rounding: bool = False):
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


def qrange(q) -> tuple:
    """(qmin, qmax) of a quantization type (an IR QType or its JSON form)."""
    if q.bipolar:
        return -1, 1
    narrow = 1 if q.narrow else 0
    if q.signed:
        return -(1 << (q.bits - 1)) + narrow, (1 << (q.bits - 1)) - 1
    return 0, (1 << q.bits) - 1 - narrow


def _per_channel(v: np.ndarray, n: int) -> np.ndarray:
    v = np.asarray(v)
    return np.broadcast_to(v, (n,)) if v.size == 1 else v


def apply_thresholds(acc, thresholds, base, direction, step: int = 1, channel_axis: int = -1) -> np.ndarray:
    """base + step * count(direction * acc >= thresholds[c]) per channel c."""
    acc = np.moveaxis(np.asarray(acc, dtype=np.int64), channel_axis, -1)
    out = np.empty(acc.shape, dtype=np.int64)
    channels = acc.shape[-1]
    T = np.asarray(thresholds, dtype=np.int64)
    d = _per_channel(direction, channels)
    b = _per_channel(base, channels)
    for c in range(channels):
        tc = T[c] if T.shape[0] > 1 else T[0]
        out[..., c] = b[c] + step * np.searchsorted(tc, d[c] * acc[..., c], side="right")
    return np.moveaxis(out, -1, channel_axis)


def apply_multiply_shift(acc, multiplier, offset, shift: int, lo, hi, direction, channel_axis: int = -1):
    """clip((direction * acc * multiplier + offset) >> shift, lo, hi) per channel."""
    acc = np.moveaxis(np.asarray(acc, dtype=np.int64), channel_axis, -1)
    n = acc.shape[-1]
    y = (_per_channel(direction, n) * acc * _per_channel(multiplier, n) + _per_channel(offset, n)) >> int(shift)
    return np.moveaxis(np.clip(y, _per_channel(lo, n), _per_channel(hi, n)), -1, channel_axis)


def apply_requant(acc, rq, channel_axis: int = -1) -> np.ndarray:
    """Apply an integer requantizer (IR object or its JSON form, told apart by ``kind``)."""
    if rq.kind == "thresholds":
        return apply_thresholds(acc, rq.thresholds, rq.base, rq.direction, rq.step, channel_axis)
    if rq.kind == "multiply_shift":
        return apply_multiply_shift(acc, rq.multiplier, rq.offset, rq.shift, rq.lo, rq.hi, rq.direction, channel_axis)
    raise ValueError(f"requantizer '{rq.kind}' is not integer")
