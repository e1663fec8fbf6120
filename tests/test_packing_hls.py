"""The runtime's bus packer (Python) against the testbench's (C++ hls/accelgen/host.h).

Round trips alone cannot catch a layout bug made the same way in pack and unpack (a byte
order, a lane order). Here the same codes are packed by both sides and the beats compared
byte for byte, and each side unpacks what the other packed: every code width 1..8, signed,
unsigned and bipolar, buses of 8 to 256 bits (wider than 64 bits is where limbs and byte
order matter), frames that end mid-word, and the extreme codes of each range.
"""

from __future__ import annotations

import itertools
import subprocess

import numpy as np
import pytest

from accelgen.csim import ap_types_dir, compiler
from accelgen.resources import data_dir
from accelgen.runtime.packing import pack, unpack, words_per_frame

pytestmark = pytest.mark.csim

BUSES = (8, 16, 32, 64, 128, 256)
CODES = [(b, s, False) for b in range(1, 9) for s in (False, True)] + [(1, True, True)]
CASES = [(b, s, bp, bus) for (b, s, bp), bus in itertools.product(CODES, BUSES) if bus >= b]
FRAMES, ELEMS = 3, 37  # 37 is prime: frames end mid-word for every lane count but 1 and 37

PROGRAM = r"""
#include <cstdio>
#include <vector>
#include "accelgen/host.h"
using namespace accelgen;

// mode p: read FRAMES*ELEMS int64 codes, write the packed beats (BUS/8 bytes each, LE)
// mode u: read beats, write the unpacked int64 codes and a status byte
template <unsigned BITS, bool SIGNED, bool BIPOLAR, unsigned BUS>
int run(char mode, FILE* in, FILE* out) {
    typedef Code<BITS, SIGNED, BIPOLAR> C;
    const unsigned lanes = BUS / BITS, words = (ELEMS + lanes - 1) / lanes;
    hls::stream<typename AxisBeat<BUS>::type> s;
    if (mode == 'p') {
        std::vector<int64_t> v(FRAMES * ELEMS);
        if (fread(v.data(), 8, v.size(), in) != v.size()) return 3;
        pack_samples<C, BUS>(v.data(), FRAMES, ELEMS, s);
        for (unsigned i = 0; i < FRAMES * words; i++) {
            unsigned long long limb[BUS / 64 + 2] = {0};
            to_limbs<BUS>(s.read().data, limb);
            for (unsigned byte = 0; byte < BUS / 8; byte++) fputc(int((limb[byte / 8] >> (8 * (byte % 8))) & 0xFF), out);
        }
        return 0;
    }
    for (unsigned i = 0; i < FRAMES * words; i++) {
        unsigned long long limb[BUS / 64 + 2] = {0};
        for (unsigned byte = 0; byte < BUS / 8; byte++) limb[byte / 8] |= (unsigned long long)fgetc(in) << (8 * (byte % 8));
        typename AxisBeat<BUS>::type beat;
        beat.data = from_limbs<BUS>(limb);
        beat.keep = -1; beat.strb = -1;
        beat.last = i == FRAMES * words - 1 ? 1 : 0;
        s.write(beat);
    }
    std::vector<int64_t> v(FRAMES * ELEMS);
    const bool ok = unpack_samples<C, BUS>(s, FRAMES, ELEMS, v.data());
    fwrite(v.data(), 8, v.size(), out);
    fputc(ok ? 1 : 0, out);
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    const int which = atoi(argv[1]);
    const char mode = argv[2][0];
    switch (which) {
{cases}
    }
    return 2;
}
"""


@pytest.fixture(scope="module")
def packer(tmp_path_factory):
    cases = "\n".join(
        f"    case {i}: return run<{b}, {'true' if s else 'false'}, {'true' if bp else 'false'}, {bus}>(mode, stdin, stdout);"
        for i, (b, s, bp, bus) in enumerate(CASES)
    )
    src = PROGRAM.replace("{cases}", cases).replace("FRAMES", str(FRAMES)).replace("ELEMS", str(ELEMS))
    root = tmp_path_factory.mktemp("packer")
    (root / "packer.cpp").write_text(src)
    exe = root / "packer"
    include = [f"-I{data_dir('hls')}", f"-I{ap_types_dir()}"]
    subprocess.run([compiler(), "-std=c++14", "-O1", *include, "packer.cpp", "-o", str(exe)], cwd=root, check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    return exe


def _codes(bits: int, signed: bool, bipolar: bool, seed: int) -> np.ndarray:
    if bipolar:
        lo, hi = -1, 1
    else:
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    rng = np.random.default_rng(seed)
    codes = rng.integers(lo, hi + 1, (FRAMES, ELEMS))
    codes[0, :4] = [lo, hi, lo, hi]  # the extremes of the range, in neighbouring lanes
    return np.where(codes == 0, 1, codes) if bipolar else codes


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{'bip' if bp else ('s' if s else 'u')}{b}_bus{bus}"
                                                         for b, s, bp, bus in CASES])  # fmt: skip
def test_python_and_cpp_pack_identically(packer, index):
    bits, signed, bipolar, bus = CASES[index]
    codes = _codes(bits, signed, bipolar, index)
    words = pack(codes, bits, signed, bus, bipolar=bipolar)
    py_bytes = np.asarray(words).astype(f"<u{bus // 8}").tobytes() if bus <= 64 else np.asarray(words).tobytes()
    cpp = subprocess.run([str(packer), str(index), "p"], input=codes.astype("<i8").tobytes(), capture_output=True,
                         check=True, timeout=60).stdout  # fmt: skip
    assert len(cpp) == FRAMES * words_per_frame(ELEMS, bits, bus) * bus // 8
    assert cpp == py_bytes, "the two packers lay the codes out differently"
    back = subprocess.run([str(packer), str(index), "u"], input=py_bytes, capture_output=True, check=True,
                          timeout=60).stdout  # fmt: skip
    assert back[-1] == 1, "the C++ unpacker flags the Python words (TLAST or unused bits)"
    assert np.array_equal(np.frombuffer(back[:-1], "<i8").reshape(FRAMES, ELEMS), codes)
    assert np.array_equal(unpack(np.frombuffer(cpp, np.uint8).reshape(FRAMES, -1, bus // 8) if bus > 64 else
                                 np.frombuffer(cpp, f"<u{bus // 8}").reshape(FRAMES, -1),
                                 ELEMS, bits, signed, bus, bipolar=bipolar), codes)  # fmt: skip
