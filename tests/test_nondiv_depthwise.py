"""Depthwise convolutions whose ``pe`` does not divide the channels: ceil(C / pe) channel folds,
the last one padded (accelgen.kernels.depthwise.padded_window). A gearbox framed per pixel
re-cuts each pixel's channels into pe-lane words, padding the last with zero codes; the
window generator and the vector unit run on the padded channels; the unit's output gearbox
drops the padded lanes.

Each case is generated, C-simulated (both arithmetic models) and compared on every element of
every layer with the numpy references of tests/test_hls_kernels.py (independent of
accelgen.golden); a planned MobileNetV1 with padded depthwise layers is checked against the
golden model, and the legal pe and the error for an illegal one are checked too.
"""

from __future__ import annotations

import pytest

from accelgen.codegen.connect import build_design
from accelgen.errors import InputError
from accelgen.kernels import depthwise
from accelgen.plan import FoldingPlan, LayerFold
from tests.test_hls_kernels import MODELS, GraphBuilder, assert_layers_equal_reference, case_emulators, qt

pytestmark = pytest.mark.csim

F = LayerFold


def _dw_then_pointwise():
    """7 channels at pe 4 (2 folds, 1 lane padded; 7-lane words in and out), an input with a
    zero point (a zero code is not a zero value), multiply-shift, then a pointwise conv."""
    b = GraphBuilder("dp", 31)
    x = b.input("x", (6, 5, 7), qt(8, False, zp=128))
    y = b.conv(x, 7, (3, 3), qt(8, True), qt(8, True), pads=(1, 1, 1, 1), groups=7, fold=F(4, 1), rq="ms")
    return b.finish(b.conv(y, 4, (1, 1), qt(8, True), qt(6, False), fold=F(2, 7), rq="ms"))


def _conv_then_dw_taps():
    """A conv writing 5-lane words into a depthwise of 10 channels at pe 4 (3 folds, 2 lanes
    padded) taking 3 taps a word (the tap gearbox after the generator), stride 2, thresholds."""
    b = GraphBuilder("dt", 32)
    x = b.input("x", (7, 7, 3), qt(4, False))
    y = b.conv(x, 10, (3, 3), qt(4, True), qt(4, False), pads=(1, 1, 1, 1), fold=F(5, 3))
    return b.finish(b.conv(y, 10, (3, 3), qt(4, True), qt(4, False), strides=(2, 2), pads=(1, 1, 1, 1), groups=10,
                           fold=F(4, 3)))  # fmt: skip


def _dw_into_residual():
    """16 channels at pe 6 (3 folds, 2 lanes padded; 8-lane words), feeding a residual Add
    with its own input (the bypass FIFO sized from the padded layer's depth)."""
    b = GraphBuilder("dr", 33)
    x = b.input("x", (4, 4, 16), qt(6, True))
    y = b.conv(x, 16, (3, 3), qt(6, True), qt(6, True), pads=(1, 1, 1, 1), groups=16, fold=F(6, 1), rq="ms")
    return b.finish(b.add(x, y, (1, 1), qt(7, True), fold=F(8, 1)))


def _dw_dilated_pe1_of_3():
    """3 channels at pe 2 (2 folds, 1 lane padded), dilation 2, no padding, as graph output."""
    b = GraphBuilder("dd", 34)
    x = b.input("x", (7, 6, 3), qt(5, True))
    return b.finish(b.conv(x, 3, (3, 3), qt(3, True), qt(5, False), dil=(2, 2), groups=3, fold=F(2, 1), rq="ms"))


CASES = {
    "dw7_pe4_zero_point_then_pointwise": _dw_then_pointwise,
    "conv_then_dw10_pe4_taps3_stride2": _conv_then_dw_taps,
    "dw16_pe6_into_residual_add": _dw_into_residual,
    "dw3_pe2_dilated_output": _dw_dilated_pe1_of_3,
}


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    return case_emulators(tmp_path_factory.mktemp("nondiv_dw"), CASES, "ndw")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", list(CASES))
def test_padded_depthwise_folds_are_bit_exact(emulators, name, model):
    assert_layers_equal_reference(*emulators[name, model])


def test_each_padded_layer_has_its_two_gearboxes_framed_per_pixel(emulators):
    """The 7-channel case: 30 input pixels in, 30 output pixels out, each a gearbox frame;
    the unit runs on 8 channels (2 folds of 4)."""
    out = emulators["dw7_pe4_zero_point_then_pointwise", "native"][0].outdir
    top = (out / "hls" / "top.cpp").read_text()
    assert top.count("reps * 30);") == 2
    configs = {f.name: f.read_text() for f in (out / "hls" / "config").glob("*.h")}
    (unit,) = [t for t in configs.values() if "CHANNELS = 8;" in t and "PE = 4;" in t]
    assert "KERNEL = 9;" in unit


def test_legal_pe_are_the_fewest_lanes_per_fold_count():
    graph, _, _ = _conv_then_dw_taps()
    spec = depthwise.describe(graph.op("conv1"), graph)
    assert depthwise.legal(spec)["pe"] == [1, 2, 3, 4, 5, 10]
    assert depthwise.padded_window(spec, 4).ic == 12 and depthwise.padded_window(spec, 5) is spec.win
    assert depthwise.stream_lanes(spec, F(4, 1)) == ((5,), 5)


@pytest.mark.parametrize("pe", [7, 0])
def test_an_illegal_pe_names_the_layer_and_the_legal_values(pe):
    graph, _, _ = _conv_then_dw_taps()
    with pytest.raises(InputError, match=rf"'conv1' \(depthwise Conv\): illegal pe={pe} \(legal: 1, 2, 3, 4, 5, 10\)"):
        build_design(graph, FoldingPlan({"conv1": F(pe, 1)}), top="t")
