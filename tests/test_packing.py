"""Bus-word packing of 1..8-bit codes: round trips and words computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from accelgen.runtime.packing import pack, unpack, words_per_frame


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("bus_bits", [8, 32, 64, 128])
def test_round_trip(bits, signed, bus_bits):
    rng = np.random.default_rng(bits * 100 + bus_bits + signed)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    codes = rng.integers(lo, hi + 1, (5, 37))
    words = pack(codes, bits, signed, bus_bits)
    assert words.shape[:2] == (5, words_per_frame(37, bits, bus_bits))
    assert np.array_equal(unpack(words, 37, bits, signed, bus_bits), codes)


@pytest.mark.parametrize("bits", [16, 24, 32])
def test_wide_accumulators_round_trip(bits):
    rng = np.random.default_rng(bits)
    codes = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (3, 11))
    words = pack(codes, bits, True, 64)
    assert np.array_equal(unpack(words, 11, bits, True, 64), codes)
    if bits == 32:  # two lanes per 64-bit word: the little-endian int32 view of the words
        assert np.array_equal(words.view(np.int32).reshape(3, -1)[:, :11], codes)


def test_bipolar_round_trip():
    codes = np.array([[1, -1, -1, 1, 1, 1, -1, 1, -1]])
    words = pack(codes, 1, True, 8, bipolar=True)
    # lanes little-endian: bits 0..7 = 1,0,0,1,1,1,0,1 -> 0b10111001; then lane 0 of word 2 = 0
    assert words.tolist() == [[0b10111001, 0b0]]
    assert np.array_equal(unpack(words, 9, 1, True, 8, bipolar=True), codes)


def test_words_by_hand():
    # signed 4-bit codes -1, 2, -8, 7 in a 16-bit word: 0xF | 0x2<<4 | 0x8<<8 | 0x7<<12
    assert pack(np.array([[-1, 2, -8, 7]]), 4, True, 16).tolist() == [[0x782F]]
    # 3-bit codes: 5 per 16-bit word (top bit unused); the sixth starts the next word
    words = pack(np.array([[1, 2, 3, 4, 5, 6]]), 3, False, 16)
    assert words.tolist() == [[1 | 2 << 3 | 3 << 6 | 4 << 9 | 5 << 12, 6]]


def test_out_of_range_codes_are_refused():
    with pytest.raises(ValueError, match="outside"):
        pack(np.array([[8]]), 4, True, 8)
    with pytest.raises(ValueError, match="bipolar"):
        pack(np.array([[0]]), 1, True, 8, bipolar=True)
