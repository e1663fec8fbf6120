"""C++ integer types as data: the generator decides widths, the templates spell them.

Every width here is proved from value ranges: an :class:`IntType` is the narrowest
``ap_int``/``ap_uint`` holding a closed integer interval, a :class:`CodeType` says how a
stream element's raw bits encode an integer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelgen import ir
from accelgen.errors import InputError


@dataclass(frozen=True)
class IntType:
    """``ap_int<bits>`` (signed) or ``ap_uint<bits>``."""

    bits: int
    signed: bool

    def holds(self, lo: int, hi: int) -> bool:
        if self.signed:
            return -(1 << (self.bits - 1)) <= lo and hi <= (1 << (self.bits - 1)) - 1
        return 0 <= lo and hi <= (1 << self.bits) - 1

    def as_dict(self) -> dict:
        return {"bits": self.bits, "signed": self.signed}


def int_type(lo: int, hi: int) -> IntType:
    """The narrowest type holding every integer of [lo, hi]: unsigned when lo >= 0."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    return IntType(ir.range_bits(lo, hi), lo < 0)


def signed_type(lo: int, hi: int) -> IntType:
    """The narrowest signed type holding [lo, hi]."""
    return IntType(ir.signed_bits_for(int(lo), int(hi)), True)


@dataclass(frozen=True)
class CodeType:
    """How a stream element's raw bits encode an integer (``accelgen::Code``)."""

    bits: int
    signed: bool
    bipolar: bool = False

    @property
    def lo(self) -> int:
        if self.bipolar:
            return -1
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        if self.bipolar:
            return 1
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def raw(self, values: np.ndarray) -> np.ndarray:
        """Raw bit patterns (uint64) of integer values of this code."""
        v = np.asarray(values, dtype=np.int64)
        if self.bipolar:
            return (v > 0).astype(np.uint64)
        return (v & np.int64((1 << self.bits) - 1) if self.bits < 64 else v).astype(np.uint64)

    def as_dict(self) -> dict:
        return {"bits": self.bits, "signed": self.signed, "bipolar": self.bipolar}


def code_of(qtype: ir.QType) -> CodeType:
    """The stream encoding of a codes tensor."""
    if qtype.bipolar:
        return CodeType(1, True, True)
    return CodeType(qtype.bits, qtype.signed)


def zero_point(t: ir.Tensor, where: str) -> int:
    """The single zero point of an activation tensor that an integer layer centres."""
    q = t.qtype
    if q.bipolar:
        return 0
    zps = set(int(z) for z in q.zero_point)
    if len(zps) != 1:
        raise InputError(
            f"{where}: its input '{t.name}' has per-channel zero points; the hardware centres activations "
            "with one zero point per tensor (quantize this activation per tensor)"
        )
    zp = zps.pop()
    if not q.qmin <= zp <= q.qmax:
        raise InputError(f"{where}: zero point {zp} of '{t.name}' is outside its code range [{q.qmin}, {q.qmax}]")
    return zp
