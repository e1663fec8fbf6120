"""Convolutions whose ``simd`` is a divisor of KH*KW*IC that is no window word (neither a
divisor of IC nor IC times a tap word): the window generator emits its smallest word of at
least ``simd`` elements and a gearbox re-cuts the window stream into ``simd``-element words
(accelgen.kernels.conv.word). Each case is generated, C-simulated in both models (ap_types,
whose gearbox is streams.h's slice-select or shifting form, and the native fast path) and
compared on every element with the numpy reference of tests/test_hls_kernels.py (independent
of accelgen.golden); the generated design is checked to take the gearbox path.
"""

from __future__ import annotations

import pytest

from accelgen.codegen.connect import build_design
from tests.test_hls_kernels import BIPOLAR, MODELS, GraphBuilder, assert_layers_equal_reference, case_emulators, qt
from tests.test_hls_kernels import F as Fold

pytestmark = pytest.mark.csim


def _ic32_simd48():  # 288 = 6 x 48: words of 3 taps (96) cut in two; PE pairs packed in DSPs
    b = GraphBuilder("g", 901)
    x = b.input("x", (5, 6, 32), qt(8, True))
    return b.finish(b.conv(x, 4, (3, 3), qt(8, True), qt(8, True), pads=(1, 1, 1, 1), fold=Fold(2, 48), rq="ms"))


def _ic32_simd24_stride2():  # 24 < IC, no divisor of 32: 32-channel words re-cut by the shifting gearbox
    b = GraphBuilder("g", 902)
    x = b.input("x", (7, 6, 32), qt(8, False, zp=128))
    return b.finish(b.conv(x, 6, (3, 3), qt(8, True), qt(8, True), strides=(2, 2), pads=(1, 1, 1, 1),
                           fold=Fold(3, 24), rq="ms"))  # fmt: skip


def _ic4_simd6_then_simd18():  # 36 elements: 12-element words in halves; then the whole window in halves
    b = GraphBuilder("g", 903)
    x = b.input("x", (6, 7, 4), qt(4, False, zp=3))
    y = b.conv(x, 4, (3, 3), qt(4, True), qt(4, False), pads=(1, 1, 1, 1), fold=Fold(1, 6))
    return b.finish(b.conv(y, 5, (3, 3), qt(5, True), qt(8, True), strides=(2, 1), pads=(0, 1, 2, 0),
                           fold=Fold(5, 18), rq="ms"))  # fmt: skip


def _ic4_simd3_simd9_dilated():  # 4-channel words re-cut into 3s; 12-element words into 9s (dilation 2)
    b = GraphBuilder("g", 904)
    x = b.input("x", (8, 7, 4), qt(6, True))
    y = b.conv(x, 4, (3, 3), qt(3, True), qt(5, True), pads=(1, 2, 1, 0), fold=Fold(2, 3))
    return b.finish(b.conv(y, 3, (3, 3), qt(4, True), None, dil=(2, 2), pads=(2, 2, 2, 2), fold=Fold(3, 9), rq="none"))


def _grouped_and_bipolar():  # block-diagonal 6 -> 6 (2 groups), 54 = 2 x 27; a valid XNOR conv at 72 = 2 x 36
    b = GraphBuilder("g", 905)
    x = b.input("x", (6, 6, 6), qt(8, True))
    y = b.conv(x, 8, (3, 3), qt(4, True), BIPOLAR, pads=(1, 1, 1, 1), groups=2, fold=Fold(4, 27))
    return b.finish(b.conv(y, 4, (3, 3), BIPOLAR, qt(4, False), fold=Fold(2, 36)))


CASES = {
    "ic32_simd48_pad1_dsp_packed": _ic32_simd48,
    "ic32_simd24_stride2_odd_pe": _ic32_simd24_stride2,
    "ic4_simd6_then_simd18_stride": _ic4_simd6_then_simd18,
    "ic4_simd3_simd9_dilated": _ic4_simd3_simd9_dilated,
    "grouped_simd27_bipolar_simd36": _grouped_and_bipolar,
}


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    """Every case generated, compiled into one library per C-simulation model (in parallel)."""
    return case_emulators(tmp_path_factory.mktemp("conv_gearbox"), CASES, "cg")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", list(CASES))
def test_a_conv_through_a_gearbox_is_bit_exact(emulators, name, model):
    assert_layers_equal_reference(*emulators[name, model])


def test_every_case_takes_the_gearbox_path():
    """Each convolution is its window generator, a gearbox from wider words to ``simd``
    elements and the matrix unit (the generated design's kernels and fields)."""
    for name, make in CASES.items():
        graph, plan, _ = make()
        design = build_design(graph, plan, top="t")
        for block in (b for b in design.blocks if b.op is not None):
            kinds = [k.function for k in block.kernels]
            assert kinds == ["sliding_window", "gearbox", "mvau"], (name, kinds)
            swg, dwc, mvau = block.kernels
            bits = 1 if mvau.fields["in_code"]["bipolar"] else mvau.fields["in_code"]["bits"]
            word = swg.fields["lanes"] * swg.fields["taps_per_word"]
            assert word > mvau.fields["simd"] and mvau.fields["matrix_w"] % word == 0, (name, word)
            assert (dwc.fields["in_bits"], dwc.fields["out_bits"]) == (word * bits, mvau.fields["simd"] * bits), name
