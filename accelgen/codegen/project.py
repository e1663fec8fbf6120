"""Render a dataflow design into a Vitis HLS project: OUTDIR/hls and OUTDIR/scripts.

::

    hls/top.cpp top.h            the DATAFLOW top (axis in/out, s_axilite control)
    hls/config/<layer>.h         one config struct per kernel instance, per layer
    hls/params/<layer>.h         weights packed at their real bit width, requantizer tables
    hls/tb.cpp emu.cpp emu.h     C testbench and the emulator's C interface
    hls/lib/accelgen/            the kernel library (a copy of the repository's hls/)
    hls/vectors/                 golden vectors: inputs, every layer's output, outputs
    hls/design.json              what the files hold: ports, layers, vectors (for tools)
    hls/program.json/.npz        the lowered graph (host prologue/epilogue of the emulator)
    scripts/hls.tcl              Vitis HLS: csim, csynth, cosim, export_design
    scripts/bd.tcl               Vivado block design for the board's PS family, to bitstream
    scripts/Makefile             csim with g++, hls, bitstream

Rendering is deterministic (the same inputs give byte-identical files) and the output
is written atomically: into a hidden sibling directory, then renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from accelgen import __version__, golden, ir, vendor
from accelgen.codegen.connect import Design, build_design
from accelgen.codegen.names import identifier
from accelgen.codegen.types import CodeType
from accelgen.config import DEFAULT_VECTORS
from accelgen.errors import InputError, InternalError
from accelgen.kernels import shell
from accelgen.plan import FoldingPlan
from accelgen.resources import data_dir
from accelgen.runtime import save_program
from accelgen.templating import environment

DESIGN_FORMAT = "accelgen-hls"
DESIGN_VERSION = 1
DEFAULT_BUS_BITS = shell.DEFAULT_BUS_BITS  # one definition: the width the explorer costs
#: samples per call of the top function inside the emulator
EMU_CHUNK = 256
#: random input samples when no vectors are given
DEFAULT_RANDOM_VECTORS = DEFAULT_VECTORS  # one default for generate() and accelgen build


# -- inputs -----------------------------------------------------------------------------------------


def _graph_of(compiled_or_graph) -> tuple[ir.Graph, str]:
    if isinstance(compiled_or_graph, ir.Graph):
        return compiled_or_graph, compiled_or_graph.name
    graph = getattr(compiled_or_graph, "graph", None)
    if not isinstance(graph, ir.Graph):
        raise InputError("generate() takes a compiled model (accelgen.compile_model) or a lowered ir.Graph")
    return graph, Path(getattr(compiled_or_graph, "model_path", graph.name)).stem


def _input_real_range(graph: ir.Graph, name: str) -> tuple[float, float]:
    """The real range the first quantizer of a float input can represent ([0, 1) if none)."""
    reader = {name}
    for op in graph.ops:
        if not reader.intersection(op.inputs):
            continue
        if isinstance(op, ir.Quantize):
            q = op.qtype
            scale, zp = min(q.scale), int(q.zero_point[0])
            return scale * (q.qmin - (0 if q.bipolar else zp)), scale * (q.qmax - (0 if q.bipolar else zp))
        reader.update(op.outputs)  # layout ops on the way (Transpose)
    return 0.0, 1.0


def default_inputs(graph: ir.Graph, samples: int) -> dict[str, np.ndarray]:
    """Deterministic random model inputs: float inputs uniform over the range their
    quantizer represents (so every input code occurs), codes uniform."""
    rng = np.random.default_rng(0)
    out = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        shape = (samples, *[int(d) for d in t.shape[1:]])
        if t.kind == "float":
            lo, hi = _input_real_range(graph, name)
            out[name] = rng.uniform(lo, hi, shape).astype(np.float32)
        else:
            out[name] = rng.integers(t.qtype.qmin, t.qtype.qmax + 1, shape)
            if t.qtype.bipolar:
                out[name] = np.where(out[name] > 0, 1, -1)
    return out


def _vector_inputs(graph: ir.Graph, vectors) -> dict[str, np.ndarray]:
    if vectors is None:
        return default_inputs(graph, DEFAULT_RANDOM_VECTORS)
    if isinstance(vectors, dict):
        return vectors
    if isinstance(vectors, np.ndarray):
        vectors = (vectors,)
    vectors = tuple(vectors)
    if len(vectors) != len(graph.inputs):
        raise InputError(f"vectors: the model has {len(graph.inputs)} input(s), {len(vectors)} array(s) given")
    return dict(zip(graph.inputs, vectors))


# -- vectors ----------------------------------------------------------------------------------------


def _vector_bytes(code: CodeType) -> int:
    for nbytes in (1, 2, 4, 8):
        if -(1 << (8 * nbytes - 1)) <= code.lo and code.hi <= (1 << (8 * nbytes - 1)) - 1:
            return nbytes
    raise InternalError(f"{code.bits}-bit values do not fit a vector file")


def _write_vector(path: Path, values: np.ndarray, nbytes: int) -> None:
    arr = np.ascontiguousarray(np.asarray(values, dtype=np.int64).reshape(-1))
    path.write_bytes(arr.astype(f"<i{nbytes}").tobytes())


def _tb_tensor(ident: str, file: str, code: CodeType, shape: list[int], elements: int) -> dict:
    rank3 = len(shape) == 3
    return {
        "ident": ident, "file": file, "bytes": _vector_bytes(code), "elements": elements,
        "rank": 3 if rank3 else 1, "dims": shape if rank3 else [elements, 0, 0],
    }  # fmt: skip


# -- rendering --------------------------------------------------------------------------------------


def _guard(*parts: str) -> str:
    return "_".join(p.upper() for p in parts) + "_H"


def widest_word(design: Design) -> int:
    """Bits of the design's widest ap_uint: the bus, a stream word, a SIMD word of weights or a
    width converter's register (the generated sources raise AP_INT_MAX_W to it when it is over
    ap_int's default 1024)."""
    widths = [design.bus_bits, *(s.bits for s in design.streams)]
    for k in design.kernels:
        f = k.fields if isinstance(k.fields, dict) else {}
        if f.get("weight_code") and "simd" in f:
            widths.append(int(f["simd"]) * int(f["weight_code"]["bits"]))
        if k.function == "gearbox":  # its shift register holds an input and an output word
            widths.append(int(f["in_bits"]) + int(f["out_bits"]))
    return max(widths)


def render_files(design: Design, board: dict[str, Any], clock_mhz: float, model_name: str) -> dict[str, str]:
    """Every text file of hls/ and scripts/ (relative path -> content)."""
    env = environment()  # the one Jinja environment (accelgen.templating)
    common = {
        "version": __version__, "top": design.top, "namespace": design.namespace, "bus_bits": design.bus_bits,
        "inputs": design.inputs, "outputs": design.outputs, "layers": design.layers, "word_bits": widest_word(design),
    }  # fmt: skip
    files: dict[str, str] = {}
    for b in design.blocks:
        title = f"{b.kind} {b.ident} ({b.label})"
        files[f"hls/config/{b.ident}.h"] = env.get_template("hls/layer_config.h.j2").render(
            **common, title=title, kernels=b.kernels, guard=_guard(design.top, b.ident, "config")
        )
        if b.params:
            files[f"hls/params/{b.ident}.h"] = env.get_template("hls/layer_params.h.j2").render(
                **common, block=b, guard=_guard(design.top, b.ident, "params")
            )
    files["hls/config/plumbing.h"] = env.get_template("hls/layer_config.h.j2").render(
        **common, title="the stream plumbing (forks, width converters)", kernels=design.plumbing,
        guard=_guard(design.top, "plumbing", "config"),
    )  # fmt: skip
    files["hls/top.h"] = env.get_template("hls/top.h.j2").render(**common, guard=_guard(design.top, "top"))
    files["hls/top.cpp"] = env.get_template("hls/top.cpp.j2").render(
        **common, blocks=design.blocks, streams=design.streams, kernels=design.kernels
    )
    files["hls/emu.h"] = env.get_template("hls/emu.h.j2").render(**common, guard=_guard(design.top, "emu"))
    files["hls/emu.cpp"] = env.get_template("hls/emu.cpp.j2").render(**common, chunk=EMU_CHUNK)
    tb = {
        "tb_inputs": [_tb_tensor(p.name, f"{p.name}.bin", p.code, _hwc(p.shape), p.elements) for p in design.inputs],
        "tb_outputs": [_tb_tensor(p.name, f"{p.name}.bin", p.code, _hwc(p.shape), p.elements) for p in design.outputs],
        "tb_layers": [_tb_tensor(t["ident"], f"{t['ident']}.bin", CodeType(**t["code"]), _hwc(t["shape"]), t["elements"])
                      for t in design.layers],
    }  # fmt: skip
    files["hls/tb.cpp"] = env.get_template("hls/tb.cpp.j2").render(**common, **tb)
    scripts = {**common, **vendor.script_values(board, clock_mhz, model_name, design.top, design.bus_bits),
               "ap_types": _ap_types_for_make()}  # fmt: skip
    files["scripts/hls.tcl"] = env.get_template("scripts/hls.tcl.j2").render(**scripts)
    files["scripts/bd.tcl"] = env.get_template(f"scripts/bd_{board['processing_system']}.tcl.j2").render(**scripts)
    files["scripts/Makefile"] = env.get_template("scripts/Makefile.j2").render(**scripts)
    return files


def _ap_types_for_make() -> str:
    """The ap_types directory, resolved now so the Makefile needs no Python (empty when none
    is installed: the Makefile then says how to give one)."""
    from accelgen.csim import ap_types_dir

    try:
        return vendor.make_path(ap_types_dir())
    except InputError:
        return ""


def _hwc(shape: list[int]) -> list[int]:
    return shape if len(shape) == 3 else [int(np.prod(shape))]


def design_json(design: Design, model_name: str, board: dict, clock_mhz: float, samples: int) -> dict[str, Any]:
    def port(p) -> dict:
        return {
            "name": p.name, "tensor": p.tensor, "shape": p.shape, "elements": p.elements, "code": p.code.as_dict(),
            "codes_per_word": p.lanes_per_word, "words_per_sample": p.words, "vector": f"vectors/{p.name}.bin",
            "vector_bytes": _vector_bytes(p.code),
        }  # fmt: skip

    return {
        "format": DESIGN_FORMAT,
        "version": DESIGN_VERSION,
        "accelgen_version": __version__,
        "model": model_name,
        "top": design.top,
        "board": board["name"],
        "part": board["part"],
        "clock_mhz": clock_mhz,
        "bus_bits": design.bus_bits,
        "tlast": "last beat of each call (batch of reps samples)",
        "inputs": [port(p) for p in design.inputs],
        "outputs": [port(p) for p in design.outputs],
        "layers": [
            {
                **layer,
                "vector": f"vectors/{layer['ident']}.bin",
                "vector_bytes": _vector_bytes(CodeType(**layer["code"])),
            }
            for layer in design.layers
        ],  # fmt: skip
        "vectors": {"samples": samples},
        "emulator": {
            "entry": f"{design.top}_emulate",
            "parallel_entry": f"{design.top}_emulate_parallel",
            "layers_entry": f"{design.top}_emulate_layers",
            "signature": "int entry(const int64** inputs, int64** outputs, unsigned samples[, unsigned threads])",
        },
    }


def _write_vectors(root: Path, design: Design, graph: ir.Graph, inputs: dict[str, np.ndarray]) -> int:
    env = golden.run(graph, inputs, keep=True)
    vdir = root / "hls" / "vectors"
    vdir.mkdir(parents=True)
    samples = 0
    for p in [*design.inputs, *design.outputs]:
        values = env[p.tensor]
        samples = values.shape[0]
        _write_vector(vdir / f"{p.name}.bin", values, _vector_bytes(p.code))
    for layer in design.layers:
        _write_vector(vdir / f"{layer['ident']}.bin", env[layer["tensor"]], _vector_bytes(CodeType(**layer["code"])))
    return samples


def _copy_library(dst: Path) -> None:
    src = data_dir("hls") / "accelgen"
    target = dst / "hls" / "lib" / "accelgen"
    target.mkdir(parents=True)
    for f in sorted(src.glob("*.h")):
        shutil.copyfile(f, target / f.name)


# -- the entry point -------------------------------------------------------------------------------


def generate(
    compiled_or_graph,
    plan: FoldingPlan | None,
    outdir: str | Path,
    *,
    board=None,
    vectors=None,
    bus_bits: int = DEFAULT_BUS_BITS,
    top: str | None = None,
    clock_mhz: float | None = None,
) -> Path:
    """Write the HLS project of a compiled model: OUTDIR/hls and OUTDIR/scripts.

    ``plan``: the folding plan (None: every layer at pe = simd = 1, the smallest design).
    ``board``: a board name or :class:`accelgen.boards.Board` (default ultra96v2): its part
    and processing system go into the tcl. ``vectors``: the model's float (or integer)
    inputs, one array per graph input, batch first, in the model's own layout; the golden
    model turns them into the testbench's vectors (None: ``config.DEFAULT_VECTORS``
    deterministic random samples). Returns ``outdir``.

    Existing ``hls/`` and ``scripts/`` in OUTDIR are replaced; other files are kept.
    """
    graph, model_name = _graph_of(compiled_or_graph)
    facts = vendor.board_facts(board)
    clock = float(clock_mhz or (plan.clock_mhz if plan is not None and plan.clock_mhz else facts["default_clock_mhz"]))
    top_name = identifier(top or f"accel_{model_name}", max_len=40)
    design = build_design(graph, plan, top=top_name, bus_bits=bus_bits)
    files = render_files(design, facts, clock, model_name)
    inputs = _vector_inputs(graph, vectors)
    outdir = Path(outdir)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.codegen-", dir=outdir.parent))
    try:
        for rel, text in files.items():
            path = stage / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        _copy_library(stage)
        samples = _write_vectors(stage, design, graph, inputs)
        save_program(*graph.to_program(), stage / "hls" / "program.json")
        meta = design_json(design, model_name, facts, clock, samples)
        (stage / "hls" / "design.json").write_text(json.dumps(meta, indent=1) + "\n")
        _publish(stage, outdir, ("hls", "scripts"))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return outdir


def _publish(stage: Path, outdir: Path, parts: tuple[str, ...]) -> None:
    """Move the finished parts into OUTDIR: the whole directory by one rename when OUTDIR
    does not exist yet, else each part by rename (an old part is moved aside first)."""
    if not outdir.exists():
        os.replace(stage, outdir)
        return
    for part in parts:
        new, dst = stage / part, outdir / part
        old = None
        if dst.exists():
            old = outdir / f".{part}.old-{os.getpid()}"
            os.replace(dst, old)
        os.replace(new, dst)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
