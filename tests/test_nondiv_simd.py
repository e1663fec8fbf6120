"""Matrix units whose ``simd`` does not divide the reduction: ceil(K / simd) words per output,
the last word's lanes past K padded (zero weights), the input re-cut per reduction by a
gearbox that fills the last word with zero bits.

Dense layers (with DSP-packed PE pairs too), a 3x3 convolution at the bundled CNN's conv2
shape and planned simd (IC 16, simd 29, several passes) and a pointwise convolution, one of them reading an
input with a nonzero zero point (the padded lanes' zero bits are then codes of -128, which
add 0 only because their weights are 0), are generated, C-simulated (both arithmetic models)
and compared on every element of every layer with the numpy references of
tests/test_hls_kernels.py (independent of accelgen.golden). The legal ``simd``, the error for
an illegal one, and the bundled CNN at its Ultra96 plan (conv2 at a padded ``simd``) against
golden are checked too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelgen import ir
from accelgen.boards import get_board
from accelgen.codegen import generate
from accelgen.codegen.connect import build_design
from accelgen.dse import explore
from accelgen.errors import InputError
from accelgen.kernels import dense, mvu
from accelgen.pipeline import compile_model
from accelgen.plan import FoldingPlan, LayerFold
from tests.data import as_images, digits_split
from tests.test_hls_kernels import MODELS, GraphBuilder, assert_layers_equal_reference, case_emulators, qt
from tests.test_planned_csim import csim_bit_exact

pytestmark = pytest.mark.csim

CNN = Path(__file__).parent.parent / "examples" / "digits_cnn_w4a8.onnx"
SAMPLES = 8
F = LayerFold
W8A8 = (qt(8, True), qt(8, True), qt(8, True))


def _dense(seed, n_in, n_out, fold, types, rq):
    """x (n_in) -> dense(n_out) at ``fold`` -> dense(6) fully folded."""
    xq, wq, oq = types
    b = GraphBuilder("d", seed)
    y = b.dense(b.input("x", (n_in,), xq), n_out, wq, oq, fold=fold, rq=rq)
    return b.finish(b.dense(y, 6, qt(4, True), qt(4, False), fold=F(3, 2)))


def _conv3x3_ic16_simd29():
    b = GraphBuilder("c", 21)  # the CNN's conv2 shape: 144 = 3*3*16, 5 words of 29 (1 lane padded), 2 passes
    x = b.input("x", (6, 6, 16), qt(4, False))
    y = b.conv(x, 8, (3, 3), qt(4, True), qt(4, False), fold=F(4, 29))
    return b.finish(b.maxpool(y, (2, 2), (2, 2), fold=F(2, 1)))


def _pointwise_ic14_simd5_zp128():
    # uint8 input (zero point 128): 3 words of 5 per pixel, 1 lane padded, 2 passes (IC 12 has no padded
    # simd: ceil(12 / n) is a divisor for every n)
    b = GraphBuilder("p", 22)
    x = b.input("x", (3, 4, 14), qt(8, False, zp=128))
    y = b.conv(x, 6, (1, 1), qt(4, True), qt(6, True), fold=F(3, 5), rq="ms")
    return b.finish(b.conv(y, 4, (1, 1), qt(5, True), qt(5, False), fold=F(2, 3)))


CASES = {
    "dense24_simd5": lambda: _dense(31, 24, 10, F(5, 5), (qt(4, False), qt(4, True), qt(4, False)), "thresholds"),
    "dense20_simd7_w8a8_packed": lambda: _dense(32, 20, 8, F(4, 7), W8A8, "ms"),
    "dense30_simd8_zp128": lambda: _dense(33, 30, 5, F(5, 8), (qt(8, False, zp=128), qt(3, True), qt(5, True)), "ms"),
    "conv3x3_ic16_simd29_passes": _conv3x3_ic16_simd29,
    "pointwise_ic14_simd5_zp128": _pointwise_ic14_simd5_zp128,
}


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    return case_emulators(tmp_path_factory.mktemp("nondiv_simd"), CASES, "ns")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", list(CASES))
def test_padded_words_are_bit_exact(emulators, name, model):
    assert_layers_equal_reference(*emulators[name, model])


def _configs(emulators, name) -> str:
    return "".join(f.read_text() for f in (emulators[name, "native"][0].outdir / "hls" / "config").glob("*.h"))


def test_padded_words_generate_a_framed_gearbox_and_padded_rows(emulators):
    """Each case's unit reduces over ceil(K / simd) * simd columns, fed by a gearbox framed per
    reduction (K elements in, ceil(K / simd) words out); the W8A8 dense packs PE pairs."""
    for name in CASES:
        assert "accelgen::gearbox<" in (emulators[name, "native"][0].outdir / "hls" / "top.cpp").read_text(), name
    conv = _configs(emulators, "conv3x3_ic16_simd29_passes")  # window words of 3 taps (48) -> 5 words of 29
    assert "MATRIX_W = 145;" in conv and "SIMD = 29;" in conv and "TILES = 10;" in conv
    assert "IN_WORDS = 3;" in conv and "OUT_WORDS = 5;" in conv
    top = (emulators["conv3x3_ic16_simd29_passes", "native"][0].outdir / "hls" / "top.cpp").read_text()
    assert "reps * 16);" in top  # 4 x 4 output pixels, one gearbox frame each
    pointwise = _configs(emulators, "pointwise_ic14_simd5_zp128")  # 7-channel input words -> 3 words of 5
    assert "MATRIX_W = 15;" in pointwise and "IN_WORDS = 2;" in pointwise and "OUT_WORDS = 3;" in pointwise
    packed = _configs(emulators, "dense20_simd7_w8a8_packed")
    assert "MATRIX_W = 21;" in packed and "accelgen::DspPacked mac;" in packed


def test_legal_simd_are_the_fewest_lanes_per_word_count():
    # up to 16 words (mvu.PADDED_SIMD_WORDS): the divisors of 144 and 10, 11, 14, 15, 21, 29 (15, 14, 11,
    # 10, 7 and 5 words, the last padded); 17 lanes take 9 words as 16 do, 7 lanes would take 21
    assert mvu.simd_values(144, True) == [1, 2, 3, 4, 6, 8, 9, 10, 11, 12, 14, 15, 16, 18, 21, 24, 29, 36, 48, 72,
                                          144]  # fmt: skip
    assert mvu.simd_values(20, True) == [1, 2, 3, 4, 5, 7, 10, 20]
    assert mvu.simd_values(24, False) == [1, 2, 3, 4, 6, 8, 12, 24]  # bipolar weights: no zero to pad with
    assert [mvu.in_lanes(24, s) for s in (5, 6, 8)] == [6, 6, 8] and mvu.in_lanes(30, 8) == 10


def test_bipolar_weights_keep_divisor_simd():
    b = GraphBuilder("b", 34)
    y = b.dense(b.input("x", (24,), qt(1, True, bipolar=True)), 4, qt(1, True, bipolar=True),
                qt(1, True, bipolar=True), fold=F(2, 6))  # fmt: skip
    graph, _, _ = b.finish(y)
    op = graph.ops[0]
    assert dense.legal(dense.describe(op, graph))["simd"] == [1, 2, 3, 4, 6, 8, 12, 24]
    with pytest.raises(InputError, match=r"'dense0' \(Dense\): illegal simd=5 \(legal: 1, 2, 3, 4, 6, 8, 12, 24\)"):
        build_design(graph, FoldingPlan({"dense0": F(2, 5)}), top="t")


@pytest.mark.parametrize("dense_simd, conv_simd", [(9, 17), (0, 0)])
def test_an_illegal_simd_names_the_layer_and_the_legal_values(dense_simd, conv_simd):
    graph, _, _ = CASES["dense24_simd5"]()  # 24 inputs: 9 lanes take 3 words, as 8 lanes do
    with pytest.raises(InputError, match=rf"'dense0' \(Dense\): illegal simd={dense_simd} \(legal: 1, 2, 3, 4, 5, 6, 8, 12, 24\)$"):
        build_design(graph, FoldingPlan({"dense0": F(5, dense_simd)}), top="t")
    graph, _, _ = _conv3x3_ic16_simd29()  # 144 elements a window: 17 lanes take 9 words, as 16 do
    with pytest.raises(InputError, match=rf"'conv0' \(Conv\): illegal simd={conv_simd} \(legal: 1, 2, .* 16, 18, 21, 24, 29,"):
        build_design(graph, FoldingPlan({"conv0": F(4, conv_simd)}), top="t")


def test_the_input_gearbox_is_the_priced_one():
    graph, plan, _ = CASES["dense24_simd5"]()
    design = build_design(graph, plan, top="t")
    gearbox = next(k for b in design.blocks if b.op is not None and b.op.name == "dense0" for k in b.kernels
                   if k.function == "gearbox")  # fmt: skip
    assert gearbox.fields == {"in_bits": 6 * 4, "out_bits": 5 * 4, "in_words": 4, "out_words": 5}
    assert isinstance(graph.op("dense0"), ir.Dense)


def test_the_bundled_cnn_at_its_ultra96_plan_equals_golden(tmp_path):
    """The bundled digits CNN on the Ultra96: its conv2 (3x3, 16 -> 32 channels: 144 elements
    a window) takes a simd that does not divide 144 (no divisor fits the DSP budget at the II
    the padded one reaches); the design's C simulation equals golden on every layer."""
    compiled = compile_model(CNN)
    plan = explore(compiled.graph, get_board("ultra96v2")).plan()
    simd = plan.fold("conv:/conv2/Conv").simd
    assert 144 % simd != 0
    _, _, x, _ = digits_split()
    outdir = generate(compiled, plan, tmp_path / "d", vectors=(as_images(x)[:SAMPLES],))
    configs = "".join(f.read_text() for f in (outdir / "hls" / "config").glob("*.h"))
    assert f"MATRIX_W = {-(-144 // simd) * simd};" in configs
    csim_bit_exact(outdir, SAMPLES)


def test_an_illegal_simd_in_a_folding_file_exits_2(tmp_path, capsys):
    """``accelgen dse --folding``: the bundled CNN's fc (128 inputs) at simd 20 (7 words, as 19
    takes) exits 2 naming the layer and its legal simd (the padded ones up to 16 words among
    them); at simd 19 (the last of 7 words padded) the plan is accepted."""
    from accelgen.cli import main  # noqa: PLC0415

    path = tmp_path / "plan.json"
    for simd, code in ((20, 2), (19, 0)):
        path.write_text(json.dumps({"layers": {"dense:/fc/Gemm": {"pe": 10, "simd": simd}}}))
        assert main(["dse", str(CNN), "--board", "ultra96", "--folding", str(path), "-o", str(tmp_path / "o")]) == code
    err = capsys.readouterr().err
    assert "dense:/fc/Gemm" in err and "simd=20 (legal: 1, 2, 4, 8, 9, 10, 11, 12, 13, 15, 16, 19, 22, 26, 32, 43, 64, 128)" in err
