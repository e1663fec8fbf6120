"""The four MLPerf Tiny networks at their real shapes (tests/models/mlperf_tiny, issue 15).

ResNet-8 (32x32x3), DS-CNN (49x10x1), MobileNetV1 0.25 (96x96x3) and the FC AutoEncoder (640),
8-bit weights and activations, made by tests/models/make_mlperf_tiny.py with Brevitas. Each is
compiled, planned for pynq-z2 and generated into an HLS project with a few input vectors, built
with g++ (cached by content hash, two builds at a time) and run through its C testbench, which
compares every layer with the golden model element by element. The golden model itself is held,
on the same vectors, to the models' operators evaluated exactly on real numbers
(tests/exact_qonnx.py), and every difference of the qonnx executor (float32) from those is shown
to be a float32 rounding at a tie.
"""

from __future__ import annotations

import functools
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest

from accelgen import golden, ir
from accelgen.boards import get_board
from accelgen.codegen import generate
from accelgen.csim import build, host_epilogue, read_design, run_csim
from accelgen.dse import explore
from accelgen.kernels import conv
from accelgen.pipeline import compile_model
from accelgen.plan import FoldingPlan, LayerFold
from tests import exact_qonnx
from tests.conftest import FIGURES
from tests.mlperf_data import split
from tests.test_planned_csim import csim_bit_exact

pytestmark = pytest.mark.csim

MODELS = Path(__file__).parent / "models" / "mlperf_tiny"
MANIFEST = {m["file"]: m for m in json.loads((MODELS / "manifest.json").read_text())["models"]}
#: vectors per network: MobileNet at 96x96 is the heavy one (its testbench compares ~0.3M layer elements a vector)
VECTORS = {"ic": 4, "kws": 4, "vww": 2, "ad": 4}
#: the real MLPerf Tiny input and output shapes (mlcommons/tiny benchmark/training)
SHAPES = {"ic": ((3, 32, 32), 10), "kws": ((1, 49, 10), 12), "vww": ((3, 96, 96), 2), "ad": ((640,), 640)}


@functools.cache
def compiled(file: str):
    """The compiled model, once per file (the front end takes seconds on MobileNet's 30 layers)."""
    return compile_model(MODELS / file)


def vectors(file: str) -> np.ndarray:
    kind = MANIFEST[file]["network"]
    return split(kind)[2][: VECTORS[kind]]


@pytest.fixture(scope="module")
def designs(tmp_path_factory) -> dict[str, tuple[Path, object]]:
    root = tmp_path_factory.mktemp("mlperf_tiny")
    out = {}
    for file in sorted(MANIFEST):
        model = compiled(file)
        out[file] = (generate(model, None, root / Path(file).stem, vectors=(vectors(file),)), model.graph)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda d: build(d[0]), out.values()))
    return out


def test_the_four_networks_at_their_real_shapes():
    assert {m["network"] for m in MANIFEST.values()} == {"ic", "kws", "vww", "ad"}
    for file, m in MANIFEST.items():
        graph = compiled(file).graph
        shape, outputs = SHAPES[m["network"]]
        assert tuple(graph.tensors[graph.inputs[0]].shape[1:]) == shape, file
        y = next(iter(golden.run(graph, vectors(file)[:1]).values()))
        assert y.shape == (1, outputs), file
        assert m["w_bits"] == m["a_bits"] == 8 and m["accuracy_claimed_on_the_real_data_set"] is None
        assert (MODELS / file).stat().st_size < 400_000, file


def _qonnx_model(file: str, x: np.ndarray):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    model = ModelWrapper(str(MODELS / file))
    model.set_tensor_shape(model.graph.input[0].name, list(x.shape))
    return model.transform(InferShapes())


def qonnx_layers(file: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the model as the qonnx executor computes it (float32), by ONNX tensor name."""
    from qonnx.core.onnx_exec import execute_onnx

    model = _qonnx_model(file, x)
    return execute_onnx(model, {model.graph.input[0].name: x}, return_full_exec_context=True)


def qonnx_one_layer_at_a_time(file: str, x: np.ndarray, exact: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The qonnx executor run node by node, each activation Quant's output replaced by the exact
    codes (dequantized in float32, as Quant outputs them) before the next layer reads it: every
    layer computes in float32 from exact inputs. {Quant output: (its float32 input, its output)}."""
    from qonnx.core.onnx_exec import execute_node

    model = _qonnx_model(file, x)
    ctx = model.make_empty_exec_context()
    ctx[model.graph.input[0].name] = x
    opsets = model.get_opset_imports()
    seen = {}
    for node in model.graph.node:
        execute_node(node, ctx, model.graph, opsets.get(node.domain, opsets.get("")))
        out = node.output[0]
        if node.op_type == "Quant" and node.input[0] in exact and isinstance(exact.get(out), exact_qonnx.Codes):
            seen[out] = (ctx[node.input[0]].copy(), ctx[out].copy())
            q = exact[out]
            ctx[out] = q.centred().astype(np.float32) * exact_qonnx.as_float(q.scale).astype(np.float32)
    return seen


@functools.cache
def exact_run(file: str) -> dict:
    """The exact evaluation (tests/exact_qonnx.py) of ``file`` on its test vectors, once per file."""
    return exact_qonnx.run(MODELS / file, vectors(file))[0]


def _nchw(graph, name: str, codes: np.ndarray) -> np.ndarray:
    return np.transpose(codes, (0, 3, 1, 2)) if graph.tensors[name].layout == "NHWC" else codes


@pytest.mark.parametrize("file", sorted(MANIFEST))
def test_golden_equals_the_exact_semantics_on_every_layer(file):
    """Every integer layer's codes equal, element for element, the model's operators evaluated on
    real numbers (tests/exact_qonnx.py: the float32 constants taken as the reals they denote,
    no rounding but Quant's, ties decided in rational arithmetic); the float output is the
    exact one rounded to float32."""
    graph = compiled(file).graph
    x = vectors(file)
    env, ref = golden.run(graph, x, keep=True), exact_run(file)
    compared = elements = 0
    for op in graph.ops:
        name = op.outputs[0]
        if not isinstance(ref.get(name), exact_qonnx.Codes) or env[name].dtype.kind == "f":
            continue
        np.testing.assert_array_equal(_nchw(graph, name, env[name]), ref[name].codes, err_msg=f"{file}: {name}")
        compared, elements = compared + 1, elements + env[name].size
    assert compared >= 9, file
    ((name, y),) = golden.run(graph, x).items()
    want = exact_qonnx.as_real(ref[name])
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-6 * np.abs(want).max())
    FIGURES.append(f"{file:32s} golden == exact semantics: {compared} layers, {elements:,} codes, 0 differ")


def _pre_rounding(ref: dict, source: str, q: exact_qonnx.Codes) -> np.ndarray:
    """x / scale + zero_point of a Quant whose input is ``source``, exact to float64 precision."""
    scale, zp = exact_qonnx.as_float(q.scale), exact_qonnx.as_float(q.zp)
    return exact_qonnx.as_real(ref[source]) / scale + zp


@pytest.mark.parametrize("file", sorted(MANIFEST))
def test_every_qonnx_difference_is_a_float32_rounding_at_a_tie(file):
    """The qonnx executor computes in float32; where its codes differ from the exact ones (which
    golden's equal, see above), the cause is float32 rounding at a Quant's rounding tie.

    Run one layer at a time (each layer's input replaced by the exact codes), every element on
    which qonnx differs is one step off, and both the exact pre-rounding value x / scale + zp and
    qonnx's float32 one lie within qonnx's own float32 error on that layer (at most 1e-3 of a
    step) of the half-way point between the two codes: a value at a tie that float32 put on the
    other side, or on it. Run whole, qonnx's first differing layer differs on exactly those
    elements, and everything after is their propagation (MobileNet: one code of its sixth layer
    grows to a fifth of the last layers' codes, 42% of the pooled ones). The outputs have the
    same argmax."""
    graph = compiled(file).graph
    x = vectors(file)
    ref = exact_run(file)
    whole = qonnx_layers(file, x)
    alone = qonnx_one_layer_at_a_time(file, x, ref)
    sources = {n.output[0]: n.input[0] for n in onnx.load(str(MODELS / file)).graph.node}
    first, worst, ties, layers = None, 0.0, [], 0
    for name, (inp32, out32) in alone.items():
        if name not in graph.tensors:  # a weight quantizer
            continue
        q = ref[name]
        scale, zp = exact_qonnx.as_float(q.scale), exact_qonnx.as_float(q.zp)
        theirs = np.rint(out32 / scale + zp).astype(np.int64)
        t = _pre_rounding(ref, sources[name], q)
        t32 = (inp32 / scale.astype(np.float32) + zp.astype(np.float32)).astype(np.float32).astype(np.float64)
        noise = float(np.abs(t - t32).max())
        assert noise < 1e-3, (file, name, noise)
        differ = np.nonzero(theirs != q.codes)
        half = (theirs[differ] + q.codes[differ]) / 2
        assert np.all(np.abs(theirs[differ] - q.codes[differ]) == 1), (file, name)
        assert np.all(np.abs(t[differ] - half) <= noise) and np.all(np.abs(t32[differ] - half) <= noise), (file, name)
        ties += [(name, abs(float(t[i] - h))) for i, h in zip(zip(*differ), half)]
        codes = np.rint(whole[name] / scale + zp).astype(np.int64)
        if first is None and np.any(codes != q.codes):
            first = name
            assert np.array_equal(np.nonzero(codes != q.codes), differ), (file, name)
        worst = max(worst, float((codes != q.codes).mean()))
        layers += 1
    assert layers >= 9 and (first is None) == (not ties), file
    ((out, ours),) = golden.run(graph, x).items()
    assert np.array_equal(ours.argmax(1), whole[out].argmax(1)) or MANIFEST[file]["network"] == "ad", file
    FIGURES.append(
        f"{file:32s} qonnx float32 vs exact: {layers} layers; one layer at a time {len(ties)} codes differ, "
        f"each at a tie (exact value {max([d for _, d in ties], default=0):.1e} from it at most); "
        f"run whole, first difference {first or 'none'}, up to {worst:.1%} of a layer's codes"
    )


@pytest.mark.parametrize("file", sorted(MANIFEST))
def test_every_layer_carries_varied_codes(file):
    """The briefly trained networks are not degenerate: every integer layer output has many distinct codes
    and is not mostly zero on the test vectors, so C-sim == golden compares real arithmetic."""
    graph = compiled(file).graph
    env = golden.run(graph, vectors(file), keep=True)
    checked = 0
    for op in graph.ops:
        codes = env.get(op.outputs[0])
        if codes is None or codes.dtype.kind == "f":
            continue
        assert len(np.unique(codes)) >= min(8, codes.size) and (codes != 0).mean() >= 0.1, (file, op.outputs[0])
        checked += 1
    assert checked >= 9, file


@pytest.mark.parametrize("file", sorted(MANIFEST))
def test_csim_equals_golden(designs, file):
    outdir, graph = designs[file]
    x = vectors(file)
    result = run_csim(outdir, keep_outputs=True)
    assert result["passed"], result.get("first_mismatch") or result.get("error")
    assert result["vectors"] == len(x) and result["mismatches"] == 0 and result["stream_warnings"] == 0
    layers = [r for r in result["layers"] if r["kind"] == "layer"]
    assert len(layers) == len(read_design(outdir)["layers"]) and all(r["mismatches"] == 0 for r in layers)
    hw = host_epilogue(outdir, result["outputs"])
    ref = golden.run(graph, x)
    for name in ref:
        np.testing.assert_array_equal(hw[name], ref[name])
    FIGURES.append(
        f"{file:32s} C-sim == golden on {len(x)} vectors, {len(layers)} layers, "
        f"{sum(r['elements'] for r in layers):,} layer elements, 0 mismatches"
    )


@pytest.mark.parametrize("board", ["pynq-z2", "ultra96", "kv260"])
def test_every_network_fits_every_board(board):
    """The benchmark's boards: a plan exists for each network (no FitError), within the budget."""
    for file in MANIFEST:
        e = explore(compiled(file).graph, get_board(board))
        used = e.whole_design.as_dict()
        for key, n in get_board(board).resources.items():
            assert used.get(key, 0) <= n, (file, board, key)
        assert e.ii_cycles >= e.bound.ii_cycles > 0


#: stems folded over their kernel taps (simd = IC * taps a word): ResNet-8's 3-channel 3x3 stem
#: with the whole window a word (simd 27), DS-CNN's 1-channel 10x4 first conv with five kernel
#: rows a word (simd 20); every other layer at pe = simd = 1
TAP_STEMS = {"mlperf_resnet8_w8a8.onnx": ("conv:/stem/stem.0/Conv", 2, 27),
             "mlperf_dscnn_w8a8.onnx": ("conv:/body/body.0/Conv", 4, 20)}  # fmt: skip


@pytest.mark.parametrize("file", sorted(TAP_STEMS))
def test_tap_parallel_stem_csim_equals_golden(tmp_path, file):
    layer, pe, simd = TAP_STEMS[file]
    model = compiled(file)
    x = vectors(file)
    outdir = generate(model, FoldingPlan({layer: LayerFold(pe, simd)}), tmp_path / "d", vectors=(x,))
    configs = "".join(f.read_text() for f in (outdir / "hls" / "config").glob("*.h"))
    assert f"TAPS_PER_WORD = {simd // model.graph.tensors[model.graph.op(layer).inputs[0]].shape[-1]};" in configs
    result = csim_bit_exact(outdir, len(x), keep_outputs=True)
    hw = host_epilogue(outdir, result["outputs"])
    for name, want in golden.run(model.graph, x).items():
        np.testing.assert_array_equal(hw[name], want)


#: MobileNet's first two depthwise layers at every channel with tap words: 48x48x8 with the whole
#: 3x3 window a word (simd 9), 48x48x16 at stride 2 with a kernel row a word (simd 3)
TAP_DEPTHWISE = {"conv:/body/body.3/Conv": LayerFold(8, 9), "conv:/body/body.9/Conv": LayerFold(16, 3)}


def test_tap_parallel_depthwise_csim_equals_golden(tmp_path):
    """MobileNetV1 0.25 at its planned ultra96 folding with its first depthwise layers
    tap-parallel (convolution-order tap words, no gearbox): one vector, every layer bit-exact.
    The rest of the plan has depthwise layers at a pe that pads the last channel fold and
    pointwise layers at a simd that pads the last word of a pixel's channels."""
    file = "mlperf_mobilenet_w8a8.onnx"
    model = compiled(file)
    x = vectors(file)[:1]
    e = explore(model.graph, get_board("ultra96"))
    convs = [(lp, int(lp.layer.op.weights.shape[0])) for lp in e.layers if isinstance(lp.layer.op, ir.Conv)]
    padded_dw = [lp.name for lp, oc in convs if conv.is_depthwise(lp.layer.op) and oc % lp.fold.pe]
    padded_simd = [lp.name for lp, _ in convs if not conv.is_depthwise(lp.layer.op)
                   and conv.reduction(lp.layer.spec) % lp.fold.simd]  # fmt: skip
    assert len(set(padded_dw) - set(TAP_DEPTHWISE)) >= 2 and len(padded_simd) >= 3
    plan = FoldingPlan({**e.plan().layers, **TAP_DEPTHWISE})
    outdir = generate(model, plan, tmp_path / "d", vectors=(x,))
    configs = {f.name: f.read_text() for f in (outdir / "hls" / "config").glob("*.h")}
    for layer, fold in TAP_DEPTHWISE.items():
        stem = "_body_" + layer.split("/")[2].replace(".", "_") + "_Conv.h"
        (text,) = [t for n, t in configs.items() if n.endswith(stem)]
        assert f"TAPS_PER_WORD = {fold.simd};" in text and "DEPTHWISE = false;" in text
    result = csim_bit_exact(outdir, 1, keep_outputs=True)
    assert len([r for r in result["layers"] if r["kind"] == "layer"]) == len(read_design(outdir)["layers"])
    hw = host_epilogue(outdir, result["outputs"])
    for name, want in golden.run(model.graph, x).items():
        np.testing.assert_array_equal(hw[name], want)
