"""Matrix units whose ``pe`` does not divide the output channels: ceil(C / pe) folds, the last
fold's lanes padded, the padded lanes dropped per pixel by a gearbox at the unit's output.

Dense and convolution layers (3x3 windows and pointwise) at such foldings, followed by
other layers, as the graph's output, feeding a residual Add and with DSP-packed PE pairs
(an odd last PE), are generated, C-simulated (both arithmetic models) and compared on every
element of every layer with the numpy references of tests/test_hls_kernels.py (independent
of accelgen.golden). The legal ``pe`` and the error for an illegal one are checked too.
"""

from __future__ import annotations

import pytest

from accelgen import ir
from accelgen.codegen import generate
from accelgen.codegen.connect import build_design
from accelgen.errors import InputError
from accelgen.kernels import conv, mvu
from accelgen.plan import FoldingPlan, LayerFold
from tests.test_hls_kernels import MODELS, GraphBuilder, assert_layers_equal_reference, case_emulators, qt

pytestmark = pytest.mark.csim

F = LayerFold
W8A8 = (qt(8, True), qt(8, True), qt(8, True))


def _dense_chain(seed, oc, fold, types, rq, *, last: bool = False):
    """x (20) -> dense(oc) at ``fold`` -> [dense(6) fully folded, unless ``last``]."""
    xq, wq, oq = types
    b = GraphBuilder("d", seed)
    y = b.dense(b.input("x", (20,), xq), oc, wq, oq, fold=fold, rq=rq)
    if not last:
        y = b.dense(y, 6, qt(4, True), qt(4, False), fold=F(3, 2))
    return b.finish(y)


def _conv3x3_then_pointwise():
    b = GraphBuilder("c", 11)  # 10 channels at pe 4 (3 folds, 2 lanes padded) -> 1x1 at pe 3 (4 folds, graph output)
    x = b.input("x", (6, 5, 3), qt(4, False, zp=2))
    y = b.conv(x, 10, (3, 3), qt(4, True), qt(5, False), pads=(1, 1, 1, 1), fold=F(4, 3))
    return b.finish(b.conv(y, 10, (1, 1), qt(5, True), qt(6, True), fold=F(3, 5), rq="ms"))


def _pointwise_residual():
    b = GraphBuilder("r", 12)  # x (14 ch) -> 1x1 conv at pe 5 (7-lane output words) -> Add(x, conv) at pe 2
    x = b.input("x", (4, 3, 14), qt(6, True))
    y = b.conv(x, 14, (1, 1), qt(6, True), qt(6, True), fold=F(5, 7), rq="ms")
    return b.finish(b.add(x, y, (1, 1), qt(7, True), fold=F(2, 1)))


def _packed_conv():
    b = GraphBuilder("p", 13)  # W8A8 3x3 conv, 16 channels at pe 6 (DspPacked: 3 pairs; 3 folds, 2 lanes padded)
    x = b.input("x", (5, 5, 4), qt(8, False, zp=128))
    y = b.conv(x, 16, (3, 3), qt(8, True), qt(8, True), pads=(1, 1, 1, 1), fold=F(6, 12), rq="ms")
    return b.finish(b.maxpool(y, (2, 2), (2, 2), fold=F(4, 1)))


CASES = {
    "dense10_pe3_w8a8_packed_odd": lambda: _dense_chain(1, 10, F(3, 4), W8A8, "ms"),
    "dense10_pe4_bipolar_last": lambda: _dense_chain(2, 10, F(4, 20), (qt(1, True, bipolar=True),) * 3,
                                                     "thresholds", last=True),  # fmt: skip
    "dense10_pe4_shared_rq": lambda: _dense_chain(3, 10, F(4, 5), (qt(8, True), qt(8, True), qt(6, False)), "ms"),
    "dense64_pe22": lambda: _dense_chain(4, 64, F(22, 10), (qt(4, False), qt(4, True), qt(4, False)), "thresholds"),
    "dense16_pe6_w8a8_packed": lambda: _dense_chain(5, 16, F(6, 2), W8A8, "thresholds", last=True),
    "conv3x3_pe4_then_pointwise_pe3": _conv3x3_then_pointwise,
    "pointwise_pe5_into_residual_add": _pointwise_residual,
    "conv3x3_w8a8_pe6_packed": _packed_conv,
}


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    return case_emulators(tmp_path_factory.mktemp("nondiv_pe"), CASES, "nd")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", list(CASES))
def test_padded_folds_are_bit_exact(emulators, name, model):
    assert_layers_equal_reference(*emulators[name, model])


def test_padded_folds_generate_a_gearbox_and_packed_pairs(emulators):
    """Each case's unit has padded lanes (MATRIX_H above the channels) and a gearbox framed
    per pixel behind it; the W8A8 cases pack PE pairs with an odd last PE."""
    for name in CASES:
        top = (emulators[name, "native"][0].outdir / "hls" / "top.cpp").read_text()
        assert "accelgen::gearbox<" in top, name
    top = (emulators["conv3x3_pe4_then_pointwise_pe3", "native"][0].outdir / "hls" / "top.cpp").read_text()
    assert "reps * 30);" in top  # 6 x 5 pixels, one gearbox frame each
    configs = "".join(f.read_text() for f in (emulators["dense10_pe3_w8a8_packed_odd", "native"][0].outdir
                                              / "hls" / "config").glob("*.h"))  # fmt: skip
    assert "MATRIX_H = 12;" in configs and "PE = 3;" in configs and "accelgen::DspPacked mac;" in configs


def test_legal_pe_are_the_fewest_lanes_per_fold_count():
    assert mvu.pe_values(10) == [1, 2, 3, 4, 5, 10]
    assert mvu.pe_values(16) == [1, 2, 3, 4, 6, 8, 16]
    assert 22 in mvu.pe_values(64) and 21 not in mvu.pe_values(64)
    assert [mvu.out_lanes(10, p) for p in (3, 4, 5)] == [5, 5, 5]
    assert mvu.out_lanes(64, 22) == 32


@pytest.mark.parametrize("pe", [7, 0])
def test_an_illegal_pe_names_the_layer_and_the_legal_values(pe):
    graph, plan, _ = _dense_chain(1, 10, F(3, 4), W8A8, "ms")
    with pytest.raises(InputError, match=rf"'dense0' \(Dense\): illegal pe={pe} \(legal: 1, 2, 3, 4, 5, 10\)"):
        build_design(graph, FoldingPlan({"dense0": F(pe, 4)}), top="t")
    graph, _, _ = _conv3x3_then_pointwise()
    for layer in ("conv0", "conv1"):
        with pytest.raises(InputError, match=rf"'{layer}' \(Conv\): illegal pe={pe} \(legal: 1, 2, 3, 4, 5, 10\)"):
            build_design(graph, FoldingPlan({layer: F(pe, 1)}), top="t")


def test_the_unit_output_stream_is_the_priced_fifo():
    graph, plan, _ = _dense_chain(4, 64, F(22, 10), (qt(4, False), qt(4, True), qt(4, False)), "thresholds")
    design = build_design(graph, plan, top="t")
    gearbox = next(k for b in design.blocks if b.op is not None and b.op.name == "dense0" for k in b.kernels
                   if k.function == "gearbox")  # fmt: skip
    assert gearbox.fields == {"in_bits": 22 * 4, "out_bits": 32 * 4, "in_words": 3, "out_words": 2}
    assert isinstance(graph.op("dense0"), ir.Dense)


def test_padded_folds_lower_the_planned_ii(monkeypatch):
    """DS-CNN (W8A8) on the Ultra96: its 64 -> 64 pointwise convolutions may take 10 or 11
    lanes (7 or 6 passes) instead of jumping from 8 to 16, or (padded simd, which reaches the
    same II) 10 or 11 lanes of the 64 input channels, so the explorer's plan has a lower II
    than the best plan at divisor foldings only."""
    from accelgen.boards import get_board  # noqa: PLC0415
    from accelgen.dse import explore  # noqa: PLC0415
    from accelgen.kernels.base import divisors  # noqa: PLC0415
    from accelgen.pipeline import compile_model  # noqa: PLC0415
    from tests.test_planned_csim import MODELS as FILES  # noqa: PLC0415

    graph = compile_model(FILES / "mlperf_tiny" / "mlperf_dscnn_w8a8.onnx").graph
    padded = explore(graph, get_board("ultra96v2"))
    assert any(int(lp.layer.op.weights.shape[0]) % lp.fold.pe or lp.layer.spec.win.ic % lp.fold.simd
               for lp in padded.layers if lp.layer.kernel is conv and lp.layer.spec.pointwise)  # fmt: skip
    with monkeypatch.context() as m:
        m.setattr(mvu, "pe_values", divisors)
        m.setattr(mvu, "PADDED_SIMD_WORDS", 1)  # simd at the divisors only
        whole = explore(graph, get_board("ultra96v2"))
    assert padded.ii_cycles < whole.ii_cycles


def test_a_planned_residual_network_with_padded_folds_equals_golden(tmp_path):
    """ResNet-8 (8x8 digits) at its Ultra96 plan: convolutions at a pe that pads the last
    fold and at a simd that pads the last word of a window feed residual Adds and
    projections, their windows re-cut by gearboxes after the window generator; the C
    simulation of the whole design equals the golden model on every layer."""
    from accelgen.boards import get_board  # noqa: PLC0415
    from accelgen.dse import explore  # noqa: PLC0415
    from accelgen.pipeline import compile_model  # noqa: PLC0415
    from tests.data import as_images, digits_split  # noqa: PLC0415
    from tests.test_planned_csim import MODELS as FILES  # noqa: PLC0415
    from tests.test_planned_csim import csim_bit_exact  # noqa: PLC0415

    compiled = compile_model(FILES / "qdq_resnet8_s8w4_opset21.onnx")
    e = explore(compiled.graph, get_board("ultra96"))
    padded = [lp.layer.name for lp in e.layers if isinstance(lp.layer.op, ir.Conv)
              and int(lp.layer.op.weights.shape[0]) % lp.fold.pe]  # fmt: skip
    geared = [lp.layer.name for lp in e.layers if isinstance(lp.layer.op, ir.Conv) and not lp.layer.spec.pointwise
              and not conv.is_depthwise(lp.layer.op) and conv.word(lp.layer.spec.win, lp.fold.simd, conv.reduction(lp.layer.spec)).gearbox]  # fmt: skip
    words = [lp.layer.name for lp in e.layers if isinstance(lp.layer.op, ir.Conv) and not conv.is_depthwise(lp.layer.op)
             and conv.reduction(lp.layer.spec) % lp.fold.simd]  # fmt: skip
    assert len(padded) >= 1 and len(words) >= 3 and len(geared) >= 3
    _, _, x, _ = digits_split()
    outdir = generate(compiled, e.plan(), tmp_path / "d", vectors=(as_images(x)[:16],))
    csim_bit_exact(outdir, 16)
