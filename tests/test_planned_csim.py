"""Whole models at the explorer's own plans, where it takes several pixels per cycle or several
kernel taps a word and packs DSP products: the generated design's C simulation equals the
golden model on every layer.

tests/test_csim_models.py runs every fixture fully folded (pe = simd = 1); here the CNN
(the bundled digits CNN's fixture) at its Ultra96 plan, whose convolutions take three kernel
taps a word (conv1: 1 input channel, simd 3; conv2: 16 channels, simd 48), and the
depthwise-separable KWS network at its ZCU104 plan, whose window layers take 3 or 9 taps a
word and whose requantizers are built partly in DSPs and partly in the fabric, both with
matrix units that pack PE pairs into DSPs, are built and compared layer by layer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelgen.boards import get_board
from accelgen.codegen import generate
from accelgen.csim import build, run_csim
from accelgen.dse import explore
from accelgen.pipeline import compile_model
from tests.data import as_images, digits_split

pytestmark = pytest.mark.csim

MODELS = Path(__file__).parent / "models"
MANIFEST = {m["file"]: m for m in json.loads((MODELS / "manifest.json").read_text())["models"]}
SAMPLES = 24


def csim_bit_exact(outdir, vectors: int | None = None, **run) -> dict:
    """Build ``outdir``'s C simulation and run it (``run``: run_csim's options): it passes
    on ``vectors`` vectors (None: not counted), no element and no stream warning off, and
    every traced layer bit-exact against the golden model; the result."""
    build(outdir)
    result = run_csim(outdir, **run)
    assert result["passed"], result.get("first_mismatch") or result.get("error")
    assert result["mismatches"] == 0 and result["stream_warnings"] == 0
    assert vectors is None or result["vectors"] == vectors
    layers = [r for r in result["layers"] if r["kind"] == "layer"]
    assert layers and all(r["mismatches"] == 0 for r in layers)
    return result


@pytest.mark.parametrize(
    "file,board,parallel",
    [
        ("qonnx_cnn_w4a8.onnx", "ultra96v2", "PIXELS_PER_CYCLE"),  # and conv2 at simd 12 of 16 x 9 (a gearbox)
        # the KWS stem and depthwise layers take 9 and 3 taps a word, its requantizers in the fabric
        ("qdq_dscnn_s8w4_msdomain.onnx", "zcu104", "TAPS_PER_WORD"),
    ],
)
def test_the_planned_design_equals_golden(tmp_path, file, board, parallel):
    compiled = compile_model(MODELS / file)
    plan = explore(compiled.graph, get_board(board)).plan()
    _, _, x, _ = digits_split()
    x = (as_images(x) if MANIFEST[file]["input_layout"] == "image" else x)[:SAMPLES]
    outdir = generate(compiled, plan, tmp_path / "d", vectors=(x,))
    configs = "".join(f.read_text() for f in (outdir / "hls" / "config").glob("*.h"))
    # the plan's window generators take several pixels per cycle, or several taps a word, somewhere
    assert any(f"{parallel} = {p};" in configs for p in (2, 3, 4, 8, 9))
    assert "accelgen::DspPacked mac;" in configs
    if file.startswith("qdq_dscnn"):
        assert "accelgen::FabricProduct" in configs and "accelgen::DspProduct" in configs
    csim_bit_exact(outdir, SAMPLES)
