"""Write a fully unrolled RTL design directory: Verilog, cocotb testbench, Yosys script.

lowered graph -> :mod:`core` (the integer chain, fit check) -> :mod:`netlist` (per-layer
dicts) -> Jinja templates in ``templates/rtl`` (StrictUndefined) -> files, written to a
temporary directory beside OUTDIR and renamed into place. Same graph and options give
byte-identical files.

The directory::

    design.json        ports, lanes, latency, per-layer figures, the estimate
    core.json          the integer layers (weights, requantizers): the golden model of the design
    rtl/*.v            <top>.v (AXI-Stream wrapper), <top>_core.v, one <top>_l<i>.v per layer
    tb/test_accel.py   cocotb test: golden vectors through AXI-Stream with random back-pressure
    tb/run.py          builds and runs it with cocotb's Python runner (Verilator or Icarus)
    tb/file_tb.v       a plain testbench, hex files in and out: `accelgen run` (runtime/rtl_backend.py)
    program.json/.npz  the whole model for the runtime: host prologue and epilogue around the core
    synth/synth.ys     Yosys synth_xilinx -family xcup script
    Makefile           make sim SIM=icarus|verilator, make synth
    README.md          what the design is and how to rerun it
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from accelgen import golden, ir
from accelgen.errors import InputError
from accelgen.rtl import axi as axi_mod
from accelgen.rtl import core as core_mod
from accelgen.rtl import estimate as estimate_mod
from accelgen.rtl.names import identifier
from accelgen.rtl.netlist import Encoding, lane_bits_for, lower_core
from accelgen.templating import environment

FORMAT = "accelgen-rtl/1"


def check_fits(graph: ir.Graph, *, max_luts: int | None = None) -> None:
    """Raise InputError unless the unrolled architecture can build ``graph``'s core.

    Accepts a chain of fully connected layers with weights of at most 4 bits, hidden
    activations of at most 4 bits and input codes of at most 8 bits, whose estimated size
    is at most ``max_luts`` LUTs (default: the largest supported part). The message names
    every offending layer, why, and the architecture to use instead.
    """
    core = core_mod.extract_core(graph)
    problems = core_mod.fit_problems(core)
    if problems:
        raise InputError(
            "the fully unrolled RTL architecture cannot build this model:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + f"\n{core_mod.OTHER_ARCH}"
        )
    limit = max_luts if max_luts is not None else core_mod.DEFAULT_MAX_LUTS
    layers, *_ = lower_core(core, [1] * len(core.dense), share_sums=True)
    luts = estimate_mod.estimate(layers, len(layers))["lut"]
    if luts > limit:
        raise InputError(
            f"the fully unrolled RTL design of '{graph.name}' needs about {luts:,} LUTs, more than the "
            f"{limit:,} available; {core_mod.OTHER_ARCH}"
        )


def _levels(pipeline_levels: int | Sequence[int], n: int, combinational: bool) -> list[int]:
    if combinational:
        return [0] * n
    levels = [pipeline_levels] * n if isinstance(pipeline_levels, int) else list(pipeline_levels)
    if len(levels) != n or any(not isinstance(v, int) or v < 0 for v in levels):
        raise InputError(
            f"pipeline_levels must be a non-negative integer or one per layer ({n} layers), not {pipeline_levels!r}"
        )
    return levels


def _port(enc: Encoding | None, t: ir.Tensor, size: int, acc_width: int, bits_of_u: int) -> dict[str, Any]:
    """Lanes of an AXI-Stream port: one per element, codes sign- or zero-extended."""
    if enc is None:  # raw accumulator
        code_bits, signed, label = acc_width, True, f"int{acc_width} accumulator"
        shift, adds = 0, [0] * size
    else:
        q = t.qtype
        signed = q.qmin < 0
        code_bits = 2 if q.bipolar else q.bits
        code_bits = max(code_bits, bits_of_u + (enc.step.bit_length() - 1))
        label = q.describe()
        shift = enc.step.bit_length() - 1
        adds = [enc.base_of(c) % (1 << code_bits) for c in range(size)]
    lane = lane_bits_for(code_bits)
    return {
        "size": size,
        "lane_bits": lane,
        "bits": code_bits if enc is None else (1 if t.qtype.bipolar else t.qtype.bits),
        "bipolar": enc is not None and t.qtype.bipolar,
        "code_bits": code_bits,
        "u_bits": bits_of_u,
        "shift": shift,
        "signed": signed,
        "describe": label,
        "elements": [{"lane_lsb": i * lane, "add": adds[i]} for i in range(size)],
    }


def _input_port(enc: Encoding, t: ir.Tensor) -> dict[str, Any]:
    q = t.qtype
    lane = lane_bits_for(enc.bits if not q.bipolar else 2)
    add = (-q.qmin) % (1 << enc.bits)
    return {
        "size": enc.size,
        "lane_bits": lane,
        "bits": enc.bits,
        "bipolar": q.bipolar,
        "signed": q.qmin < 0,
        "qmin": q.qmin,
        "qmax": q.qmax,
        "describe": q.describe(),
        "elements": [{"lane_lsb": i * lane, "lane_msb": i * lane + lane - 1, "add": add} for i in range(enc.size)],
    }


def _power_of_two(step: int) -> bool:
    return step > 0 and step & (step - 1) == 0


def choose_pipeline(core: core_mod.Core, clock_mhz: float, part: str | None) -> tuple[list[int], dict[str, Any]]:
    """Register stages per layer so each stage's estimated delay fits the clock period.

    Every layer starts with one stage (its output register); a layer whose longest stage
    path is estimated too slow (:func:`estimate.stage_ns`, the family's per-level delay
    model) gets one more, until it fits or every stage unit of the layer has its register.
    Returns the stages and the timing section of design.json.
    """
    if not clock_mhz or clock_mhz <= 0:
        raise InputError(f"the target clock must be a positive frequency in MHz, not {clock_mhz!r}")
    family = estimate_mod.family_of(part)
    limit = estimate_mod.max_levels(clock_mhz, family)
    levels = [1] * len(core.dense)
    while True:
        shared = lower_core(core, levels, share_sums=True)[0]
        depth = [estimate_mod.layer_levels(layer) for layer in shared]
        grow = [i for i, (d, layer) in enumerate(zip(depth, shared)) if d > limit and levels[i] < layer["units"]]
        if not grow:
            break
        for i in grow:
            levels[i] += 1
    period = 1e3 / clock_mhz
    delays = [estimate_mod.stage_ns(d, family) for d in depth]
    timing = {
        "clock_mhz": clock_mhz,
        "period_ns": round(period, 3),
        "family": family,
        "part": part,
        "delay_model": dict(estimate_mod.DELAY_MODELS[family]),
        "max_levels_per_stage": limit,
        "stage_levels": depth,
        "stage_ns": delays,
        "meets_clock": all(d <= period for d in delays),
        "source": "per-level delay model (accelgen/rtl/estimate.py DELAY_MODELS): an estimate, not timing analysis",
    }
    return levels, timing


def describe(
    graph: ir.Graph,
    *,
    pipeline_levels: int | Sequence[int] = 1,
    combinational: bool = False,
    top: str | None = None,
    clock_mhz: float | None = None,
    part: str | None = None,
) -> dict[str, Any]:
    """Everything the templates need, as plain data (also the content of design.json).

    With ``clock_mhz`` the register stages per layer are chosen for that clock on ``part``
    (:func:`choose_pipeline`) and ``pipeline_levels`` is ignored.
    """
    check_fits(graph)
    core = core_mod.extract_core(graph)
    dense = core.dense
    timing = None
    if clock_mhz is not None and not combinational:
        pipeline_levels, timing = choose_pipeline(core, clock_mhz, part)
    levels = _levels(pipeline_levels, len(dense), combinational)
    layers, enc_in, enc_out, acc_width = lower_core(core, levels)
    module = identifier(top or f"accel_{graph.name}", prefix="accel")
    for i, (layer, op) in enumerate(zip(layers, dense)):
        layer["module"] = f"{module}_l{i}"
        layer["label"] = identifier(op.source or op.name, prefix="layer")
    if enc_out is not None and not _power_of_two(enc_out.step):
        raise InputError(f"output step {enc_out.step} is not a power of two; the RTL path cannot encode it")
    latency = sum(layer["registers"] for layer in layers)
    shared = lower_core(core, levels, share_sums=True)[0]
    for layer, cells, alone in zip(layers, estimate_mod.stage_paths(shared), shared):
        # per-layer figures for the report: the longest register-to-register path in cells,
        # and the layer's own share of the LUT / FF estimate
        own = estimate_mod.estimate([alone], 0)
        layer["stage_cells"] = cells
        layer["estimate"] = {"lut": own["lut"], "ff": own["ff"], "carry": own["carry"]}
    out_bits = acc_width if enc_out is None else enc_out.bits
    port_in = _input_port(enc_in, core.input)
    port_out = _port(enc_out, core.output, layers[-1]["out_size"], acc_width, out_bits)
    design = {
        "format": FORMAT,
        "model": identifier(graph.name, prefix="model"),
        "top": module,
        "core_module": f"{module}_core",
        "files": [f"rtl/{layer['module']}.v" for layer in layers] + [f"rtl/{module}_core.v", f"rtl/{module}.v"],
        "input": port_in,
        "output": {**port_out, "kind": "acc" if enc_out is None else "codes"},
        "latency_cycles": latency,
        "ii_cycles": 1,
        "combinational": latency == 0,
        "pipeline_levels": [layer["registers"] for layer in layers],
        "layers": layers,
        "core": core_mod.core_to_json(core),
        "estimate": estimate_mod.estimate(shared, latency),
        "timing": timing,
    }
    design["axi"] = axi_mod.wrapper(design)
    # the board's sources: the core's and the wrapper around it (the block design adds these)
    design["board"] = {**axi_mod.board_ports(design), "files": [*design["files"], f"rtl/{design['axi']['module']}.v"]}
    return design


def _environment() -> jinja2.Environment:
    return environment("rtl")


def render(design: dict[str, Any]) -> dict[str, str]:
    """Relative path -> file text for a design description."""
    env = _environment()
    top = design["top"]
    files: dict[str, str] = {}
    for layer in design["layers"]:
        files[f"rtl/{layer['module']}.v"] = env.get_template("layer.v.j2").render(layer=layer, module=layer["module"])
    core = {"module": design["core_module"], "layers": design["layers"], "latency": design["latency_cycles"],
            "input": design["input"], "output": design["output"]}  # fmt: skip
    files[f"rtl/{top}_core.v"] = env.get_template("core.v.j2").render(core=core)
    wrapper = {"module": top, "core_module": design["core_module"], "latency": design["latency_cycles"],
               "input": design["input"], "output": design["output"]}  # fmt: skip
    files[f"rtl/{top}.v"] = env.get_template("top.v.j2").render(top=wrapper)
    files[f"rtl/{design['axi']['module']}.v"] = env.get_template("axi.v.j2").render(a=design["axi"])
    for name in ("tb/test_accel.py", "tb/run.py", "tb/file_tb.v", "synth/synth.ys", "Makefile", "README.md"):
        files[name] = env.get_template(f"{name}.j2").render(design=design)
    summary = {k: v for k, v in design.items() if k not in ("layers", "core", "axi")}
    summary["layers"] = [
        {k: v for k, v in layer.items() if k not in ("signals", "outputs")} for layer in design["layers"]
    ]
    files["design.json"] = json.dumps(summary, indent=1, sort_keys=True) + "\n"
    files["core.json"] = json.dumps(design["core"], sort_keys=True, separators=(",", ":")) + "\n"
    return files


def generate(
    graph: ir.Graph,
    outdir: str | os.PathLike,
    *,
    pipeline_levels: int | Sequence[int] = 1,
    combinational: bool = False,
    x_codes: np.ndarray | None = None,
    top: str | None = None,
    clock_mhz: float | None = None,
    part: str | None = None,
) -> Path:
    """Write the unrolled design of ``graph`` to ``outdir`` (replaced atomically); return it.

    ``pipeline_levels``: register stages per layer (an int, or one per layer); the adder
    tree and requantizer are cut into that many equal parts, the last register at the
    layer's output; ``clock_mhz`` (and the board's ``part``) chooses them per layer for that
    clock instead. ``combinational``: no register at all (latency 0). ``x_codes``: core
    input codes to store as the testbench's vectors, with golden expected outputs.
    """
    design = describe(graph, pipeline_levels=pipeline_levels, combinational=combinational, top=top,
                      clock_mhz=clock_mhz, part=part)  # fmt: skip
    files = render(design)
    if x_codes is not None:
        x, y = _vectors(graph, design, x_codes)
        files.update(_npy_files(x, y))
    files.update(_program_files(graph))
    return _write_atomically(Path(outdir), files)


def _program_files(graph: ir.Graph) -> dict[str, bytes]:
    """program.json / program.npz (the runtime's description of the whole model), as bytes."""
    from accelgen.runtime import save_program

    with tempfile.TemporaryDirectory() as tmp:
        save_program(*graph.to_program(), Path(tmp) / "program.json")
        return {name: (Path(tmp) / name).read_bytes() for name in ("program.json", "program.npz")}


def load_design(outdir: str | os.PathLike) -> dict[str, Any]:
    """The design.json of a generated directory."""
    path = Path(outdir) / "design.json"
    if not path.is_file():
        raise InputError(f"{outdir} is not a generated RTL design (no design.json)")
    return json.loads(path.read_text())


def _vectors(graph: ir.Graph, design: dict[str, Any], x_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    core_graph = core_mod.graph_from_json(design["core"])
    return expected_outputs(core_graph, x_codes)


def expected_outputs(core_graph: ir.Graph, x_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, golden outputs) as (N, elements) int64 arrays for the core graph."""
    t_in = core_graph.tensors[core_graph.inputs[0]]
    x = np.asarray(x_codes).astype(np.int64)
    x = x.reshape((x.shape[0], *t_in.shape[1:]))
    y = golden.run(core_graph, {core_graph.inputs[0]: x})[core_graph.outputs[0]]
    return x.reshape(x.shape[0], -1), np.asarray(y, dtype=np.int64).reshape(x.shape[0], -1)


def _npy_files(x: np.ndarray, y: np.ndarray) -> dict[str, bytes]:
    import io

    out = {}
    for name, arr in (("tb/vectors/x_codes.npy", x), ("tb/vectors/y_expected.npy", y)):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr, dtype=np.int64), allow_pickle=False)
        out[name] = buf.getvalue()
    return out


def _write_atomically(outdir: Path, files: dict[str, str | bytes]) -> Path:
    """Write every file into a fresh directory beside ``outdir``, then swap it into place."""
    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        for rel, content in sorted(files.items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        (tmp / "tb" / "run.py").chmod(0o755)
        os.chmod(tmp, 0o755)
        old = None
        if outdir.exists():
            old = outdir.with_name(f".{outdir.name}.old-{os.getpid()}")
            outdir.rename(old)
        tmp.rename(outdir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return outdir
