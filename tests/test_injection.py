"""No code injection: every template rendered with hostile strings in every field.

A model file's stem, its node and tensor names, and the strings of a board file reach
generated Python, tcl, C++, Verilog, Markdown and JSON. Each must arrive as data: the
generated Python parses and holds the hostile string as a constant, tcl substitutes it to
itself without running anything, C++ compiles, JSON loads it back, and no raw copy of it
appears anywhere else.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import jinja2
import numpy as np
import onnx
import pytest

from accelgen import rtl
from accelgen.boards import get_board
from accelgen.codegen import generate
from accelgen.outdir_readme import render_outdir_readme
from accelgen.package import package_driver
from accelgen.pipeline import compile_model
from accelgen.resources import data_dir
from accelgen.templating import cpp_string, markdown_text, py_literal, tcl_word
from tests.data import as_images, digits_split
from tests.test_hls_kernels import GraphBuilder, qt
from tests.test_tt_hls import add_tt

MODELS = Path(__file__).parent / "models"
#: quotes of every kind, newlines, template syntax, tcl and shell substitution, comment
#: terminators, a preprocessor line, a notebook cell marker, backslashes, non-ASCII
HOSTILE = (
    "m'\"x\n\"\"\"'''{{ 7*7 }}{% raw %}$PWD ${HOME} $(touch PWNED) `touch PWNED` [pwned] ] } {"
    "\\ \\n */ // #include <cstdlib>\n# %%\nimport os; os.system('touch PWNED')\r\t\u00e9\u2028\U0001f600 ?\\?/ %"
)
#: the same, as a file name (no "/" and no NUL)
HOSTILE_STEM = HOSTILE.replace("/", "|")


#: pieces of HOSTILE that survive only if a value reached a file unescaped
RAW_FRAGMENTS = ("$(touch", "[pwned]", "{{ 7*7 }}", "#include <cstdlib>", "os.system(", "${HOME}")


def test_escapes_round_trip():
    assert ast.literal_eval(py_literal(HOSTILE)) == HOSTILE
    tkinter = pytest.importorskip("tkinter")
    tcl = tkinter.Tcl()
    assert tcl.eval(f"set v {tcl_word(HOSTILE)}") == HOSTILE
    assert tcl.eval(f"set v {tcl_word('')}") == ""
    assert "\n" not in cpp_string(HOSTILE) and "?" not in cpp_string(HOSTILE)
    assert "\n" not in markdown_text(HOSTILE) and "\u2028" not in markdown_text(HOSTILE)


def _hostile_model(src: Path, directory: Path) -> Path:
    """A copy of ``src`` whose file stem, node names and tensor names are hostile."""
    model = onnx.load(str(src))
    g = model.graph
    names = {}

    def rename(name: str) -> str:
        if name and name not in names:
            names[name] = f"{HOSTILE}{len(names)}"
        return names.get(name, name)

    for vi in [*g.input, *g.output, *g.value_info]:
        vi.name = rename(vi.name)
    for t in g.initializer:
        t.name = rename(t.name)
    for i, node in enumerate(g.node):
        node.name = f"{HOSTILE}node{i}"
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    g.name = HOSTILE
    path = directory / f"{HOSTILE_STEM}.onnx"
    onnx.save(model, str(path))
    return path


def _hostile_board(name: str):
    return dataclasses.replace(get_board(name), name=HOSTILE, title=HOSTILE, part=HOSTILE, board_part=HOSTILE)


def _kernel_graph():
    """A lowered graph with the kernels the fixture models lack (depthwise, requantize,
    concat, resize), named by hostile strings."""
    b = GraphBuilder(HOSTILE, seed=0)
    x = b.input(f"{HOSTILE}in", (6, 6, 4), qt(4, False))
    depthwise = b.conv(x, 4, (3, 3), qt(4, True), qt(4, False), pads=(1, 1, 1, 1), groups=4)
    graph, plan, _ = b.finish(b.resize(b.concat([depthwise, b.requantize(x, qt(4, False))]), (2, 1)))
    return graph, plan


def _tt_graph():
    """A lowered graph with a TTDense layer, named by hostile strings."""
    b = GraphBuilder(HOSTILE, seed=1)
    x = b.input(f"{HOSTILE}tt", (12,), qt(4, False))
    y = add_tt(b, x, (3, 4), (2, 3), (1, 3, 1), (1, 0), [qt(4, True), qt(3, True)], [qt(5, True)], qt(4, False))
    graph, plan, _ = b.finish(y)
    return graph, plan


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Every template rendered with hostile values; (output directories, templates used)."""
    used: set[Path] = set()
    original = jinja2.Environment.get_template

    def recording(self, name, *args, **kwargs):
        used.add((Path(self.loader.searchpath[0]) / name).resolve())
        return original(self, name, *args, **kwargs)

    jinja2.Environment.get_template = recording
    try:
        root = tmp_path_factory.mktemp("hostile")
        outs = {}
        for model, board in (("qdq_cnn_perchannel_residual.onnx", "ultra96"), ("qonnx_cnn_w4a8.onnx", "pynq-z2")):
            compiled = compile_model(_hostile_model(MODELS / model, root))
            outs[f"hls-{board}"] = generate(compiled, None, root / f"hls-{board}", board=_hostile_board(board))
        outs["hls-kernels"] = generate(*_kernel_graph(), root / "hls-kernels")
        outs["hls-tt"] = generate(*_tt_graph(), root / "hls-tt")
        compiled = compile_model(_hostile_model(MODELS / "qonnx_cnn_w4a8.onnx", root))
        _, _, x, y = digits_split()
        context = dict.fromkeys(
            ("model_file", "title", "dialect", "board", "board_title", "clock_mhz", "ii_cycles", "fps", "latency_us",
             "reference_accuracy"), HOSTILE,
        )  # fmt: skip
        outs["driver"] = root / "driver-build"
        package_driver(compiled.graph, outs["driver"], context=context, hardware={"ip": HOSTILE},
                       vectors=as_images(x[:8]), labels=y[:8], backend="golden")  # fmt: skip
        mlp = compile_model(_hostile_model(MODELS / "qonnx_mlp_w2a2.onnx", root))
        outs["rtl"] = rtl.generate(mlp.graph, root / "rtl", x_codes=np.zeros((2, 64), dtype=np.int64))
        outs["outdir"] = _hostile_outdir_readmes(root / "outdir")
        outs["train"] = _train_project(root / "train")  # numbers only: nothing from a model reaches it
        from accelgen.rtl.board import render_scripts

        outs["rtl-scripts"] = root / "rtl-scripts"
        for rel, text in render_scripts(rtl.load_design(outs["rtl"]), _hostile_board("ultra96"), 150.0, HOSTILE).items():
            (outs["rtl-scripts"] / rel).parent.mkdir(parents=True, exist_ok=True)
            (outs["rtl-scripts"] / rel).write_text(text)
    finally:
        jinja2.Environment.get_template = original
    return outs, used


def _hostile_outdir_readmes(outdir: Path) -> Path:
    """OUTDIR/README.md of both architectures for a hostile model name and board file."""
    outdir.mkdir()
    board = {**get_board("ultra96").to_json(),
             **dict.fromkeys(("name", "title", "part", "board_part", "processing_system", "pynq_notes"), HOSTILE)}  # fmt: skip
    common = {"model": HOSTILE, "clock_mhz": 150.0, "board_info": board, "csim": {"skipped": HOSTILE}}
    reports = {
        "dataflow": {**common, "arch": "dataflow", "totals": {"ii_cycles": 640, "fps": 1e5}, "synth_status": HOSTILE},
        "rtl": {**common, "arch": "rtl", "rtl": {"latency_cycles": 3, "ii_cycles": 1}},
    }
    for arch, report in reports.items():
        (outdir / f"README-{arch}.md").write_text(render_outdir_readme(report, outdir))
    return outdir
def _train_project(outdir: Path) -> Path:
    from accelgen.codegen import train as train_build

    x, y = np.random.default_rng(0).uniform(0, 1, (8, 12)), np.arange(8) % 3
    config, state = train_build.design_from_data((3, 4), (2, 4), (1, 2, 1), 3, x, y, max_batch=16)
    return train_build.generate(config, state, outdir, csim=False).outdir


def test_every_template_is_rendered(rendered):
    _, used = rendered
    templates = {p.resolve() for p in data_dir("templates").rglob("*.j2")}
    assert templates - used == set(), "templates the hostile test does not render"


def _texts(directory: Path):
    for p in sorted(directory.rglob("*")):
        if p.is_file() and p.suffix not in (".bin", ".npy", ".npz", ".so"):
            yield p, p.read_text(encoding="utf-8")


def test_no_raw_hostile_text_outside_json(rendered):
    outs, _ = rendered
    for directory in outs.values():
        for path, text in _texts(directory):
            if path.suffix in (".json", ".ipynb"):
                json.loads(text)
            elif path.suffix != ".py":  # Python: see the AST tests
                assert not [f for f in RAW_FRAGMENTS if f in text], path


def test_json_holds_the_hostile_strings_as_data(rendered):
    outs, _ = rendered
    assert json.loads((outs["driver"] / "driver" / "accel.json").read_text())["model"] == HOSTILE
    assert json.loads((outs["hls-ultra96"] / "hls" / "design.json").read_text())["model"] == HOSTILE_STEM


def _string_constants(source: str) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_generated_python_parses_and_keeps_the_name_as_data(rendered):
    outs, _ = rendered
    driver = outs["driver"] / "driver"
    assert HOSTILE in _string_constants((driver / "run_accelerator.py").read_text())
    nb = json.loads((driver / "notebook.ipynb").read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) == 4, "a name created or removed a notebook cell"
    assert HOSTILE in set().union(*(_string_constants(c) for c in code))
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            assert not [f for f in RAW_FRAGMENTS if f in "".join(c["source"])]
    for name in ("tb/run.py", "tb/test_accel.py"):
        ast.parse((outs["rtl"] / name).read_text())


def test_generated_driver_runs_no_injected_code(rendered, tmp_path):
    driver = rendered[0]["driver"] / "driver"
    proc = subprocess.run([sys.executable, str(driver / "run_accelerator.py"), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, env={"PYTHONPATH": str(driver), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "PWNED").exists() and not (driver / "PWNED").exists()


def test_tcl_takes_the_board_strings_literally(rendered):
    """Evaluate the generated tcl with every vendor command recorded instead of run."""
    tkinter = pytest.importorskip("tkinter")
    outs, _ = rendered
    for board in ("ultra96", "pynq-z2"):
        for script in sorted((outs[f"hls-{board}"] / "scripts").glob("*.tcl")):
            tcl = tkinter.Tcl()
            for cmd in ("exit", "file", "glob", "exec", "open", "source", "cd"):
                tcl.eval(f"catch {{rename {cmd} {{}}}}")
            tcl.eval("set ::calls {}; proc unknown args {lappend ::calls $args; return 100%}")
            tcl.eval(script.read_text())
            calls = [tcl.splitlist(c) for c in tcl.splitlist(tcl.eval("set ::calls"))]
            assert not [c for c in calls if c[0] in ("pwned", "touch")], script
            parts = [c[c.index("-part") + 1] for c in calls if "-part" in c] + [
                c[1] for c in calls if c[0] == "set_part"
            ]
            assert parts and all(p == HOSTILE for p in parts), script
            board_parts = [c[2] for c in calls if c[:2] == ("set_property", "board_part")]
            assert all(p == HOSTILE for p in board_parts) and (board_parts or script.name != "bd.tcl")


@pytest.mark.csim
def test_generated_cpp_compiles_with_hostile_names(rendered):
    from accelgen.csim import ap_types_dir, compiler

    hls = rendered[0]["hls-ultra96"] / "hls"
    for src in ("top.cpp", "emu.cpp", "tb.cpp"):
        proc = subprocess.run([compiler(), "-std=c++14", "-fsyntax-only", "-Wno-unknown-pragmas", "-Wtrigraphs",
                               "-Werror=trigraphs", f"-I{hls / 'lib'}", f"-I{ap_types_dir()}", str(hls / src)],
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]


def test_verilog_names_are_identifiers(rendered):
    import re

    design = json.loads((rendered[0]["rtl"] / "design.json").read_text())
    for module in [design["top"], design["core_module"], design["model"]] + [la["label"] for la in design["layers"]]:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", module), module
