"""Packing 1..8-bit codes into AXI-Stream bus words, and back.

The layout (the same as the HLS input/output packers):

* each code takes ``bits`` bits (1..8 for activations; raw accumulators leaving the
  hardware are wider), two's complement when signed; a bipolar code (-1/+1) takes one
  bit (0 = -1, 1 = +1);
* a ``bus_bits``-wide word holds ``lanes = bus_bits // bits`` codes, code ``i`` of the word
  in bits ``[i*bits, (i+1)*bits)`` (little-endian lanes); unused high bits are zero;
* codes of one frame (one sample, in stream order) fill words in order; a frame starts
  on a new word, its last word is zero-padded.

Words are returned as unsigned integers of the bus width (uint8..uint64), or as
``bus_bits // 8`` little-endian bytes each for wider buses.

Part of the standalone runtime: numpy only, Python >= 3.8.
"""

from __future__ import annotations

import numpy as np

_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def lanes(bits: int, bus_bits: int) -> int:
    if not 1 <= bits <= 64:
        raise ValueError(f"codes of {bits} bits cannot be packed (1..64 supported)")
    if bus_bits % 8 or bus_bits < bits:
        raise ValueError(f"bus width {bus_bits} must be a multiple of 8 and hold at least one code")
    return bus_bits // bits


def words_per_frame(elements: int, bits: int, bus_bits: int) -> int:
    per = lanes(bits, bus_bits)
    return -(-elements // per)


def _to_field(codes: np.ndarray, bits: int, signed: bool, bipolar: bool) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64)
    if bipolar:
        if codes.size and not np.all(np.abs(codes) == 1):
            raise ValueError("bipolar codes must be -1 or +1")
        return (codes > 0).astype(np.uint64)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if codes.size and (codes.min() < lo or codes.max() > hi):
        raise ValueError(f"codes outside [{lo}, {hi}] cannot be packed in {bits} bits")
    return (codes.astype(np.uint64) & np.uint64((1 << bits) - 1)) if bits < 64 else codes.astype(np.uint64)


def _from_field(fields: np.ndarray, bits: int, signed: bool, bipolar: bool) -> np.ndarray:
    if bipolar:
        return np.where(fields.astype(np.int64) & 1, 1, -1).astype(np.int64)
    if signed and bits < 64:
        f = fields.astype(np.uint64)
        sign = np.uint64(1 << (bits - 1))
        return (f ^ sign).astype(np.int64) - np.int64(1 << (bits - 1))
    return fields.astype(np.int64)


def pack(codes: np.ndarray, bits: int, signed: bool, bus_bits: int, bipolar: bool = False) -> np.ndarray:
    """(frames, elements) codes -> (frames, words) bus words (see the module docstring)."""
    codes = np.asarray(codes)
    frames = codes.reshape(codes.shape[0], -1)
    per = lanes(bits, bus_bits)
    n_words = words_per_frame(frames.shape[1], bits, bus_bits)
    fields = _to_field(frames, bits, signed, bipolar)
    padded = np.zeros((frames.shape[0], n_words * per), dtype=np.uint64)
    padded[:, : frames.shape[1]] = fields
    lanes_view = padded.reshape(frames.shape[0], n_words, per)
    if bus_bits <= 64:
        shifts = (np.arange(per, dtype=np.uint64) * np.uint64(bits))[None, None, :]
        words = np.bitwise_or.reduce(lanes_view << shifts, axis=2)
        return words.astype(_UINT.get(bus_bits, np.uint64)) if bus_bits in _UINT else words
    return _pack_wide(lanes_view, bits, bus_bits)


def unpack(
    words: np.ndarray, elements: int, bits: int, signed: bool, bus_bits: int, bipolar: bool = False
) -> np.ndarray:
    """(frames, words) bus words -> (frames, elements) int64 codes."""
    per = lanes(bits, bus_bits)
    if bus_bits <= 64:
        w = np.asarray(words).astype(np.uint64)
        shifts = (np.arange(per, dtype=np.uint64) * np.uint64(bits))[None, None, :]
        fields = (w[:, :, None] >> shifts) & np.uint64((1 << bits) - 1 if bits < 64 else (1 << 64) - 1)
    else:
        fields = _unpack_wide(np.asarray(words), bits, bus_bits)
    fields = fields.reshape(fields.shape[0], -1)[:, :elements]
    return _from_field(fields, bits, signed, bipolar)


def _pack_wide(lanes_view: np.ndarray, bits: int, bus_bits: int) -> np.ndarray:
    """Buses wider than 64 bits: each word as bus_bits // 8 little-endian bytes."""
    frames, n_words, per = lanes_view.shape
    out = np.zeros((frames, n_words, bus_bits // 8), dtype=np.uint8)
    for lane in range(per):
        bit0 = lane * bits
        v = lanes_view[:, :, lane]
        for b in range(bits):
            byte, offset = divmod(bit0 + b, 8)
            out[:, :, byte] |= (((v >> np.uint64(b)) & np.uint64(1)) << np.uint64(offset)).astype(np.uint8)
    return out


def _unpack_wide(words: np.ndarray, bits: int, bus_bits: int) -> np.ndarray:
    frames, n_words, _ = words.shape
    per = lanes(bits, bus_bits)
    fields = np.zeros((frames, n_words, per), dtype=np.uint64)
    for lane in range(per):
        for b in range(bits):
            byte, offset = divmod(lane * bits + b, 8)
            bit = (words[:, :, byte].astype(np.uint64) >> np.uint64(offset)) & np.uint64(1)
            fields[:, :, lane] |= bit << np.uint64(b)
    return fields
