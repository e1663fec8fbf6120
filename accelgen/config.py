"""Options, resolved once: the compile passes' (:class:`CompileConfig`) and a build's
(:class:`BuildOptions` as given, :class:`BuildSettings` as every stage reads them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelgen.boards import DEFAULT_BOARD
from accelgen.errors import InputError

REQUANT_POLICIES = ("auto", "thresholds", "multiply_shift")
ARITHMETIC = ("reference", "exact")


@dataclass(frozen=True)
class CompileConfig:
    """Options of the compile passes.

    ``requant``: how accumulators become codes. ``auto`` uses thresholds for outputs of
    at most ``threshold_max_bits`` bits (a few comparators per channel) and an exact
    multiply-shift for wider outputs when one exists, thresholds otherwise.

    ``arithmetic``: what a requantizer reproduces. ``reference`` (default) follows the
    reference executor of the model's dialect, rounding included: onnxruntime's integer
    kernels (QLinearConv, QLinearMatMul, QGemm) requantize with a float32 multiplier, so
    QOperator layers do the same. ``exact`` evaluates every requantization in exact
    (float64) arithmetic, the ONNX operators' mathematical definition.
    """

    requant: str = "auto"
    threshold_max_bits: int = 4
    max_multiplier_bits: int = 32
    arithmetic: str = "reference"

    def __post_init__(self) -> None:
        if self.arithmetic not in ARITHMETIC:
            raise InputError(f"--arithmetic must be one of {', '.join(ARITHMETIC)}, not '{self.arithmetic}'")
        if self.requant not in REQUANT_POLICIES:
            raise InputError(f"--requant must be one of {', '.join(REQUANT_POLICIES)}, not '{self.requant}'")


# ---------------------------------------------------------------------------------------
# accelgen build / dse: every option resolved once
# ---------------------------------------------------------------------------------------

#: test vectors made up when the user gives none (deterministic random inputs)
DEFAULT_VECTORS = 64
ARCHES = ("auto", "dataflow", "rtl")
#: what ``--arch auto`` builds, and why (stated in the build's log and report)
AUTO_ARCH = "dataflow"
AUTO_ARCH_RULE = (
    "--arch auto builds the layer-pipelined dataflow design for every model; the fully unrolled RTL path "
    "(tiny networks, no PYNQ driver yet) is built only when asked for with --arch rtl"
)
AUTO_ARCH_SHORT = "--arch auto: dataflow for every model; --arch rtl for the unrolled path"


def _default_max_util() -> float:
    from accelgen.boards import DEFAULT_MAX_UTIL

    return DEFAULT_MAX_UTIL


@dataclass(frozen=True)
class BuildOptions:
    """What `accelgen build` was asked for (see DESIGN.md section 7); None: not given."""

    board: str = DEFAULT_BOARD
    clock_mhz: float | None = None
    max_util: float | None = None
    target_fps: float | None = None
    folding: Any = None  # a plan JSON path or a FoldingPlan
    csim: bool = True
    synth: str = "auto"
    arch: str = "auto"
    requant: str = "auto"
    arithmetic: str = "reference"  # see CompileConfig.arithmetic
    vectors: Any = None  # float inputs (array or .npy path) for C-simulation and the driver
    labels: Any = None  # optional labels of those inputs (accuracy in the notebook)
    board_repo: str | None = None  # --board-repo: a Vivado board repository (else $ACCELGEN_BOARD_REPO)
    cosim: bool = False  # --cosim: Vitis HLS RTL co-simulation (hours on real designs)
    allow_timing_violation: bool = False  # keep a bitstream whose worst slack is negative


@dataclass(frozen=True)
class BuildSettings:
    """The options of one build after resolution: what every stage reads.

    ``clock_mhz``: ``--clock``, else the clock recorded in ``--folding``'s plan, else the
    board's default (``clock_source`` says which). ``max_util``: ``--max-util``, else the
    default budget. ``arch``: never ``auto`` (``arch_reason`` says why this one).
    """

    board: Any  # accelgen.boards.Board
    clock_mhz: float
    clock_source: str
    max_util: float
    target_fps: float | None
    folding: Any  # accelgen.plan.FoldingPlan | None
    arch: str
    arch_reason: str
    csim: bool
    synth: str
    compile: CompileConfig
    vectors: Any = None  # np.ndarray | None
    labels: Any = None
    board_repo: str | None = None  # an existing directory, absolute (None: $ACCELGEN_BOARD_REPO at synthesis)
    cosim: bool = False
    allow_timing_violation: bool = False


def resolve_plan_options(board: Any, clock_mhz: float | None = None, max_util: float | None = None,
                         folding: Any = None) -> tuple[Any, float, str, float, Any]:  # fmt: skip
    """Board, clock (and where it came from), budget and plan of `build` and `dse`."""
    from accelgen.boards import Board, check_max_util, get_board
    from accelgen.plan import FoldingPlan

    board = board if isinstance(board, Board) else get_board(board)
    plan = FoldingPlan.load(folding) if isinstance(folding, (str, Path)) else folding
    if clock_mhz is not None:
        clock, source = float(clock_mhz), "--clock"
    elif plan is not None and plan.clock_mhz:
        clock, source = float(plan.clock_mhz), "the --folding plan"
    else:
        clock, source = float(board.default_clock_mhz), f"the {board.name} default"
    if not clock > 0:
        raise InputError(f"--clock must be positive, not {clock_mhz}")
    max_util = _default_max_util() if max_util is None else max_util
    check_max_util(max_util)
    return board, clock, source, max_util, plan


def resolve_build(options: BuildOptions) -> BuildSettings:
    """Resolve a build's options once: board, clock, budget, plan, architecture, vectors."""
    if options.arch not in ARCHES:
        raise InputError(f"--arch must be one of {', '.join(ARCHES)}, not '{options.arch}'")
    board, clock, source, max_util, plan = resolve_plan_options(
        options.board, options.clock_mhz, options.max_util, options.folding
    )
    if options.arch == "auto":
        arch, reason = AUTO_ARCH, AUTO_ARCH_RULE
    else:
        arch, reason = options.arch, f"--arch {options.arch}"
    vectors = _load_array(options.vectors, "vectors")
    return BuildSettings(
        board=board, clock_mhz=clock, clock_source=source, max_util=max_util, target_fps=options.target_fps,
        folding=plan, arch=arch, arch_reason=reason, csim=options.csim, synth=options.synth,
        compile=CompileConfig(requant=options.requant, arithmetic=options.arithmetic), vectors=vectors,
        labels=_check_labels(vectors, _load_array(options.labels, "labels")),
        board_repo=_board_repo(options.board_repo), cosim=bool(options.cosim),
        allow_timing_violation=bool(options.allow_timing_violation),
    )  # fmt: skip


def _board_repo(value: str | None) -> str | None:
    from accelgen.vendor import board_repo

    return board_repo(value) if value else None


def _load_array(value: Any, what: str):
    import numpy as np

    if value is None or isinstance(value, np.ndarray):
        return value
    path = Path(value)
    if not path.is_file():
        raise InputError(f"--{what} {value}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"--{what} {value}: not a .npy array ({exc})") from None


def _check_labels(vectors, labels):
    """--labels must name one class per --vectors sample (the notebook compares them)."""
    if labels is None:
        return None
    if vectors is None:
        raise InputError("--labels needs --vectors: the labels are those of the test vectors")
    if labels.ndim != 1 or len(labels) != len(vectors):
        raise InputError(
            f"--labels has shape {labels.shape} but --vectors has {len(vectors)} sample(s): give one label per "
            "sample (a 1-D array as long as the vectors' first axis)"
        )
    return labels
