"""On-chip parameters laid out for the kernels: packed weights and requantizer tables.

Layouts follow the kernels (hls/accelgen/mvau.h, requant.h): processing element ``pe``
handles channels ``nf * PE + pe``; a weight word holds SIMD weights, lane ``i`` in bits
``[i*bits, (i+1)*bits)``. Requantizer parameters are stored ``[pe][nf]`` (``[pe][0]``
when one set is shared by every channel), or, for requantizers shared in time by a unit's
lanes (mvau.h SharedRequant), ``[r][nf * steps + s]`` by their schedule. The integer types
are proved here from the accumulator range, so the hardware's arithmetic never overflows.
"""

from __future__ import annotations

import numpy as np

from accelgen import ir
from accelgen.codegen.types import CodeType, IntType, signed_type
from accelgen.errors import InternalError
from accelgen.kernels.base import Requantizers
from accelgen.plan import DEFAULT_PRODUCT


def chunk_lanes(simd: int, bits: int) -> int:
    """Weights per stored chunk: the largest divisor of SIMD whose chunk is <= 64 bits
    (as ``accelgen::chunk_lanes`` in hls/accelgen/mvau.h)."""
    return max(d for d in range(1, simd + 1) if simd % d == 0 and d * bits <= 64)


def pack_words(matrix: np.ndarray, code: CodeType, simd: int, pe: int) -> list:
    """Hex digits of the weight chunks, [pe][tile][chunk] with tile = nf * SF + sf.

    ``matrix`` is (rows, cols): row = output channel, col = the element of the input
    vector; row ``nf * pe + p`` goes to processing element ``p``; a word holds SIMD
    consecutive columns, lane ``i`` in bits ``[i*bits, (i+1)*bits)``, stored as chunks
    of :func:`chunk_lanes` lanes.
    """
    rows, cols = matrix.shape
    if rows % pe or cols % simd:
        raise InternalError(f"weights {matrix.shape} do not fold by pe={pe}, simd={simd}")
    lanes = chunk_lanes(simd, code.bits)
    raw = code.raw(matrix).reshape(rows // pe, pe, cols // simd, simd).transpose(1, 0, 2, 3)
    raw = raw.reshape(pe, (rows // pe) * (cols // simd), simd // lanes, lanes)
    shifts = np.arange(lanes, dtype=np.uint64) * np.uint64(code.bits)
    chunks = np.bitwise_or.reduce(raw << shifts, axis=-1)
    return [[[format(int(c), "x") for c in word] for word in row] for row in chunks]


def _by_pe(values: np.ndarray, channels: int, pe: int, shared: bool) -> list:
    """[pe][nf] nesting of per-channel values (first axis: channel or 1)."""
    values = np.asarray(values)
    if shared:
        return [[values[0].tolist()] for _ in range(pe)]
    if values.shape[0] == 1:
        values = np.repeat(values, channels, axis=0)
    nf = channels // pe
    return [[values[f * pe + p].tolist() for f in range(nf)] for p in range(pe)]


def _by_schedule(values: np.ndarray, channels: int, pe: int, shared: bool, rq: Requantizers) -> list:
    """[r][nf * steps + s] nesting of per-channel values for ``rq.units`` requantizers shared
    in time: requantizer r at step s of channel fold nf takes lane l = s * units + r, channel
    ``nf * pe + l % pe`` (a word's lanes are pixel-major: lane j * pe + p is channel p); a
    padding lane past ``rq.lanes`` repeats the last lane's values (its result is dropped)."""
    values = np.asarray(values)
    if shared:
        return [[values[0].tolist()] for _ in range(rq.units)]
    if values.shape[0] == 1:
        values = np.repeat(values, channels, axis=0)

    def channel(f: int, s: int, r: int) -> int:
        return f * pe + min(s * rq.units + r, rq.lanes - 1) % pe

    folds = channels // pe
    return [[values[channel(f, s, r)].tolist() for f in range(folds) for s in range(rq.steps)] for r in range(rq.units)]


def _shared(channels: int, *arrays: np.ndarray) -> bool:
    sizes = {np.asarray(a).shape[0] for a in arrays}
    if sizes - {1, channels}:
        raise InternalError(f"requantizer arrays of {sorted(sizes)} rows for {channels} channels")
    return sizes == {1}


def requant_param(
    rq: ir.Thresholds | ir.MultiplyShift | None, *, channels: int, pe: int, acc_lo: int, acc_hi: int,
    out_code: CodeType, units: Requantizers | None = None, product: str = DEFAULT_PRODUCT,
) -> dict:  # fmt: skip
    """The requantizer's kind, types and tables (see hls/accelgen/requant.h); ``units``: a
    matrix or vector unit's requantizers, whose tables are laid out by their schedule when
    they are shared in time; ``product``: where a multiply-shift's product is built ("dsp"
    or "fabric", the fold's ``requant``: requant.h's DspProduct or FabricProduct)."""
    if rq is None:
        return {"kind": "pass_through"}
    steps = units.steps if units is not None and units.shared else 1

    def layout(values: np.ndarray, shared: bool) -> list:
        if steps > 1:
            return _by_schedule(values, channels, pe, shared, units)
        return _by_pe(values, channels, pe, shared)

    if isinstance(rq, ir.Thresholds):
        T = np.asarray(rq.thresholds, dtype=np.int64)
        negate = (np.asarray(rq.direction) < 0).astype(np.int64)
        shared = _shared(channels, T, rq.base, rq.direction)
        lo = min(int(T.min()), acc_lo, -acc_hi if negate.any() else acc_lo)
        hi = max(int(T.max()), acc_hi, -acc_lo if negate.any() else acc_hi)
        return {
            "kind": "thresholds",
            "nf_store": 1 if shared else channels // pe * steps,
            "levels": int(T.shape[1]),
            "step": int(rq.step),
            "th": signed_type(lo, hi).as_dict(),
            "threshold": layout(T, shared),
            "base": layout(np.asarray(rq.base).reshape(-1), shared),
            "negate": layout(negate.reshape(-1), shared),
        }
    if isinstance(rq, ir.MultiplyShift):
        if out_code.bipolar:
            raise InternalError("a multiply-shift requantizer with a bipolar output")
        m = np.asarray(rq.multiplier, dtype=np.int64)
        b = np.asarray(rq.offset, dtype=np.int64)
        negate = (np.asarray(rq.direction) < 0).astype(np.int64)
        shared = _shared(channels, m, b, rq.lo, rq.hi, rq.direction)
        a = max(abs(acc_lo), abs(acc_hi))
        m_max = int(m.max())
        prod_lo = min(-a * m_max + int(b.min()), -a)
        prod_hi = max(a * m_max + int(b.max()), a)
        prod = signed_type(prod_lo, prod_hi)
        if rq.shift >= prod.bits:
            prod = IntType(rq.shift + 1, True)
        return {
            "kind": "multiply_shift",
            "product": product,
            "nf_store": 1 if shared else channels // pe * steps,
            "shift": int(rq.shift),
            "mul": IntType(max(1, m_max.bit_length()), False).as_dict(),
            "off": signed_type(int(b.min()), int(b.max())).as_dict(),
            "prod": prod.as_dict(),
            "multiplier": layout(m.reshape(-1), shared),
            "offset": layout(b.reshape(-1), shared),
            "lo": layout(np.asarray(rq.lo).reshape(-1), shared),
            "hi": layout(np.asarray(rq.hi).reshape(-1), shared),
            "negate": layout(negate.reshape(-1), shared),
        }
    raise InternalError(f"requantizer {type(rq).__name__} is not integer")


def requant_partitions(kind: str) -> list[tuple[str, int]]:
    """Members of a requantizer to partition completely, with the dimension (PE, levels)."""
    if kind == "thresholds":
        return [("threshold", 1), ("threshold", 3), ("base", 1), ("negate", 1)]
    if kind == "multiply_shift":
        return [("multiplier", 1), ("offset", 1), ("lo", 1), ("hi", 1), ("negate", 1)]
    return []
