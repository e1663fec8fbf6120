"""The sliding window generator (hls/accelgen/swg.h) alone, against a numpy im2col written here.

Each case is a configuration of swg.h in convolution order: taps a word (``TAPS_PER_WORD``,
several consecutive taps of one kernel row, whole kernel rows, the whole window), or pixels
per cycle, with strides, dilations,
asymmetric padding and maps narrower than the line buffer's banks. A C++ driver written
here streams two samples of distinct 8-bit codes (so a wrong tap, channel or pixel shows
up as a wrong value) through each configuration and prints every lane of every output
word; the test compares them with the windows numpy cuts from the padded map, in the
(output pixel, kh, kw, channel) order the matrix unit reads (accelgen.kernels.conv.dense_weights).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from accelgen.csim.toolchain import CXX_STD, ap_types_dir, compiler
from accelgen.kernels.conv import Window

pytestmark = pytest.mark.csim

HLS = Path(__file__).resolve().parent.parent / "hls"
PAD = 255  # the padding code: never an input value (inputs are 0..254)
SAMPLES = 2


@dataclass(frozen=True)
class Geometry:
    name: str
    hwc: tuple[int, int, int]
    kernel: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    dilations: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    taps: int = 1
    lanes: int = 0  # channels per input word (0: every channel)
    pixels: int = 1

    @property
    def out_hw(self) -> tuple[int, int]:
        (h, w, _), (kh, kw), (sh, sw), (dh, dw) = self.hwc, self.kernel, self.strides, self.dilations
        t, left, b, r = self.pads
        return (h + t + b - (kh - 1) * dh - 1) // sh + 1, (w + left + r - (kw - 1) * dw - 1) // sw + 1


CASES = [
    Geometry("c1_k3_pad1_taps3", (6, 7, 1), (3, 3), pads=(1, 1, 1, 1), taps=3),
    Geometry("c3_k3_stride2_taps3", (7, 9, 3), (3, 3), strides=(2, 2), pads=(1, 1, 1, 1), taps=3),
    Geometry("c1_k4x4_stride2_taps2", (12, 10, 1), (4, 4), strides=(2, 2), pads=(1, 1, 2, 2), taps=2),
    Geometry("c1_k4x4_stride2_taps4", (12, 10, 1), (4, 4), strides=(2, 2), pads=(1, 1, 2, 2), taps=4),
    Geometry("c2_k2x3_dilated_taps3", (7, 11, 2), (2, 3), strides=(1, 2), dilations=(2, 2), pads=(0, 2, 1, 2), taps=3),
    Geometry("c3_k3x2_stride3_taps2", (5, 6, 3), (3, 2), strides=(1, 3), pads=(1, 0, 1, 1), taps=2),
    Geometry("c1_narrower_than_banks_taps3", (4, 2, 1), (3, 3), pads=(1, 1, 1, 1), taps=3),
    Geometry("c2_k1x4_dilated3_pad_taps2", (3, 9, 2), (1, 4), dilations=(1, 3), pads=(0, 3, 0, 1), taps=2),
    Geometry("c1_k1x4_pad3_taps2", (3, 5, 1), (1, 4), pads=(0, 3, 0, 3), taps=2),
    Geometry("c3_k3_whole_window_taps9", (6, 5, 3), (3, 3), strides=(2, 1), pads=(1, 1, 1, 0), taps=9),
    Geometry("c1_k10x4_two_rows_taps8", (14, 10, 1), (10, 4), strides=(2, 2), pads=(4, 1, 5, 2), taps=8),
    Geometry("c2_k4x2_dilated_rows_taps4", (9, 8, 2), (4, 2), strides=(1, 2), dilations=(2, 3), pads=(3, 2, 2, 3),
             taps=4),
    Geometry("c1_k3x1_whole_column_taps3", (5, 4, 1), (3, 1), pads=(1, 0, 1, 0), taps=3),
    Geometry("c4_two_lanes_one_tap", (5, 6, 4), (3, 3), strides=(2, 1), pads=(1, 1, 0, 1), lanes=2),
    Geometry("c2_two_pixels", (5, 8, 2), (3, 3), pads=(1, 1, 1, 1), pixels=2),
    Geometry("c2_k1_stride3_skips_rows", (8, 7, 2), (1, 1), strides=(3, 2)),  # rows no window reads, a drain
    Geometry("c3_k2_stride2_pool_like", (6, 6, 3), (2, 2), strides=(2, 2), lanes=1),
]


def im2col(x: np.ndarray, g: Geometry) -> np.ndarray:
    """(samples, OH, OW, KH, KW, C) windows of ``x`` (samples, H, W, C), padding = PAD."""
    (kh, kw), (sh, sw), (dh, dw) = g.kernel, g.strides, g.dilations
    t, left, b, r = g.pads
    xp = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=PAD)
    oh, ow = g.out_hw
    out = np.empty((x.shape[0], oh, ow, kh, kw, x.shape[3]), dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            for i in range(kh):
                for j in range(kw):
                    out[:, oy, ox, i, j] = xp[:, oy * sh + i * dh, ox * sw + j * dw]
    return out


def config(i: int, g: Geometry) -> str:
    (h, w, c), (kh, kw), (sh, sw), (dh, dw) = g.hwc, g.kernel, g.strides, g.dilations
    oh, ow = g.out_hw
    fields = {
        "LANES": g.lanes or c, "CHANNELS": c, "IN_H": h, "IN_W": w, "OUT_H": oh, "OUT_W": ow, "KH": kh, "KW": kw,
        "SH": sh, "SW": sw, "DH": dh, "DW": dw, "PAD_T": g.pads[0], "PAD_L": g.pads[1],
        "PIXELS_PER_CYCLE": g.pixels, "TAPS_PER_WORD": g.taps,
    }  # fmt: skip
    body = "".join(f"    static const unsigned {k} = {v};\n" for k, v in fields.items())
    return (f"struct cfg{i} {{\n    typedef accelgen::Code<8, false, false> code;\n{body}"
            f"    static const unsigned long long PAD_RAW = {PAD}ULL;\n    static const bool DEPTHWISE = false;\n}};\n"
            f"static void run{i}() {{ run<cfg{i}>({SAMPLES}); }}\n")  # fmt: skip


DRIVER = """#include <cstdio>
#define ACCELGEN_SWG_COUNT
#include <accelgen/swg.h>

// Input code of (sample, element): distinct over one sample, never PAD.
static unsigned code_of(unsigned s, unsigned e) { return (e * 7 + s * 31) % 255; }

template <class CFG>
static void run(unsigned samples) {
    const unsigned L = CFG::LANES, OUT_LANES = CFG::LANES * CFG::PIXELS_PER_CYCLE * CFG::TAPS_PER_WORD;
    hls::stream<typename accelgen::Word<typename CFG::code, CFG::LANES>::type> in;
    hls::stream<typename accelgen::Word<typename CFG::code, OUT_LANES>::type> out;
    for (unsigned s = 0; s < samples; s++)
        for (unsigned e = 0; e < CFG::IN_H * CFG::IN_W * CFG::CHANNELS; e += L) {
            typename accelgen::Word<typename CFG::code, CFG::LANES>::type w = 0;
            for (unsigned l = 0; l < L; l++) accelgen::set_lane<typename CFG::code, CFG::LANES>(w, l, code_of(s, e + l));
            in.write(w);
        }
    accelgen::swg_iterations() = 0;
    accelgen::sliding_window<CFG>(in, out, samples);
    printf("%llu %llu\\n", accelgen::swg_iterations(), accelgen::swg_first_window());
    while (!out.empty()) {
        const typename accelgen::Word<typename CFG::code, OUT_LANES>::type w = out.read();
        for (unsigned l = 0; l < OUT_LANES; l++) printf("%u ", unsigned(accelgen::lane<typename CFG::code, OUT_LANES>(w, l)));
    }
    printf("\\n");
}
"""


@pytest.fixture(scope="module")
def driver_output(tmp_path_factory) -> list[str]:
    """Two lines per case from one compiled driver: its sample-loop iterations over the two
    samples and the second sample's iteration of its first emission (ACCELGEN_SWG_COUNT),
    then its output lanes in stream order."""
    work = tmp_path_factory.mktemp("swg")
    src = DRIVER + "".join(config(i, g) for i, g in enumerate(CASES))
    src += "int main() {\n" + "".join(f"    run{i}();\n" for i in range(len(CASES))) + "    return 0;\n}\n"
    (work / "swg.cpp").write_text(src)
    exe = work / "swg"
    # AddressSanitizer: a read outside the line buffer (a padding tap's bank address) fails too
    cmd = [compiler(), CXX_STD, "-O1", "-fsanitize=address", "-Wno-unknown-pragmas", f"-I{HLS}",
           f"-I{ap_types_dir()}", str(work / "swg.cpp"), "-o", str(exe)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()


@pytest.fixture(scope="module")
def emitted(driver_output) -> dict[str, np.ndarray]:
    return {g.name: np.array(line.split(), dtype=np.int64) for g, line in zip(CASES, driver_output[1::2])}


@pytest.fixture(scope="module")
def iterations(driver_output) -> dict[str, tuple[int, int]]:
    return {g.name: tuple(int(n) for n in line.split()) for g, line in zip(CASES, driver_output[0::2])}


def expected_stream(g: Geometry) -> np.ndarray:
    """The lanes swg.h must emit: windows in (pixel, kh, kw, channel) order; several pixels per
    cycle interleave ``pixels`` windows word by word (lanes of pixel j at [j * LANES, ...))."""
    h, w, c = g.hwc
    x = ((np.arange(h * w * c) * 7)[None, :] + 31 * np.arange(SAMPLES)[:, None]) % 255
    win = im2col(x.reshape(SAMPLES, h, w, c), g)
    oh, ow = g.out_hw
    lanes = g.lanes or c
    # (s, oh, ow, kh, kw, cf, lanes) -> words of one pixel, then pixels side by side
    words = win.reshape(SAMPLES, oh, ow // g.pixels, g.pixels, -1, lanes)
    return words.transpose(0, 1, 2, 4, 3, 5).reshape(-1)


@pytest.mark.parametrize("g", CASES, ids=[g.name for g in CASES])
def test_window_generator_emits_im2col(emitted, g):
    want = expected_stream(g)
    got = emitted[g.name]
    assert got.shape == want.shape, f"{g.name}: {got.size} lanes emitted, {want.size} expected"
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{g.name}: first wrong lane {bad[0]}: {got[bad[0]]}, expected {want[bad[0]]}"


@pytest.mark.parametrize("g", CASES, ids=[g.name for g in CASES])
def test_priced_cycles_are_the_loop_iterations(iterations, g):
    """conv.Window.cycles is swg.h's sample loop, iteration for iteration: its reads overlap
    its emissions (fewer than their sum, never fewer than the larger), replayed row by row;
    the first window comes after first_window_elems (the kernels' lag and depth) are read."""
    (h, w, c), (kh, kw), (sh, sw), (dh, dw) = g.hwc, g.kernel, g.strides, g.dilations
    oh, ow = g.out_hw
    win = Window(ih=h, iw=w, ic=c, oh=oh, ow=ow, kh=kh, kw=kw, extent_h=(kh - 1) * dh + 1,
                 extent_w=(kw - 1) * dw + 1, pad_top=g.pads[0], pad_left=g.pads[1], stride_h=sh, stride_w=sw,
                 dilation_w=dw)  # fmt: skip
    lanes = g.lanes or c
    reads, emits = h * w * c // lanes, oh * ow * kh * kw * c // lanes // g.pixels // g.taps
    total, first = iterations[g.name]
    assert max(reads, emits) <= total // SAMPLES < reads + emits
    assert total == SAMPLES * win.cycles(lanes, g.pixels, g.taps)
    assert first == win.first_window_elems // lanes


def test_the_cases_cover_tap_parallel_geometries():
    tap = [g for g in CASES if g.taps > 1]
    assert {g.taps for g in tap} >= {2, 3, 4}
    assert any(g.taps > g.kernel[1] for g in tap) and any(g.taps == g.kernel[0] * g.kernel[1] for g in tap)
    assert any(g.strides[1] > 1 for g in tap) and any(g.dilations[1] > 1 for g in tap)
    assert any(g.pads[1] > g.taps * g.dilations[1] for g in tap)  # padding wider than the banks
    assert any(g.hwc[1] < g.taps * g.dilations[1] for g in tap)  # a map narrower than the banks
    assert any(g.strides[1] > g.taps * g.dilations[1] for g in tap)  # a stride past the banks
