"""The stages of accelgen, in order, each timed: the one place the flow is written down.

``compile_model``: frontend -> passes (what `inspect`, `run` and `dse` need).
``build``: compile -> dse -> codegen -> C-simulation -> synthesis -> driver -> report, each
stage logged, timed and checkpointed (:data:`BUILD_STAGES`), written atomically to OUTDIR.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from accelgen import ir
from accelgen.config import DEFAULT_VECTORS, BuildOptions, BuildSettings, CompileConfig, resolve_build
from accelgen.errors import InputError, InternalError, environment_error, is_environment_error
from accelgen.frontend import detect_dialect, import_model, load_model
from accelgen.frontend.check import check_model, check_resources
from accelgen.passes import run_passes
from accelgen.runtime.manifest import MANIFEST, write_manifest
from accelgen.stages import BuildContext, Progress, Skipped, Stage, run_stages
from accelgen.workspace import Workspace, hash_paths


@dataclass
class Compiled:
    """What the front end and passes produce: the lowered graph plus how it was made."""

    model_path: str
    dialect: str
    graph: ir.Graph
    imported: ir.Graph
    timings: dict[str, float] = field(default_factory=dict)


def _stage(timings: dict[str, float], name: str, fn: Callable, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    timings[name] = time.perf_counter() - t0
    return out


def compile_model(model: str | Path | onnx.ModelProto, config: CompileConfig | None = None) -> Compiled:
    """frontend -> passes: read, normalise and lower a quantized ONNX model."""
    config = config or CompileConfig()
    timings: dict[str, float] = {}
    if isinstance(model, onnx.ModelProto):
        proto, path = model, "<memory>"
        check_model(proto, None, proto.graph.name or "the model")
    else:
        path = str(model)
        proto = _stage(timings, "load", load_model, model)
    name = Path(path).stem if path != "<memory>" else (proto.graph.name or "model")
    dialect = detect_dialect(proto)
    imported = _stage(timings, "frontend", import_model, proto, name)
    check_resources(imported)
    lowered = _stage(timings, "passes", run_passes, imported, config)
    lowered.meta["dialect"] = dialect
    return Compiled(path, dialect, lowered, imported, timings)


# ---------------------------------------------------------------------------------------
# accelgen build: the stages after the front end, in order
# ---------------------------------------------------------------------------------------


def _stage_frontend(ctx: BuildContext) -> dict:
    compiled = compile_model(ctx.model_path, ctx.options.compile)
    ctx.compiled = compiled
    (ctx.path / "ir.json").write_text(compiled.graph.dumps() + "\n")
    layers = sum(1 for _ in compiled.graph.integer_ops())
    ctx.log.info("%s: %s dialect, %d integer layers", ctx.model_path.name, compiled.dialect, layers)
    ctx.log.info("architecture %s (%s)", ctx.options.arch, ctx.options.arch_reason)
    ctx.log.info("timings: %s", ", ".join(f"{k} {v:.3f} s" for k, v in compiled.timings.items()))
    return {"dialect": compiled.dialect, "integer_layers": layers}


def _stage_dse(ctx: BuildContext) -> dict:
    from accelgen.dse import explore

    opts: BuildSettings = ctx.options
    ctx.board = opts.board
    ctx.log.info("clock %g MHz (from %s), budget %g of each resource", opts.clock_mhz, opts.clock_source,
                 opts.max_util)  # fmt: skip
    est = explore(ctx.compiled.graph, ctx.board, max_util=opts.max_util, clock_mhz=opts.clock_mhz,
                  target_fps=opts.target_fps, folding=opts.folding, model=ctx.model_path.stem)  # fmt: skip
    ctx.estimate = est
    ctx.plan = est.plan()
    ctx.plan.save(ctx.path / "folding.json")
    ctx.log.info(
        "%s: II %d cycles, %.1f frames/s at %g MHz (estimate)", est.mode, est.ii_cycles, est.fps, est.clock_mhz
    )
    return {"mode": est.mode, "ii_cycles": est.ii_cycles, "fps": est.fps}


def _stage_codegen(ctx: BuildContext) -> dict:
    from accelgen.codegen import generate
    from accelgen.codegen.project import default_inputs

    if ctx.vectors is None:  # deterministic random inputs for C-simulation and the driver
        (ctx.vectors,) = default_inputs(ctx.compiled.graph, DEFAULT_VECTORS).values()

    generate(ctx.compiled, ctx.plan, ctx.path, board=ctx.board, vectors=ctx.vectors,
             clock_mhz=ctx.options.clock_mhz)  # fmt: skip
    files = sorted(
        str(p.relative_to(ctx.path)) for d in ("hls", "scripts") for p in (ctx.path / d).rglob("*") if p.is_file()
    )
    ctx.log.info("wrote %d files under hls/ and scripts/", len(files))
    return {"files": len(files)}


def _csim_key(ctx: BuildContext) -> str:
    from accelgen.csim import build_key

    return hash_paths(ctx.path / "hls" / "vectors", extra=build_key(ctx.path / "hls"))


def _stage_csim(ctx: BuildContext):
    from accelgen.csim import build, run_csim

    if not ctx.options.csim:
        return Skipped("--no-csim")
    result = run_csim(ctx.path)
    (ctx.path / "csim").mkdir(exist_ok=True)  # the emulator library for `run --backend csim`
    shutil.copy2(build(ctx.path).library, ctx.path / "csim" / "libaccel.so")
    summary = {k: result[k] for k in ("passed", "vectors", "mismatches", "first_mismatch")}  # no timings: see logs/
    ctx.log.info("C-simulation: %d vectors, %d mismatching elements (build %.1f s%s, run %.1f s)", result["vectors"],
                 result["mismatches"], result["build_s"], ", cached" if result["cached"] else "", result["run_s"])  # fmt: skip
    if not result["passed"]:
        m = result["first_mismatch"] or {}
        raise InternalError(
            f"C-simulation does not match the golden model: {result['mismatches']} element(s) differ; first at "
            f"layer {m.get('layer')} index {m.get('index')}: expected {m.get('expected')}, got {m.get('got')}. "
            f"The partial build is kept in {ctx.path} (see logs/csim.log)"
        )
    return summary


def _synth_key(ctx: BuildContext) -> str:
    o = ctx.options
    switches = f"cosim={o.cosim} allow_timing={o.allow_timing_violation}"
    return hash_paths(ctx.path / "hls", ctx.path / "scripts", extra=switches)


def _stage_synth(ctx: BuildContext):
    from accelgen import vendor

    run, why = vendor.synthesis_plan(ctx.options.synth)
    if not run:
        return Skipped(why)
    return vendor.synthesize(ctx.path, ctx.ws.log_path("synth"), ctx.options, ctx.log)


def _package(
    ctx: BuildContext, hardware: dict, clock_mhz: float, ii_cycles: int, fps: float, latency_us: float
) -> dict:
    """OUTDIR/driver for either architecture: the PYNQ driver and notebook of ``hardware``
    (accel.json's ports), their texts from the build's figures, the overlay when synthesis made
    one whose timing is met (or allowed; PYNQ wants one basename), and the manifest a driver
    copied to the board checks itself with."""
    from accelgen.package import package_driver
    from accelgen.runtime.pynq_backend import OVERLAY
    from accelgen.vendor import overlay_files

    context = {"model_file": ctx.model_path.name, "title": ctx.model_path.stem, "dialect": ctx.compiled.dialect,
               "board": ctx.board.name, "board_title": ctx.board.title, "clock_mhz": clock_mhz, "ii_cycles": ii_cycles,
               "fps": f"{fps:,.0f}", "latency_us": f"{latency_us:.3f}", "reference_accuracy": "n/a"}  # fmt: skip
    summary = package_driver(ctx.compiled.graph, ctx.path, context=context, hardware=hardware,
                             vectors=ctx.vectors, labels=ctx.labels, backend="pynq")  # fmt: skip
    for src in overlay_files(ctx.path, ctx.results.get("synth")):
        shutil.copy2(src, ctx.path / "driver" / f"{OVERLAY}{src.suffix}")
    write_manifest(ctx.path / "driver")
    return summary


def _stage_package(ctx: BuildContext) -> dict:
    design = json.loads((ctx.path / "hls" / "design.json").read_text())
    hardware = {k: design[k] for k in ("top", "bus_bits", "inputs", "outputs", "part", "clock_mhz") if k in design}
    e = ctx.estimate
    return _package(ctx, hardware, e.clock_mhz, e.ii_cycles, e.fps, e.latency_us)


def _stage_report(ctx: BuildContext) -> dict:
    from accelgen.report import build_report_json, report_files

    report = build_report_json(ctx.estimate, ctx.path, csim=ctx.results.get("csim"), synth=ctx.results.get("synth"),
                               arch=ctx.options.arch, arch_reason=ctx.options.arch_reason)  # fmt: skip
    files = report_files(report, ctx.plan.to_json())
    for name, content in files.items():
        (ctx.path / name).write_bytes(content)
    _write_outdir_readme(ctx, report, tuple(files))
    ctx.report = report
    return {"files": ["report.json", "report.md", "report.png", "README.md"]}


def _write_outdir_readme(ctx: BuildContext, report: dict, written: tuple[str, ...]) -> None:
    """OUTDIR/README.md: what the build holds and the next steps on its board."""
    from accelgen.outdir_readme import render_outdir_readme

    # the workspace writes the manifest last, when it publishes OUTDIR
    (ctx.path / "README.md").write_text(render_outdir_readme(report, ctx.path, (*written, MANIFEST)))


def _restore_csim(ctx: BuildContext, result) -> None:
    ctx.results["csim"] = result


#: The order of `accelgen build`, written once.
BUILD_STAGES: list[Stage] = [
    Stage("frontend", _stage_frontend, outputs=("ir.json",), title="read the model, normalise, lower"),
    Stage("dse", _stage_dse, outputs=("folding.json",), title="plan the folding on the board"),
    Stage("codegen", _stage_codegen, outputs=("hls", "scripts"), title="write the HLS project"),
    Stage(
        "csim",
        _stage_csim,
        outputs=("logs/csim.log", "csim"),
        key=_csim_key,
        restore=_restore_csim,
        title="C-simulation against the golden model",
    ),  # fmt: skip
    # the vendor projects (and the bitstream) live in scripts/, where the tcl scripts create them
    Stage(
        "synth",
        _stage_synth,
        outputs=("scripts", "bitstream", "ip"),
        key=_synth_key,
        title="Vitis HLS and Vivado (when installed)",
    ),
    Stage("package", _stage_package, outputs=("driver",), title="PYNQ driver and notebook"),
    Stage(
        "report",
        _stage_report,
        outputs=("report.json", "report.md", "report.png", "folding.json", "README.md"),
        title="report and README.md",
    ),
]


# -- --arch rtl: the fully unrolled path for tiny networks ------------------------------------

RTL_SIMULATOR = "icarus"


def _hw_input_codes(ctx: BuildContext):
    """The hardware's input codes for the build's test vectors (the golden model's prologue)."""
    from accelgen import golden
    from accelgen.runtime.accelerator import Partition

    graph = ctx.compiled.graph
    if ctx.vectors is None:
        from accelgen.codegen.project import default_inputs

        (ctx.vectors,) = default_inputs(graph, DEFAULT_VECTORS).values()
    (name,) = Partition(graph).hw_inputs
    return golden.run(graph, ctx.vectors, keep=True)[name]


def _stage_rtl(ctx: BuildContext) -> dict:
    from accelgen import rtl

    ctx.board = ctx.options.board
    rtl.check_fits(ctx.compiled.graph)
    ctx.rtl_codes = _hw_input_codes(ctx)
    # register stages per layer for the build's clock on the board's part (a per-level delay model)
    rtl.generate(ctx.compiled.graph, ctx.path / "rtl", x_codes=ctx.rtl_codes, clock_mhz=ctx.options.clock_mhz,
                 part=ctx.board.part)  # fmt: skip
    design = rtl.load_design(ctx.path / "rtl")
    ctx.log.info("wrote the unrolled Verilog to rtl/ (latency %s cycles)", design.get("latency_cycles"))
    return {"latency_cycles": design.get("latency_cycles")}


def _stage_rtl_sim(ctx: BuildContext):
    from accelgen import rtl

    if not ctx.options.csim:
        return Skipped("--no-csim")
    r = rtl.simulate(ctx.path / "rtl", ctx.rtl_codes, simulator=RTL_SIMULATOR)
    ctx.log.info(
        "%s: %s, %d mismatching elements", RTL_SIMULATOR, "passed" if r["passed"] else "FAILED", r["mismatches"]
    )
    if not r["passed"]:
        raise InternalError(f"RTL simulation does not match the golden model: {r['first_mismatch']}; the partial "
                            f"build is kept in {ctx.path}")  # fmt: skip
    return {"passed": True, "vectors": int(len(ctx.rtl_codes)), "mismatches": 0, "simulator": RTL_SIMULATOR,
            "latency_cycles": r["latency_cycles"], "ii_cycles": r["ii_cycles"]}  # fmt: skip


def _stage_yosys(ctx: BuildContext):
    from accelgen import rtl

    if ctx.options.synth == "off":
        return Skipped("--synth off")
    if not rtl.yosys_available():
        if ctx.options.synth == "on":
            raise InputError("--synth on with --arch rtl needs yosys on PATH (apt-get install yosys)")
        return Skipped("yosys not on PATH")

    def heartbeat(line: str) -> None:  # Yosys runs minutes on the larger cores: say it is alive
        ctx.log.info("%s", line)
        print(f"    synth  {line}", file=sys.stderr, flush=True)

    return rtl.synth_yosys(ctx.path / "rtl", progress=heartbeat)


def _stage_rtl_report(ctx: BuildContext) -> dict:
    from accelgen import rtl
    from accelgen.report import rtl_report_files
    from accelgen.rtl.report import build_rtl_report

    sim = ctx.results.get("sim") or {}
    yosys = ctx.results.get("synth") or {}
    report = build_rtl_report(ctx.model_path.stem, ctx.board.name, ctx.options.clock_mhz,
                              rtl.load_design(ctx.path / "rtl"), sim, yosys, ctx.options.arch_reason,
                              board_info=ctx.board.to_json())  # fmt: skip
    files = rtl_report_files(report)
    for name, content in files.items():
        (ctx.path / name).write_bytes(content)
    _write_outdir_readme(ctx, report, tuple(files))
    ctx.report = report
    return {"files": ["report.json", "report.md", "report.png", "README.md"]}


def _stage_rtl_scripts(ctx: BuildContext) -> dict:
    from accelgen import rtl
    from accelgen.rtl.board import render_scripts

    files = render_scripts(rtl.load_design(ctx.path / "rtl"), ctx.board, ctx.options.clock_mhz, ctx.model_path.stem)
    for rel, text in files.items():
        (ctx.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx.path / rel).write_text(text)
    ctx.log.info("wrote the Vivado block design (scripts/bd.tcl: PS + AXI DMA + the core as a module reference)")
    return {"files": sorted(files)}


def _stage_rtl_package(ctx: BuildContext) -> dict:
    from accelgen import rtl
    from accelgen.rtl.board import driver_hardware, throughput

    design = rtl.load_design(ctx.path / "rtl")
    clock = ctx.options.clock_mhz
    rate = throughput(design, clock)
    hardware = driver_hardware(design, ctx.compiled.graph, ctx.board.part, clock)
    return _package(ctx, hardware, clock, rate["ii_cycles"], rate["fps"], rate["latency_us"])


#: The order of `accelgen build --arch rtl`.
RTL_STAGES: list[Stage] = [
    Stage("frontend", _stage_frontend, outputs=("ir.json",), title="read the model, normalise, lower"),
    Stage("rtl", _stage_rtl, outputs=("rtl",), title="unrolled Verilog for the whole network"),
    Stage(
        "sim",
        _stage_rtl_sim,
        outputs=("rtl/tb",),
        title=f"cocotb simulation ({RTL_SIMULATOR}) against the golden model",
    ),
    Stage("synth", _stage_yosys, outputs=("rtl/synth",), title="Yosys synth_xilinx (when installed)"),
    Stage("scripts", _stage_rtl_scripts, outputs=("scripts",), title="Vivado block design of the core"),
    Stage("package", _stage_rtl_package, outputs=("driver",), title="PYNQ driver and notebook"),
    Stage(
        "report",
        _stage_rtl_report,
        outputs=("report.json", "report.md", "report.png", "README.md"),
        title="report and README.md",
    ),
]


class Design:
    """A finished build: its directory, report and a way to run it."""

    def __init__(self, outdir: str | Path) -> None:
        self.outdir = Path(outdir)
        path = self.outdir / "report.json"
        if not path.is_file():
            raise InputError(f"{outdir}: no report.json; is this an accelgen build directory?")
        self.report: dict[str, Any] = json.loads(path.read_text())
        stages = self.outdir / STAGES_FILE
        #: how the build ran: {stage: {status, seconds}} (logs/stages.json)
        self.stages: dict[str, Any] = json.loads(stages.read_text()) if stages.is_file() else {}

    def run(self, x, backend: str = "csim"):
        """Run the model's float inputs (batch first) on ``golden``, ``csim`` or ``pynq``."""
        from accelgen.runtime import Accelerator

        with Accelerator(self.outdir, backend=backend) as accel:
            return accel.run(x)

    def __repr__(self) -> str:
        t = self.report.get("totals", {})
        return f"Design({str(self.outdir)!r}, ii_cycles={t.get('ii_cycles')}, fps={t.get('fps')})"


def build(
    model: str | Path,
    outdir: str | Path | None = None,
    options: BuildOptions | None = None,
    progress: Progress | None = None,
    **option_values: Any,
) -> Design:
    """Build ``model`` into ``outdir`` (default ``<model stem>_<board>/``): the Python API of
    `accelgen build`. Options are :class:`BuildOptions` fields, e.g. ``board="ultra96"``."""
    options = options or BuildOptions(**option_values)
    model_path = Path(model)
    if not model_path.is_file():
        raise InputError(f"{model}: no such file")
    settings = resolve_build(options)
    from accelgen import vendor

    vendor.synthesis_plan(settings.synth)  # --synth on without the tools fails before any work
    outdir = Path(outdir) if outdir is not None else Path(f"{model_path.stem}_{options.board}")
    ws = Workspace(outdir)
    ctx = BuildContext(model_path=model_path, options=settings, ws=ws, vectors=settings.vectors,
                       labels=settings.labels)  # fmt: skip
    try:
        run_stages(ctx, RTL_STAGES if settings.arch == "rtl" else BUILD_STAGES, progress)
        _write_stages(ctx)
        ws.commit()
    except (InternalError, vendor.VendorToolError):
        # the partial directory stays for inspection (a vendor tool's logs and reports, e.g. the
        # timing report of a design that missed timing, are hours of work); the next build cleans it
        raise
    except BaseException as exc:
        ws.discard()
        if is_environment_error(exc):  # a full disk, a read-only file system: not a bug
            raise environment_error(exc, f"-o {outdir}") from None
        raise
    return Design(outdir)


STAGES_FILE = "logs/stages.json"


def _write_stages(ctx: BuildContext) -> None:
    """How this build ran (each stage's status and seconds), kept out of report.json so the
    report is byte-identical for identical inputs."""
    stages = {name: {"status": ctx.status.get(name, "done"), "seconds": round(t, 3)} for name, t in ctx.timings.items()}
    (ctx.path / STAGES_FILE).write_text(json.dumps(stages, indent=1) + "\n")
