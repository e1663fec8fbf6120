"""Two products per DSP48E2 (hls/accelgen/mac.h packed_pair, the DspPacked policy), bit-exact.

The C++ of mac.h is compiled with g++ and the ap_types headers (the arithmetic synthesis
compiles) and fed operand triples (a, w0, w1) over the operand ranges, negative values and
both ends included; its two products are compared with numpy's a * w0 and a * w1. The
low product's sign is what the correction term repairs: the triples include many
negative low products, and the test checks that the uncorrected upper field would be
wrong on exactly those. The matrix unit's use of the policy (PE pairs, an odd last PE,
several pixels per cycle) is checked end to end in tests/test_hls_kernels.py against numpy.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from accelgen.csim.toolchain import CXX_STD, ap_types_dir, compiler
from accelgen.kernels import hw

pytestmark = pytest.mark.csim

HLS = Path(__file__).resolve().parent.parent / "hls"

#: (signed activation width, signed weight width): the widths the generator packs, up to the
#: 27-bit port's limit (12 + 2 * 7 + 1 = 27) and the 18-bit one (18 + 2 * 4 + 1 = 27)
WIDTHS = ((9, 4), (9, 8), (5, 6), (12, 7), (18, 4), (3, 3))

PROGRAM = r"""
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <accelgen/mac.h>

template <int AW, int WW>
static void run(const char* in_path, const char* out_path) {
    FILE* f = std::fopen(in_path, "rb");
    std::vector<int> v;
    int x;
    while (std::fread(&x, sizeof x, 1, f) == 1) v.push_back(x);
    std::fclose(f);
    std::vector<long long> out;
    for (size_t i = 0; i + 2 < v.size(); i += 3) {
        ap_int<AW + WW> p0, p1;
        accelgen::packed_pair<AW, WW>(ap_int<AW>(v[i]), ap_int<WW>(v[i + 1]), ap_int<WW>(v[i + 2]), p0, p1);
        out.push_back(p0.to_int64());
        out.push_back(p1.to_int64());
    }
    FILE* g = std::fopen(out_path, "wb");
    std::fwrite(out.data(), sizeof(long long), out.size(), g);
    std::fclose(g);
}

int main(int argc, char** argv) {
    const int aw = std::atoi(argv[1]), ww = std::atoi(argv[2]);
%s
    return 1;
}
"""


def operands(rng, aw: int, ww: int) -> np.ndarray:
    """(n, 3) triples: every pair of values when the space is small, else every activation
    value against both ends, -1, 0, 1 and random weights (and random triples)."""
    a_all = np.arange(-(1 << (aw - 1)), 1 << (aw - 1))
    w_all = np.arange(-(1 << (ww - 1)), 1 << (ww - 1))
    if a_all.size * w_all.size**2 <= 300_000:
        grid = np.meshgrid(a_all, w_all, w_all, indexing="ij")
        return np.stack([g.ravel() for g in grid], axis=1)
    edges = np.unique(np.concatenate([w_all[:2], w_all[-2:], [-1, 0, 1], rng.choice(w_all, 6)]))
    a = a_all if a_all.size <= 4096 else np.unique(np.concatenate([a_all[:64], a_all[-64:], rng.choice(a_all, 512)]))
    grid = np.meshgrid(a, edges, edges, indexing="ij")
    fixed = np.stack([g.ravel() for g in grid], axis=1)
    loose = np.stack([rng.choice(a_all, 50_000), rng.choice(w_all, 50_000), rng.choice(w_all, 50_000)], axis=1)
    return np.concatenate([fixed, loose])


@pytest.fixture(scope="module")
def packer(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("packing")
    calls = "\n".join(f"    if (aw == {a} && ww == {w}) {{ run<{a}, {w}>(argv[3], argv[4]); return 0; }}" for a, w in WIDTHS)
    (work / "pack.cpp").write_text(PROGRAM % calls)
    exe = work / "pack"
    subprocess.run([compiler(), "-O1", CXX_STD, f"-I{HLS}", f"-I{ap_types_dir()}", str(work / "pack.cpp"),
                    "-o", str(exe)], check=True, capture_output=True)  # fmt: skip
    return exe


@pytest.mark.parametrize("aw,ww", WIDTHS)
def test_packed_pair_equals_both_products(packer, tmp_path, aw, ww):
    assert hw.packs_pair(aw, ww)  # the generator packs these widths: one 27 x 18 multiply
    triples = operands(np.random.default_rng(aw * 100 + ww), aw, ww)
    (tmp_path / "in.bin").write_bytes(triples.astype(np.int32).tobytes())
    subprocess.run([str(packer), str(aw), str(ww), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], check=True)
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype=np.int64).reshape(-1, 2)
    a, w0, w1 = (triples[:, i].astype(np.int64) for i in range(3))
    assert got.shape[0] == triples.shape[0]
    np.testing.assert_array_equal(got[:, 0], a * w0)
    np.testing.assert_array_equal(got[:, 1], a * w1)
    # the correction is exercised: where a * w0 < 0 the plain upper field (floor of p / 2^K) is one less
    k = aw + ww
    negative = a * w0 < 0
    assert negative.sum() > triples.shape[0] // 5
    assert np.all((a * (w1 * (1 << k) + w0)) >> k == a * w1 - negative)


def test_widths_that_do_not_fit_one_dsp_are_not_packed():
    assert not hw.packs_pair(12, 8)  # 12 + 16 + 1 = 29 bits > the 27-bit port
    assert not hw.packs_pair(19, 2)  # the activation exceeds the 18-bit port
    assert hw.packs_pair(9, 8)  # uint8 activations (9 bits signed) with int8 weights: 26 bits
