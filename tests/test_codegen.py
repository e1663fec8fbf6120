"""Code generation: safe identifiers, deterministic and atomic output, structure, errors.

Fast tests need no compiler; the adversarial-names design is also compiled and run
through its C testbench (``csim`` marker) to show the escaped names build and work.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from pathlib import Path

import numpy as np
import pytest

from accelgen import ir
from accelgen.codegen import build_design, generate
from accelgen.codegen import project as project_mod
from accelgen.codegen.names import MAX_LEN, RESERVED, Namer, comment_text, identifier
from accelgen.codegen.params import chunk_lanes, pack_words
from accelgen.codegen.types import CodeType, int_type
from accelgen.config import DEFAULT_VECTORS
from accelgen.csim import run_csim
from accelgen.errors import InputError
from accelgen.kernels import kernel_for
from accelgen.kernels.streams import layer_specs
from accelgen.pipeline import compile_model
from accelgen.plan import FoldingPlan, LayerFold
from tests.data import digits_split

MODELS = Path(__file__).parent / "models"
IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

ADVERSARIAL = [
    'conv"quoted"',
    "it's",
    "*/ int evil; /*",
    "line\nbreak\r\nand\ttab",
    '#include "/etc/passwd"',
    "back\\slash\\",
    "trigraph??/",
    "ünïcödé 名前 层",
    "x" * 300,
    "x" * 299 + "y",
    "dup",
    "dup",  # the same name twice
    "Dup",  # differs only in case (one file name on case-insensitive file systems)
    "a/b",
    "a_b",
    "a b",
    "",
    "123starts_with_digit",
    "int",
    "__reserved__",
    "$(rm -rf /)",
    "[exec rm -rf /]; puts {",
]


@pytest.fixture(scope="module")
def mlp():
    return compile_model(MODELS / "qonnx_mlp_w4a4.onnx")


# -- identifiers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_identifier_is_safe(name):
    ident = identifier(name)
    assert IDENT.match(ident), ident
    assert "__" not in ident and len(ident) <= MAX_LEN
    assert ident.lower() not in RESERVED and not keyword.iskeyword(ident)


def test_namer_makes_every_name_unique():
    namer = Namer(reserved=("top",))
    idents = [namer.unique(n) for n in [*ADVERSARIAL, "top", "TOP"]]
    assert len({i.lower() for i in idents}) == len(idents)
    assert all(IDENT.match(i) and len(i) <= MAX_LEN for i in idents)
    # long names that share a prefix stay apart (a hash of the whole name is kept)
    assert identifier("x" * 300) != identifier("x" * 299 + "y")


def test_comment_text_cannot_escape_a_line_comment():
    for name in ADVERSARIAL:
        text = comment_text(name)
        assert "\n" not in text and "\r" not in text and "\\" not in text and "?" not in text
        assert len(text) <= 72


# -- adversarial names through the whole generator -------------------------------------------------


def rename_graph(graph: ir.Graph, names: list[str]) -> ir.Graph:
    """The same graph with every op, tensor and source renamed from ``names`` (cycled; a name
    already taken by another tensor or op gets a '#n' suffix, since those must be distinct)."""
    pool = (names[i % len(names)] for i in range(10_000))

    def distinct(taken: set[str]) -> str:
        name = next(pool)
        while name in taken:
            name = f"{name}#{len(taken)}"
        taken.add(name)
        return name

    tensor_names: set[str] = set()
    op_names: set[str] = set()
    tmap = {t: distinct(tensor_names) for t in graph.tensors}
    tensors = {tmap[k]: dataclasses.replace(t, name=tmap[k]) for k, t in graph.tensors.items()}
    ops = [op.replace(name=distinct(op_names), source=next(pool), inputs=tuple(tmap[t] for t in op.inputs),
                      outputs=tuple(tmap[t] for t in op.outputs)) for op in graph.ops]  # fmt: skip
    io = {tmap[k]: v for k, v in graph.io_dtypes.items()}
    g = graph.copy(name=next(pool), tensors=tensors, ops=ops, inputs=[tmap[t] for t in graph.inputs],
                   outputs=[tmap[t] for t in graph.outputs], io_dtypes=io)  # fmt: skip
    ir.verify(g, lowered=True)
    return g


@pytest.fixture(scope="module")
def adversarial_design(tmp_path_factory):
    """The residual CNN (enough ops and tensors to use every name) renamed adversarially."""
    graph = rename_graph(compile_model(MODELS / "qdq_cnn_perchannel_residual.onnx").graph, ADVERSARIAL)
    _, _, x, _ = digits_split()
    out = generate(graph, None, tmp_path_factory.mktemp("adv") / "design", vectors=(x[:25].reshape(-1, 1, 8, 8),))
    return graph, out


def test_adversarial_names_never_reach_generated_text(adversarial_design):
    graph, out = adversarial_design
    files = [p for p in out.rglob("*") if p.is_file()]
    for p in files:
        rel = p.relative_to(out)
        assert all(IDENT.match(part.split(".")[0]) or part in ("Makefile",) for part in rel.parts), rel
    names = {op.name for op in graph.ops} | {op.source for op in graph.ops} | set(graph.tensors) | {graph.name}
    dangerous = [n for n in names if any(c in n for c in "\"'\n\\#*$[?") or not n.isascii()]
    assert set(ADVERSARIAL) <= names and len(dangerous) >= 10
    for p in files:
        if p.suffix not in (".cpp", ".h", ".tcl") and p.name != "Makefile" or "lib" in p.relative_to(out).parts:
            continue  # (hls/lib is the kernel library, copied, not generated)
        text = p.read_text()
        for n in dangerous:
            assert n not in text, f"{p.name} holds the raw name {n!r}"
        includes = re.findall(r"#include\s+(\S+)", text)
        assert all(re.fullmatch(r'[<"][A-Za-z0-9_./]+[>"]', inc) for inc in includes), includes
        if p.suffix in (".cpp", ".h"):
            for line in text.splitlines():
                assert not line.rstrip().endswith("\\"), f"{p.name}: line continuation {line!r}"


@pytest.mark.csim
def test_adversarial_design_compiles_and_is_bit_exact(adversarial_design):
    _, out = adversarial_design
    result = run_csim(out)
    assert result["passed"] and result["vectors"] == 25, result


# -- deterministic and atomic output ------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generation_is_byte_identical(tmp_path):
    compiled = compile_model(MODELS / "qdq_cnn_perchannel_residual.onnx")
    _, _, x, _ = digits_split()
    x = x[:20].reshape(-1, 1, 8, 8)
    plan = FoldingPlan({"conv:/conv2/Conv": LayerFold(4, 8), "add:/Add": LayerFold(2, 1)}, board="ultra96v2")
    a = generate(compiled, plan, tmp_path / "a", vectors=(x,))
    b = generate(compile_model(MODELS / "qdq_cnn_perchannel_residual.onnx"), plan, tmp_path / "b", vectors=(x,))
    ta, tb = _tree(a), _tree(b)
    assert ta.keys() == tb.keys() and len(ta) > 20
    assert [k for k in ta if ta[k] != tb[k]] == []
    generate(compiled, plan, a, vectors=(x,))  # regenerating in place gives the same bytes
    assert _tree(a) == ta


def test_output_is_atomic(mlp, tmp_path, monkeypatch):
    out = tmp_path / "design"

    def explode(*args, **kwargs):
        raise RuntimeError("interrupted while writing vectors")

    monkeypatch.setattr(project_mod, "_write_vectors", explode)
    with pytest.raises(RuntimeError):
        generate(mlp, None, out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no half-written staging directory left behind
    monkeypatch.undo()
    generate(mlp, None, out)
    before = _tree(out)
    (out / "report.json").write_text("{}")  # a file of another stage survives regeneration
    monkeypatch.setattr(project_mod, "_write_vectors", explode)
    with pytest.raises(RuntimeError):
        generate(mlp, FoldingPlan({"dense:/fc1/Gemm": LayerFold(4, 4)}), out)
    after = _tree(out)
    assert {k: v for k, v in after.items() if k != "report.json"} == before  # the old design is intact
    assert [p.name for p in tmp_path.iterdir()] == ["design"]


def test_design_json_describes_the_files(mlp, tmp_path):
    out = generate(mlp, None, tmp_path / "d")
    meta = project_mod.json.loads((out / "hls" / "design.json").read_text())
    assert meta["format"] == "accelgen-hls" and meta["vectors"]["samples"] == DEFAULT_VECTORS
    for layer in meta["layers"]:
        assert (out / "hls" / layer["vector"]).stat().st_size == DEFAULT_VECTORS * layer["elements"] * layer["vector_bytes"]
    assert (out / "scripts" / "hls.tcl").read_text().count("csim_design") == 1
    assert "zynq_ultra_ps_e" in (out / "scripts" / "bd.tcl").read_text()
    zynq7 = generate(mlp, None, tmp_path / "z7", board="pynq-z2")
    bd = (zynq7 / "scripts" / "bd.tcl").read_text()
    assert "processing_system7" in bd and "xc7z020clg400-1" in bd


# -- structure of the dataflow -----------------------------------------------------------------


def test_residual_fork_gets_a_bypass_fifo_and_converters_follow_the_plan():
    graph = compile_model(MODELS / "qop_cnn_perchannel_residual.onnx").graph
    plan = FoldingPlan({"conv:/conv2/Conv_quant": LayerFold(4, 8), "maxpool:/pool/MaxPool": LayerFold(2, 1)})
    design = build_design(graph, plan, top="t")
    forks = [k for k in design.kernels if k.function == "duplicate"]
    assert len(forks) == 1
    depth = {s.name: s.depth for s in design.streams}
    assert [depth[n] for n in forks[0].outputs] == [2, 2]
    # the bypass sits in front of the join, where the add's cost model prices it: the skip input
    # (read while two 3x3 convolutions fill their line buffers) is deep, the convolution's input is not
    add = next(k for k in design.kernels if k.function == "add")
    skip, main = (depth[n] for n in add.inputs)
    assert skip > 64 and main == 2
    priced = kernel_for(graph.op("add:/Add_quant"))
    spec = layer_specs(graph)["add:/Add_quant"]
    assert [f.depth for f in priced.hardware(spec, LayerFold(1, 1)).fifos] == [skip, main]
    converters = [k for k in design.kernels if k.function == "gearbox"]
    # axis in/out, maxpool (2 lanes) -> conv2 window generator (8 lanes), conv2 (4) -> conv3 (1)
    assert len(converters) >= 4
    assert {k.fields["in_bits"] for k in converters} >= {16, 32}


def test_folding_plan_is_checked_per_layer(mlp):
    # 64 outputs: 9 lanes take 8 folds, as 8 lanes do (5 is legal: 13 folds, the last padded)
    with pytest.raises(InputError, match=r"'dense:/fc1/Gemm' \(Dense\): illegal pe=9 \(legal: 1, 2, 3, 4, 5, 6, 7, 8, 10,"):
        build_design(mlp.graph, FoldingPlan({"dense:/fc1/Gemm": LayerFold(9, 1)}), top="t")
    # 64 inputs: 9 lanes take 8 words, as 8 lanes do (10 is legal: 7 words, the last padded)
    with pytest.raises(InputError, match=r"'dense:/fc2/Gemm' \(Dense\): illegal simd=9 \(legal: 1, 2, 4, 5, 6, 7, 8, 10, 11, 13, 16,"):
        build_design(mlp.graph, FoldingPlan({"dense:/fc2/Gemm": LayerFold(1, 9)}), top="t")
    with pytest.raises(InputError, match=r"dense:/fc2/Gemm.*illegal pixels=2 \(legal: 1\)"):
        build_design(mlp.graph, FoldingPlan({"dense:/fc2/Gemm": LayerFold(1, 1, pixels=2)}), top="t")


def test_pixels_per_cycle_are_checked_against_the_output_width_and_pe():
    graph = compile_model(MODELS / "qonnx_cnn_w4a8.onnx").graph  # conv1: 8 x 8 x 16 out
    with pytest.raises(InputError, match=r"conv:/conv1/Conv.*pixels=3 \(legal: 1, 2, 4, 8\)"):
        build_design(graph, FoldingPlan({"conv:/conv1/Conv": LayerFold(16, 1, pixels=3)}), top="t")
    with pytest.raises(InputError, match=r"pixels=2 with pe=8.*needs pe=16"):
        build_design(graph, FoldingPlan({"conv:/conv1/Conv": LayerFold(8, 1, pixels=2)}), top="t")
    # conv1 reads 1 channel through a 3x3 kernel: simd 3 is three taps a word, 9 the whole window, neither
    # with several pixels
    with pytest.raises(InputError, match=r"conv:/conv1/Conv.*pixels=2 with simd=3.*one kernel tap a word, simd among 1"):
        build_design(graph, FoldingPlan({"conv:/conv1/Conv": LayerFold(16, 3, pixels=2)}), top="t")
    # simd 2 and 5 pad the window's last word; 4 takes 3 words, as 3 does
    with pytest.raises(InputError, match=r"conv:/conv1/Conv' \(Conv\): illegal simd=4 \(legal: 1, 2, 3, 5, 9\)"):
        build_design(graph, FoldingPlan({"conv:/conv1/Conv": LayerFold(16, 4)}), top="t")
    design = build_design(graph, FoldingPlan({"conv:/conv1/Conv": LayerFold(16, 1, pixels=4)}), top="t")
    swg = next(k for k in design.kernels if k.function == "sliding_window")
    mvau = next(k for k in design.kernels if k.function == "mvau")
    streams = {s.name: s for s in design.streams}
    assert swg.fields["pixels_per_cycle"] == mvau.fields["pixels_per_cycle"] == 4
    assert streams[swg.outputs[0]].lanes == 4 and streams[mvau.outputs[0]].lanes == 4 * 16


def _depthwise_graph(kernel: tuple[int, int]) -> ir.Graph:
    q = ir.QType(8, True)
    op = ir.Conv("dw", ("x",), ("y",), weights=np.ones((4, 1, *kernel), np.int64), w_qtype=q, groups=4,
                 requant=None)  # fmt: skip
    oh, ow = 7 - kernel[0] + 1, 6 - kernel[1] + 1
    tensors = {"x": ir.Tensor("x", (None, 7, 6, 4), "codes", q, "NHWC"),
               "y": ir.Tensor("y", (None, oh, ow, 4), "acc", ir.QType(32, True), "NHWC")}  # fmt: skip
    return ir.Graph("t", tensors, [op], ["x"], ["y"])


def test_depthwise_at_every_channel_takes_tap_words():
    """At pe == C a depthwise layer's simd is a tap word (convolution order, no gearbox); below,
    a divisor of the taps gathered by a gearbox; other values are a clear error."""
    graph = _depthwise_graph((3, 2))  # 6 taps: 3 is not a tap word (2 taps of a row, or whole rows: 2, 6)
    with pytest.raises(InputError, match=r"layer 'dw' \(depthwise Conv\): illegal simd=3 with pe=4 \(legal at that pe: 1, 2, 6\)"):
        build_design(graph, FoldingPlan({"dw": LayerFold(4, 3)}), top="t")
    with pytest.raises(InputError, match=r"'dw'.*pixels=5 with simd=2.*simd among 1\)"):
        build_design(graph, FoldingPlan({"dw": LayerFold(4, 2, pixels=5)}), top="t")
    for fold, taps, gearbox in ((LayerFold(4, 6), 6, False), (LayerFold(2, 3), 1, True), (LayerFold(4, 1), 1, False)):
        design = build_design(graph, FoldingPlan({"dw": fold}), top="t")
        swg = next(k for k in design.kernels if k.function == "sliding_window")
        vvau = next(k for k in design.kernels if k.function == "vvau")
        assert swg.fields["taps_per_word"] == taps and swg.fields["depthwise"] == (taps == 1)
        assert any(k.function == "gearbox" and k.outputs == vvau.inputs for k in design.kernels) == gearbox
        streams = {s.name: s for s in design.streams}
        assert streams[vvau.inputs[0]].lanes == fold.pe * fold.simd


def test_weight_packing_and_chunks():
    assert chunk_lanes(16, 4) == 16 and chunk_lanes(32, 4) == 16 and chunk_lanes(20, 4) == 10
    assert chunk_lanes(12, 7) == 6 and chunk_lanes(128, 1) == 64
    m = np.array([[1, -1, 2, -2], [3, 0, -3, 1]])
    # pe = 2: row p to PE p; simd = 2: word = lanes (col 0, col 1) low bits first, 3-bit two's complement
    words = pack_words(m, CodeType(3, True), simd=2, pe=2)
    assert words == [[["39"], ["32"]], [["3"], ["d"]]]  # 0b111_001, 0b110_010 | 0b000_011, 0b001_101


def test_accumulator_types_are_proved_from_ranges():
    assert (int_type(0, 255).bits, int_type(0, 255).signed) == (8, False)
    assert (int_type(-129, 127).bits, int_type(-129, 127).signed) == (9, True)
    graph = compile_model(MODELS / "qonnx_mlp_w4a4.onnx").graph
    design = build_design(graph, None, top="t")
    mvau = [k for k in design.kernels if k.function == "mvau"]
    # fc1 reads int8 codes (-128..127): per output row the sum reaches at most
    # sum(w * 127 for w > 0) + sum(|w| * 128 for w < 0), and at least the mirror image
    w = next(op for op in graph.ops if op.kind == "Dense").weights
    hi = int(np.where(w > 0, 127 * w, -128 * w).sum(axis=1).max())
    lo = int(np.where(w > 0, -128 * w, 127 * w).sum(axis=1).min())
    bits = max((-lo - 1).bit_length(), hi.bit_length()) + 1
    assert mvau[0].fields["acc"] == {"bits": bits, "signed": True}
    assert [k.fields["mac"] for k in mvau] == ["DspMultiply", "LutMultiply", "LutMultiply"]
    binary = build_design(compile_model(MODELS / "qonnx_mlp_w1a1.onnx").graph, None, top="t")
    assert [k.fields["mac"] for k in binary.kernels if k.function == "mvau"] == [
        "SignSelect", "XnorPopcount", "XnorPopcount"]  # fmt: skip


def test_unsupported_padding_of_bipolar_inputs_is_an_input_error():
    t = {
        "x": ir.Tensor("x", (None, 4, 4, 2), "codes", ir.QType(1, True, bipolar=True), "NHWC"),
        "y": ir.Tensor("y", (None, 4, 4, 2), "acc", ir.QType(32, True), "NHWC"),
    }
    conv = ir.Conv("conv", ("x",), ("y",), weights=np.ones((2, 2, 3, 3), np.int64), w_qtype=ir.QType(2, True),
                   pads=(1, 1, 1, 1))  # fmt: skip
    g = ir.Graph("g", t, [conv], ["x"], ["y"])
    with pytest.raises(InputError, match="bipolar"):
        build_design(g, None, top="t")


def test_per_channel_activation_zero_points_are_an_input_error(mlp):
    graph = mlp.graph
    dense = next(op for op in graph.ops if op.kind == "Dense")
    x = graph.tensors[dense.inputs[0]]
    bad = dataclasses.replace(x.qtype, zero_point=tuple(range(64)), scale=(1.0,) * 64, axis=1)
    g = graph.copy(tensors={**graph.tensors, x.name: dataclasses.replace(x, qtype=bad)})
    with pytest.raises(InputError, match="per-channel zero points"):
        build_design(g, None, top="t")


# -- where the ap_types headers come from ------------------------------------------------------


def test_ap_types_come_from_hls4ml_files_without_importing_it():
    import subprocess
    import sys

    probe = (
        "import sys; from accelgen.csim import ap_types_dir; p = ap_types_dir(); "
        "assert (p / 'ap_int.h').is_file() and (p / 'hls_stream.h').is_file(), p; "
        "assert 'hls4ml' not in sys.modules; print(p)"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "XILINX_HLS"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert "hls4ml" in out.stdout and "ap_types" in out.stdout


def test_xilinx_hls_headers_win_when_installed(tmp_path, monkeypatch):
    from accelgen.csim import ap_types_dir

    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "ap_int.h").write_text("// stand-in\n")
    monkeypatch.setenv("XILINX_HLS", str(tmp_path))
    assert ap_types_dir() == tmp_path / "include"
