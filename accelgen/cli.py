"""The `accelgen` command line. Errors become one clear message and an exit code."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from accelgen import __version__, render
from accelgen.boards import DEFAULT_MAX_UTIL
from accelgen.config import ARCHES, AUTO_ARCH_SHORT
from accelgen.errors import AccelgenError, InputError, InternalError, environment_error, is_environment_error


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except AccelgenError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except OSError as exc:
        if not is_environment_error(exc):
            return _internal(args, exc)
        _error(str(environment_error(exc)))
        return 2
    except Exception as exc:  # a bug: say so, keep the traceback for --debug
        return _internal(args, exc)


def _internal(args, exc: Exception) -> int:
    if args.debug:
        traceback.print_exc()
    _error(
        str(InternalError(f"{type(exc).__name__}: {exc}")) + ("" if args.debug else " [--debug shows the traceback]")
    )
    return 1


def _error(message: str) -> None:
    print(f"accelgen: error: {message}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="accelgen", description="Quantized ONNX -> FPGA accelerator generator.")
    p.add_argument("--version", action="version", version=f"accelgen {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = p.add_subparsers(dest="command")

    ins = sub.add_parser("inspect", help="per-layer table: op, shapes, bits, MACs, weight bytes")
    ins.add_argument("model", help="quantized ONNX model (QONNX, QDQ or QOperator)")
    ins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ins.add_argument("--ir", metavar="FILE", help="also write the lowered IR as JSON to FILE")
    _requant_arg(ins)
    ins.set_defaults(func=cmd_inspect)

    run = sub.add_parser("run", help="run a model on inputs from .npy files")
    run.add_argument("model", help="quantized ONNX model, or a build directory (OUTDIR)")
    run.add_argument("--input", "-i", required=True, action="append", metavar="[NAME=]X.npy",
                     help="input batch (first axis = batch); NAME= for models with several inputs")  # fmt: skip
    run.add_argument("--output", "-o", required=True, metavar="Y.npy",
                     help="where to write the output (.npz for models with several outputs)")  # fmt: skip
    run.add_argument("--backend", default=None, choices=["golden", "csim", "pynq", "rtl"],
                     help="golden: the bit-exact integer reference (default for a model file); csim: the "
                          "emulated hardware (default for a build directory); rtl: the Verilog core of an "
                          "--arch rtl build in Verilator or Icarus (default for such a build)")  # fmt: skip
    run.add_argument(
        "--simulator",
        default=None,
        choices=["verilator", "icarus"],
        help="with --backend rtl: the RTL simulator (default: Verilator when installed, else Icarus)",
    )
    _requant_arg(run)
    run.set_defaults(func=cmd_run)
    _add_dse_commands(sub)
    _add_build_command(sub)
    _add_sweep_command(sub)
    _add_train_build_command(sub)
    _add_quantize_command(sub)
    return p


def _requant_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--requant", default="auto", choices=["auto", "thresholds", "multiply_shift"],
                   help="integer requantization: auto (default), thresholds, multiply_shift")  # fmt: skip
    p.add_argument("--arithmetic", default="reference", choices=["reference", "exact"],
                   help="what requantization reproduces: reference (default: the reference executor's "
                        "rounding, e.g. onnxruntime's float32 multiplier for QOperator layers) or exact "
                        "(float64, the ONNX operators' definition)")  # fmt: skip


def _compile(args):
    from accelgen.config import CompileConfig
    from accelgen.pipeline import compile_model

    return compile_model(args.model, CompileConfig(requant=args.requant, arithmetic=args.arithmetic))


def cmd_inspect(args) -> int:
    from accelgen.analysis import summary

    compiled = _compile(args)
    info = summary(compiled.graph, compiled.dialect)
    if args.ir:
        _write_atomic(Path(args.ir), compiled.graph.dumps().encode())
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    render.print_inspect(info)
    return 0


def _load_inputs(specs: list[str], input_names: list[str]) -> dict[str, np.ndarray]:
    arrays = {}
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        if not name:
            if len(input_names) != 1 or len(specs) != 1:
                raise InputError(f"the model has inputs {', '.join(input_names)}: give --input NAME=FILE for each")
            name = input_names[0]
        if name not in input_names:
            raise InputError(f"--input {spec}: the model has no input '{name}' (inputs: {', '.join(input_names)})")
        p = Path(path)
        if not p.is_file():
            raise InputError(f"--input {spec}: no such file '{path}'")
        arrays[name] = _read_npy(spec, p)
    return arrays


#: what `accelgen run --input` reads, said where a file is something else
NPY_EXPECTED = "a .npy array of floats, batch first, as numpy.save writes it"
_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"


def _read_npy(spec: str, path: Path) -> np.ndarray:
    """One input batch from a .npy file; any other file is named with what it is not."""
    with path.open("rb") as f:
        head = f.read(len(_NPY_MAGIC))
    if head.startswith(_ZIP_MAGIC):
        raise InputError(f"--input {spec}: '{path}' is a zip archive (.npz?), not {NPY_EXPECTED}; give one .npy "
                         "per input (NAME=FILE)")  # fmt: skip
    if head != _NPY_MAGIC:
        raise InputError(f"--input {spec}: '{path}' is not {NPY_EXPECTED} (it does not start with the .npy header: "
                         "text or some other format); write the batch with numpy.save(FILE, x)")  # fmt: skip
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:  # a .npy of Python objects, or truncated
        raise InputError(f"--input {spec}: '{path}' is not {NPY_EXPECTED} ({exc})") from None


def cmd_run(args) -> int:
    from accelgen import golden

    if Path(args.model).is_dir():
        return _run_design_dir(args)
    backend = args.backend or "golden"
    if backend != "golden":
        raise InputError(f"--backend {backend} runs a built design; for a model file use --backend golden")
    compiled = _compile(args)
    inputs = _load_inputs(args.input, compiled.graph.inputs)
    _save_outputs(Path(args.output), golden.run(compiled.graph, inputs))
    return 0


def _run_design_dir(args) -> int:
    """`accelgen run OUTDIR`: the design's emulated hardware (csim) or its golden program."""
    from accelgen.runtime import Accelerator, DamagedBuildError, InputValidationError
    from accelgen.runtime.rtl_backend import SimulatorMissingError, is_rtl_build

    rtl_build = is_rtl_build(args.model)
    backend = args.backend or ("rtl" if rtl_build else "csim")
    if backend == "pynq":
        raise InputError("--backend pynq runs on the board: use OUTDIR/driver/run_accelerator.py there")
    if rtl_build and backend == "csim":
        raise InputError(f"{args.model} is an --arch rtl build: it has no C-simulation; use --backend rtl or golden")
    if backend == "rtl" and not rtl_build:
        raise InputError(f"--backend rtl runs an --arch rtl build; {args.model} has no rtl/design.json")
    if args.simulator is not None and backend != "rtl":
        raise InputError("--simulator goes with --backend rtl")
    options = {"simulator": args.simulator} if backend == "rtl" else {}
    if backend == "csim" and not (Path(args.model) / "csim" / "libaccel.so").is_file():
        from accelgen.csim import build  # a design generated without `accelgen build`: compile it

        options["library"] = build(args.model).library
    try:
        with Accelerator(args.model, backend=backend, **options) as accel:
            outputs = accel.run(_load_inputs(args.input, accel.program.inputs), as_dict=True)
    except (InputValidationError, DamagedBuildError, SimulatorMissingError) as exc:
        raise InputError(str(exc)) from None
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None
    _save_outputs(Path(args.output), outputs)
    return 0


def _save_outputs(out: Path, outputs: dict[str, np.ndarray]) -> None:
    if len(outputs) == 1 and out.suffix != ".npz":
        _save_atomic(out, lambda f: np.save(f, next(iter(outputs.values()))))
    elif out.suffix == ".npz":
        _save_atomic(out, lambda f: np.savez(f, **outputs))
    else:
        raise InputError(f"the model has {len(outputs)} outputs: give an --output ending in .npz")
    print(f"wrote {out} ({', '.join(f'{k}: {v.shape} {v.dtype}' for k, v in outputs.items())})")


def _save_atomic(path: Path, write) -> None:
    """Write ``path`` atomically (see :func:`accelgen.workspace.write_atomic`); its
    directory must exist."""
    from accelgen.workspace import write_atomic

    if not path.parent.is_dir():
        raise InputError(f"{path}: the directory {path.parent} does not exist; create it first")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file name")
    write_atomic(path, write)


def _write_atomic(path: Path, data: bytes) -> None:
    _save_atomic(path, lambda f: f.write(data))


# -- accelgen dse / accelgen boards ----------------------------------------------------------


def _add_dse_commands(sub) -> None:
    dse = sub.add_parser("dse", help="plan the folding on a board: per-layer cycles and resources (estimates)")
    dse.add_argument("model", help="quantized ONNX model")
    dse.add_argument("--board", "-b", required=True, help="board name or alias (see `accelgen boards`), or a .toml")
    dse.add_argument("--json", action="store_true", help="print report.json instead of a table")
    dse.add_argument("--max-util", type=float, metavar="F",
                     help=f"fraction of each resource the plan may use (default {DEFAULT_MAX_UTIL:g})")  # fmt: skip
    dse.add_argument("--target-fps", type=float, metavar="N", help="the cheapest plan reaching N frames/s")
    dse.add_argument("--clock", type=float, metavar="MHZ", help="PL clock (default: the board's)")
    dse.add_argument("--folding", metavar="PLAN.json", help="cost this plan (from a previous -o) instead of searching")
    dse.add_argument("-o", "--output", metavar="OUTDIR",
                     help="write folding.json, report.json, report.md and report.png to OUTDIR")  # fmt: skip
    _requant_arg(dse)
    dse.set_defaults(func=cmd_dse)
    boards = sub.add_parser("boards", help="the boards accelgen knows and their resources")
    boards.add_argument("--json", action="store_true", help="print JSON instead of a table")
    boards.set_defaults(func=cmd_boards)


def cmd_dse(args) -> int:
    from accelgen.config import resolve_plan_options
    from accelgen.dse import explore
    from accelgen.report import build_report, report_files
    from accelgen.workspace import write_tree

    board, clock, _, max_util, plan = resolve_plan_options(args.board, args.clock, args.max_util, args.folding)
    compiled = _compile(args)
    estimate = explore(compiled.graph, board, max_util=max_util, clock_mhz=clock,
                       target_fps=args.target_fps, folding=plan, model=Path(args.model).stem)  # fmt: skip
    report = build_report(estimate)
    if args.output:
        files = report_files(report, estimate.plan().to_json())
        log = f"dse: {estimate.mode}, search {estimate.search_seconds:.3f} s\n"
        write_tree(args.output, files, {"dse": log})
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        render.print_dse(report)
        if args.output:
            print(f"wrote {args.output}/: folding.json report.json report.md report.png")
    return 0


def cmd_boards(args) -> int:
    from accelgen.boards import known_boards

    boards = known_boards()
    if args.json:
        print(json.dumps([b.to_json() for b in boards.values()], indent=2))
        return 0
    render.print_boards(boards)
    return 0


# -- accelgen build ---------------------------------------------------------------------------


def _add_build_command(sub) -> None:
    b = sub.add_parser("build", help="the whole flow: plan, HLS project, C-simulation, synthesis, driver, report")
    b.add_argument("model", help="quantized ONNX model")
    b.add_argument("--board", "-b", required=True, help="board name or alias (see `accelgen boards`)")
    b.add_argument("-o", "--output", metavar="OUTDIR", help="output directory (default: <model>_<board>)")
    b.add_argument("--clock", type=float, metavar="MHZ", help="PL clock (default: the board's)")
    b.add_argument("--max-util", type=float, metavar="F",
                   help=f"budget fraction of each resource (default {DEFAULT_MAX_UTIL:g})")  # fmt: skip
    b.add_argument("--target-fps", type=float, metavar="N", help="the cheapest plan reaching N frames/s")
    b.add_argument("--folding", metavar="PLAN.json", help="use this folding plan instead of searching")
    b.add_argument("--no-csim", action="store_true", help="skip the C-simulation")
    b.add_argument("--synth", default="auto", choices=["auto", "on", "off"],
                   help="Vitis HLS / Vivado: auto (when on PATH), on (required), off")  # fmt: skip
    b.add_argument("--board-repo", metavar="DIR",
                   help="Vivado board repository holding the board's board files (default: $ACCELGEN_BOARD_REPO; "
                        "Vivado ships AMD's own boards only)")  # fmt: skip
    b.add_argument("--cosim", action="store_true", help="run Vitis HLS RTL co-simulation (off: hours on real designs)")
    b.add_argument("--allow-timing-violation", action="store_true",
                   help="keep a bitstream whose worst slack is negative (default: the build fails)")  # fmt: skip
    b.add_argument("--arch", default="auto", choices=ARCHES, help=f"hardware architecture ({AUTO_ARCH_SHORT})")
    b.add_argument("--vectors", metavar="X.npy", help="float inputs for C-simulation and the driver's test vectors")
    b.add_argument("--labels", metavar="Y.npy", help="labels of --vectors (the notebook prints accuracy)")
    b.add_argument("--json", action="store_true", help="print report.json (progress goes to stderr)")
    _requant_arg(b)
    b.set_defaults(func=cmd_build)


def cmd_build(args) -> int:
    from accelgen.pipeline import BuildOptions, build

    options = BuildOptions(
        board=args.board, clock_mhz=args.clock, max_util=args.max_util, target_fps=args.target_fps,
        folding=args.folding, csim=not args.no_csim, synth=args.synth, arch=args.arch, requant=args.requant,
        arithmetic=args.arithmetic, vectors=args.vectors, labels=args.labels, board_repo=args.board_repo,
        cosim=args.cosim, allow_timing_violation=args.allow_timing_violation,
    )  # fmt: skip
    console = render.make_console(stderr=args.json)
    progress = render.BuildProgress(console)
    try:
        design = build(args.model, args.output, options, progress=progress)
    finally:
        progress.stop()
    if args.json:
        print(json.dumps(design.report, indent=2))
    else:
        render.print_build_summary(console, design)
    return 0


# -- accelgen sweep ---------------------------------------------------------------------------

SWEEP_EPILOG = """\
Each point (model x board x clock) is a Ray task: a local Ray sized to this machine by default,
or the cluster at --address (its workers need accelgen installed; models travel with the tasks).
Results are kept in OUTDIR/points/, keyed by the model file's content, the board, the clock, the
options and accelgen's version: a rerun computes only the points that are new or failed.
Writes OUTDIR/sweep.json, sweep.csv and sweep.png (frames/s against LUT and DSP per board, the
Pareto front marked). Exit status 0 when every point succeeded, 1 when some failed (each is
reported with its error), 2 for bad arguments. Needs Ray: pip install 'accelgen[sweep]'.
"""


def _add_sweep_command(sub) -> None:
    s = sub.add_parser("sweep", help="the explorer (or whole builds) over models x boards x clocks, on Ray",
                       description="Design-space sweep: `accelgen dse` (or, with --build, `accelgen build`) "
                                   "for every model, board and clock.",
                       epilog=SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    s.add_argument("models", nargs="+", metavar="MODEL", help="quantized ONNX models")
    s.add_argument("--boards", required=True, metavar="B1,B2", help="boards (names, aliases or .toml files)")
    s.add_argument("--clocks", required=True, metavar="C1,C2", help="PL clocks in MHz")
    s.add_argument("--max-util", type=float, metavar="F",
                   help=f"fraction of each resource a plan may use (default {DEFAULT_MAX_UTIL:g})")  # fmt: skip
    s.add_argument("--build", action="store_true",
                   help="whole builds (C-simulation; Vitis HLS / Vivado where installed) into OUTDIR/builds/")  # fmt: skip
    s.add_argument("--address", metavar="ADDRESS", help="an existing Ray cluster (e.g. ray://head:10001, or auto)")
    s.add_argument("-o", "--output", default="sweep", metavar="OUTDIR", help="results directory (default: sweep)")
    s.add_argument("--json", action="store_true", help="print sweep.json's object (with its rows), nothing else")
    _requant_arg(s)
    s.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    from accelgen import sweep

    options = sweep.SweepOptions(max_util=args.max_util, build=args.build, requant=args.requant,
                                 arithmetic=args.arithmetic)  # fmt: skip
    boards = sweep.parse_list(args.boards, "--boards")
    grid = sweep.make_grid(args.models, boards, sweep.parse_clocks(args.clocks), options)
    sweep.import_ray()  # the install hint before any work
    progress = render.SweepProgress()
    try:
        rows = sweep.run_sweep(grid, args.output, options, address=args.address, progress=progress)
    finally:
        progress.stop()
    document = sweep.sweep_document(rows, grid, options)
    files = sweep.write_results(args.output, document)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        render.print_sweep(document)
        print(f"wrote {args.output}/: {' '.join(files)}")
    return 1 if document["failed"] else 0


# -- accelgen train-build ----------------------------------------------------------------------


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 4,7,4,7") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be >= 1")
    return values


def _add_train_build_command(sub) -> None:
    t = sub.add_parser("train-build", help="on-device training of a TT network: HLS project, C-simulation, cost")
    t.add_argument("--data", required=True, metavar="DATA.npz", help="X (samples, features) floats in [0, 1) and y "
                   "labels: the first --calibration samples size the fixed-point scales")  # fmt: skip
    t.add_argument("--modes-in", required=True, type=_int_list, help="input modes of the TT layer, e.g. 4,7,4,7")
    t.add_argument("--modes-out", required=True, type=_int_list, help="output modes, e.g. 4,4,8,4")
    t.add_argument("--rank", required=True, type=_int_list, help="internal ranks (one for all, or d-1 values)")
    t.add_argument("--classes", required=True, type=int, help="classes of the head")
    t.add_argument("--board", "-b", default="ultra96", help="board for the cost and fit estimate")
    t.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    t.add_argument("--seed", type=int, default=0, help="initial parameters and LFSR seed")
    t.add_argument("--max-batch", type=int, default=4096, help="largest batch per call (the on-chip counters)")
    t.add_argument("--lanes", type=int, default=8, help="products per cycle of every reduction loop")
    t.add_argument("--calibration", type=int, default=64, help="samples that size the scales")
    for name, default in (("core-bits", 8), ("act-bits", 8), ("error-bits", 16), ("acc-bits", 56)):
        t.add_argument(f"--{name}", type=int, default=default, help=f"default {default}")
    t.add_argument("--no-csim", action="store_true", help="skip compiling the C simulation")
    t.add_argument("--json", action="store_true", help="print report.json")
    t.set_defaults(func=cmd_train_build)


def _training_data(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path) as data:
            x, y = np.asarray(data["X"], dtype=np.float64), np.asarray(data["y"])
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"--data {path}: expected an .npz with arrays X and y ({exc})") from None
    if x.ndim != 2 or y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"--data {path}: X must be (samples, features), y {len(x)} integer labels")
    if not np.isfinite(x).all():
        raise InputError(f"--data {path}: X holds NaN or infinite values; clean the data")
    return x, y


def cmd_train_build(args) -> int:
    from accelgen.codegen import train as train_build
    from accelgen.runtime.training.spec import Widths

    x, y = _training_data(args.data)
    d = len(args.modes_in)
    ranks = args.rank * (d - 1) if len(args.rank) == 1 else args.rank
    if len(args.modes_out) != d or len(ranks) != d - 1 or x.shape[1] != np.prod(args.modes_in):
        raise InputError(f"--modes-in {args.modes_in} / --modes-out {args.modes_out} / --rank {args.rank}: need d "
                         f"input and output modes whose input product is the {x.shape[1]} features, and d-1 ranks")  # fmt: skip
    bad = np.nonzero((y < 0) | (y >= args.classes))[0]
    if bad.size:
        raise InputError(f"--data {args.data}: labels {y[bad[:5]].tolist()} are outside 0..{args.classes - 1}")
    widths = Widths(core_bits=args.core_bits, head_bits=args.core_bits, act_bits=args.act_bits,
                    error_bits=args.error_bits, acc_bits=args.acc_bits)  # fmt: skip
    config, state = train_build.design_from_data(args.modes_in, args.modes_out, (1, *ranks, 1), args.classes, x, y,
                                                 widths=widths, seed=args.seed, max_batch=args.max_batch,
                                                 calibration_samples=args.calibration)  # fmt: skip
    design = train_build.generate(config, state, args.output, board=args.board, lanes=args.lanes, csim=not args.no_csim)
    if args.json:
        print(json.dumps(design.report, indent=2))
    else:
        print(train_build.report_markdown(design.report), end="")
        print(f"written {design.outdir}")


# -- accelgen quantize ------------------------------------------------------------------------


def _add_quantize_command(sub) -> None:
    q = sub.add_parser("quantize", help="float ONNX model -> ultra-low-bit QONNX (µL2Q / LSQ training on Brevitas)")
    q.add_argument("model", help="float ONNX model (Gemm/MatMul, Conv, BatchNorm, Relu, pools, Flatten, Add)")
    q.add_argument("--data", required=True, metavar="DATA.npz|digits",
                   help="an .npz of X and y (optionally X_val, y_val), or 'digits' (scikit-learn's 8x8 digits)")  # fmt: skip
    q.add_argument("--w-bits", default="2", help="weight bits: 1..8 or 'ternary' (default 2)")
    q.add_argument("--a-bits", default="2", help="activation bits: 1..8 (default 2)")
    q.add_argument("--method", default="ul2q", choices=["ul2q", "lsq", "brevitas"], help="quantizer (default ul2q)")
    q.add_argument("--epochs", type=int, default=30, help="fine-tuning epochs (default 30)")
    q.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="the QONNX model to write")
    q.set_defaults(func=cmd_quantize)


def cmd_quantize(args) -> int:
    try:
        from accelgen.quant.quantizers import parse_bits

        w_bits, a_bits = parse_bits(args.w_bits, "--w-bits"), parse_bits(args.a_bits, "--a-bits")
    except ImportError as exc:
        raise InputError(f"accelgen quantize needs the train extra: pip install 'accelgen[train]' ({exc})") from None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if a_bits == "ternary":
        raise InputError("--a-bits: activations cannot be ternary; give 1..8")
    if args.epochs < 0:
        raise InputError(f"--epochs {args.epochs}: give 0 or more")
    out = Path(args.output)
    if not out.parent.is_dir():
        raise InputError(f"-o {out}: the directory {out.parent} does not exist; create it first")
    from accelgen.quant import data
    from accelgen.quant.onnx_import import load_float_onnx
    from accelgen.quant.train import quantize

    model, sample_shape = load_float_onnx(args.model)
    x, y, xv, yv = data.digits() if args.data == "digits" else data.load_npz(args.data, args.seed)
    x, xv = data.fit_to_input(x, sample_shape, "--data"), data.fit_to_input(xv, sample_shape, "--data (validation)")
    result = quantize(model, (x, y), (xv, yv), w_bits=w_bits, a_bits=a_bits, method=args.method,
                      epochs=args.epochs, lr=args.lr, seed=args.seed, output=out)  # fmt: skip
    print(f"float accuracy {result.float_accuracy:.4f}, {args.method} W{w_bits}A{a_bits} {result.val_accuracy:.4f} "
          f"(validation, {len(yv)} samples); wrote {out}")  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
