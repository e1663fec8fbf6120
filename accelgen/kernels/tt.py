"""TTDense kernel: a tensor-train matrix-vector product, one core contraction per step.

The one description of the layer's hardware (:func:`geometry` and :func:`hardware`), read
by the cost model here and by code generation (accelgen.codegen.layers), so the explorer
prices exactly what is emitted.

Each step is its own streaming unit (``accelgen::tt_step`` in hls/accelgen/tt.h): it reads
the whole state of the previous step (the layer input for the first) into an on-chip
buffer, then contracts it with one core as a matrix product: for every *row* (the state
axes the core does not touch) and every *column* (the core axes the state does not hold
yet) it sums over the *reduction* (the input mode and the shared rank). The core is a ROM
of ``red x cols`` weights packed at its bit width; ``pe`` columns and ``simd`` reduction
lanes are computed per cycle, ``pe * simd`` = the step's parallelism ``P``. The sums go
through the step's requantizer (``mid_requant``, or the layer's ``requant`` for the last
step) and leave as a stream of ``pe`` lanes in (row, column) order, which is the memory
order of the next step's buffer. The last step emits the output in row-major order of
the output modes; when its (row, column) order is another one it first collects the
accumulators in a reorder buffer and requantizes them on the way out.

Folding: ``LayerFold.steps = (P_0, ..., P_{d-1})``, in contraction order; ``P_t`` divides
``red_t * cols_t`` and is split as ``simd = gcd(P_t, red_t)``, ``pe = P_t / simd`` (which
then divides ``cols_t``). Each step reads a whole state (``in_elems / lanes`` cycles), then
computes (``MACs_t / P_t`` cycles) and, for a reordering last step, drains
(``out_features / pe``). The stream into every step after the first holds one whole state,
so a step never waits for the next one to finish computing: the steps work on successive
samples at once, and the layer's initiation interval is the slowest step's period
(read + compute + drain), not their sum; the latency of one sample is the sum.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np

from accelgen import ir
from accelgen.errors import InputError
from accelgen.kernels import hw, mvu
from accelgen.kernels.base import NONE, Cost, Fifo, Hardware, LayerSpec, Memory, MultiplierNeed, divisors, element_bits
from accelgen.plan import LayerFold

OPS = (ir.TTDense,)

#: offer every combination of per-step parallelisms up to this many, else a balanced family
MAX_COMBINATIONS = 512

# -- geometry: what each step contracts -------------------------------------------------------------

Axis = tuple[str, int, int]  # (kind "i" / "j" / "r", mode or rank index, size)


@dataclass(frozen=True)
class Step:
    """One contraction step. Axes are (kind, index, size); size-1 axes are dropped.

    ``in_axes``: the state read, in memory order. ``row_axes``: the rows (in the loop
    order, most significant first) with their strides into the input state, ``red_axes``
    likewise; ``col_axes``: the new axes, in the core matrix's column order. The output
    state is ``row_axes + col_axes`` in memory order. ``out_strides``: for the last step,
    the stride of each of those axes in the row-major output (its axes are output modes).
    """

    core: int
    in_axes: tuple[Axis, ...]
    row_axes: tuple[Axis, ...]
    row_strides: tuple[int, ...]
    red_axes: tuple[Axis, ...]
    red_strides: tuple[int, ...]
    col_axes: tuple[Axis, ...]
    out_strides: tuple[int, ...] = ()

    @property
    def rows(self) -> int:
        return math.prod(a[2] for a in self.row_axes)

    @property
    def red(self) -> int:
        return math.prod(a[2] for a in self.red_axes)

    @property
    def cols(self) -> int:
        return math.prod(a[2] for a in self.col_axes)

    @property
    def in_elems(self) -> int:
        return math.prod(a[2] for a in self.in_axes)

    @property
    def out_elems(self) -> int:
        return self.rows * self.cols

    @property
    def macs(self) -> int:
        return self.rows * self.cols * self.red

    @property
    def out_axes(self) -> tuple[Axis, ...]:
        return self.row_axes + self.col_axes

    @property
    def reorder(self) -> bool:
        """The last step's (row, column) order is not the output's row-major order."""
        return bool(self.out_strides) and self.out_strides != tuple(_strides([a[2] for a in self.out_axes]))


def _strides(sizes: list[int]) -> list[int]:
    out, acc = [], 1
    for s in reversed(sizes):
        out.append(acc)
        acc *= s
    return out[::-1]


def _core_axes(k: int, modes_in, modes_out, ranks) -> list[Axis]:
    return [("r", k, ranks[k]), ("i", k, modes_in[k]), ("j", k, modes_out[k]), ("r", k + 1, ranks[k + 1])]


def check(op: ir.TTDense) -> None:
    """InputError naming the layer when its TT structure cannot be built in hardware."""
    d = len(op.modes_in)
    where = f"TTDense '{op.source or op.name}'"
    if d < 1 or len(op.modes_out) != d or len(op.ranks) != d + 1 or len(op.cores) != d:
        raise InputError(f"{where}: {d} input modes, {len(op.modes_out)} output modes, {len(op.ranks)} ranks and "
                         f"{len(op.cores)} cores; a TT matrix of d cores needs d modes each way and d + 1 ranks")  # fmt: skip
    if sorted(op.order) != list(range(d)):
        raise InputError(f"{where}: contraction order {op.order} is not a permutation of 0..{d - 1}")
    for t in range(1, d + 1):
        prefix = sorted(op.order[:t])
        if prefix[-1] - prefix[0] != t - 1:
            raise InputError(f"{where}: contraction order {op.order} does not contract a contiguous run of cores "
                             f"at step {t - 1} ({prefix}); every prefix must be contiguous")  # fmt: skip
    if op.ranks[0] != 1 or op.ranks[-1] != 1 or min(op.ranks) < 1:
        raise InputError(f"{where}: ranks {op.ranks} must start and end with 1 and be at least 1")
    for k, core in enumerate(op.cores):
        want = (op.ranks[k], op.modes_in[k], op.modes_out[k], op.ranks[k + 1])
        if tuple(core.shape) != want:
            raise InputError(f"{where}: core {k} has shape {tuple(core.shape)}, expected {want}")
    if len(op.mid_requant) != d - 1 or len(op.mid_qtypes) != d - 1:
        raise InputError(f"{where}: {len(op.mid_requant)} intermediate requantizers for {d} cores (need {d - 1})")


def geometry(modes_in, modes_out, ranks, order) -> list[Step]:
    """The steps of a TT contraction in ``order`` (a pure function of the shape)."""
    d = len(modes_in)
    state: list[Axis] = [("i", k, m) for k, m in enumerate(modes_in) if m > 1]
    steps = []
    for t, k in enumerate(order):
        held = {(a[0], a[1]) for a in state}
        core = [a for a in _core_axes(k, modes_in, modes_out, ranks) if a[2] > 1]
        red_axes = [a for a in core if (a[0], a[1]) in held]
        col_axes = tuple(a for a in core if (a[0], a[1]) not in held)
        strides = dict(zip([(a[0], a[1]) for a in state], _strides([a[2] for a in state])))
        red_axes.sort(key=lambda a: -strides[a[0], a[1]])  # innermost lane: the smallest stride
        row_axes = tuple(a for a in state if a not in red_axes)
        step = Step(
            core=k, in_axes=tuple(state), row_axes=row_axes, row_strides=tuple(strides[a[0], a[1]] for a in row_axes),
            red_axes=tuple(red_axes), red_strides=tuple(strides[a[0], a[1]] for a in red_axes), col_axes=col_axes,
        )  # fmt: skip
        if t == d - 1:
            final = _strides(list(modes_out))
            step = dataclasses.replace(step, out_strides=tuple(final[a[1]] for a in step.out_axes))
        steps.append(step)
        state = list(step.out_axes)
    return steps


def core_matrix(step: Step, core: np.ndarray) -> np.ndarray:
    """The step's core as a (red, cols) matrix: rows over ``red_axes``, columns over ``col_axes``."""
    names = [("r", step.core), ("i", step.core), ("j", step.core), ("r", step.core + 1)]
    kept = [i for i, s in enumerate(core.shape) if s > 1]
    g = np.asarray(core).reshape([core.shape[i] for i in kept])
    axes = [names[i] for i in kept]
    order = [axes.index((a[0], a[1])) for a in (*step.red_axes, *step.col_axes)]
    return g.transpose(order).reshape(step.red, step.cols)


# -- the hardware at one folding --------------------------------------------------------------------


@dataclass(frozen=True)
class StepHardware:
    """A step at its folding: lanes of the stream it reads, pe x simd, its cycle counts."""

    step: Step
    in_lanes: int
    pe: int
    simd: int

    @property
    def tiles(self) -> int:
        return (self.step.cols // self.pe) * (self.step.red // self.simd)

    @property
    def read_cycles(self) -> int:
        return self.step.in_elems // self.in_lanes

    @property
    def compute_cycles(self) -> int:
        return self.step.rows * self.tiles

    @property
    def drain_cycles(self) -> int:
        return self.step.out_elems // self.pe if self.step.reorder else 0

    @property
    def cycles(self) -> int:
        """The step's period: it reads a whole state, then computes (and drains)."""
        return self.read_cycles + self.compute_cycles + self.drain_cycles

    @property
    def fifo_words(self) -> int:
        """Depth of the stream this step reads (after the first): one whole state, so its
        producer never waits while this step computes."""
        return self.read_cycles


def split(p: int, red: int, cols: int) -> tuple[int, int]:
    """(pe, simd) of a step parallelism ``p``: simd = gcd(p, red), pe = p / simd."""
    if p < 1 or (red * cols) % p:
        raise InputError(f"step parallelism {p} does not divide {red} x {cols} MACs per row")
    simd = math.gcd(p, red)
    return p // simd, simd


def input_lanes(features: int, compute_cycles: int) -> int:
    """Lanes of the layer's input stream: the fewest that read the vector in no more
    cycles than the first step computes (a divisor of the features)."""
    return next(d for d in divisors(features) if features // d <= max(compute_cycles, 1))


def step_units(steps: list[Step], fold: LayerFold, where: str) -> list[StepHardware]:
    """Every step's hardware at ``fold`` (InputError naming the layer when it is illegal)."""
    par = fold.steps or (1,) * len(steps)
    if len(par) != len(steps):
        raise InputError(f"folding plan: layer '{where}' (TTDense) has {len(par)} step parallelisms for "
                         f"{len(steps)} contraction steps")  # fmt: skip
    out = []
    for t, (st, p) in enumerate(zip(steps, par)):
        if p < 1 or (st.red * st.cols) % p:
            raise InputError(f"folding plan: layer '{where}' (TTDense) step {t}: parallelism {p} must divide "
                             f"{st.red * st.cols} (reduction {st.red} x columns {st.cols}); legal: "
                             f"{', '.join(map(str, divisors(st.red * st.cols)))}")  # fmt: skip
        pe, simd = split(p, st.red, st.cols)
        if t == 0:
            lanes = input_lanes(st.in_elems, st.rows * (st.cols // pe) * (st.red // simd))
        else:
            lanes = out[-1].pe
        out.append(StepHardware(st, lanes, pe, simd))
    return out


# -- the kernel interface ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TTSpec(LayerSpec):
    steps: tuple[Step, ...]
    ariths: tuple[mvu.Arith, ...]  # per step, in contraction order
    in_features: int
    out_features: int


def matches(op: ir.Op) -> bool:
    return isinstance(op, ir.TTDense)


def _mid_tensor(name: str, q: ir.QType) -> ir.Tensor:
    return ir.Tensor(name, (None, 1), "codes", q)


def describe(op: ir.TTDense, graph: ir.Graph) -> TTSpec:
    check(op)
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    steps = geometry(op.modes_in, op.modes_out, op.ranks, op.order)
    ariths, src = [], x
    for t, st in enumerate(steps):
        last = t == len(steps) - 1
        dst = out if last else _mid_tensor(f"{op.name}_mid{t}", op.mid_qtypes[t])
        rq = op.requant if last else op.mid_requant[t]
        matrix = core_matrix(st, np.asarray(op.cores[st.core], dtype=np.int64)).T  # (cols, red)
        ariths.append(mvu.describe(src, op.core_qtypes[st.core], matrix, dst, rq))
        src = dst
    return TTSpec(
        name=op.name, kind=op.kind, in_bits=(element_bits(x),), in_elems=(op.in_features,),
        out_bits=ariths[-1].out_bits, out_elems=op.out_features, steps=tuple(steps), ariths=tuple(ariths),
        in_features=op.in_features, out_features=op.out_features,
    )  # fmt: skip


def stream_lanes(spec: TTSpec, fold: LayerFold) -> tuple[tuple[int, ...], int]:
    """The first step's input lanes in, the last step's ``pe`` out."""
    units = step_units(list(spec.steps), fold, spec.name)
    return (units[0].in_lanes,), units[-1].pe


def step_options(st: Step) -> list[int]:
    """The legal parallelisms of one step: divisors of red x cols."""
    return divisors(st.red * st.cols)


def legal(spec: TTSpec) -> dict[str, list]:
    """pe = simd = 1; ``steps``: every combination when there are few, else two families:
    for each target step time T the least parallelism per step that meets it (what the
    initiation interval, the slowest step, wants), and for each multiplier count M (a
    geometric series, ratio sqrt 2) M split over the steps in proportion to sqrt(MACs_t)
    (what minimises the sum of the steps' cycles, the latency), each step at the legal value
    just below or just above its share; plus all-1 and fully parallel. ``step_options``:
    every step's legal values (a plan may combine them freely)."""
    options = [step_options(st) for st in spec.steps]
    if math.prod(len(o) for o in options) <= MAX_COMBINATIONS:
        combos = [tuple(c) for c in itertools.product(*options)]
        return {"pe": [1], "simd": [1], "steps": combos, "step_options": options}
    combos = {tuple(o[0] for o in options), tuple(o[-1] for o in options)}
    for target in sorted({st.macs // p for st, opts in zip(spec.steps, options) for p in opts}):
        combos.add(tuple(next((p for p in o if st.macs // p <= target), o[-1]) for st, o in zip(spec.steps, options)))
    weights = [math.sqrt(st.macs) for st in spec.steps]
    budget = 1.0
    while budget <= 2 * sum(o[-1] for o in options):
        near = []
        for o, w in zip(options, weights):
            share = max(budget * w / sum(weights), 1.0)
            near.append({max(p for p in o if p <= share), min((p for p in o if p >= share), default=o[-1])})
        combos.update(itertools.product(*near))
        budget *= math.sqrt(2)
    return {"pe": [1], "simd": [1], "steps": sorted(combos), "step_options": options}


def hardware(spec: TTSpec, fold: LayerFold) -> Hardware:
    """Every step's contraction unit (pe x simd MACs, its weight ROMs, the state buffer in
    ``simd`` banks, a reorder buffer where the step reorders) and the stream into it (one
    whole state deep after the first step, so the steps work on successive samples)."""
    units = step_units(list(spec.steps), fold, spec.name)
    macs, memories, fifos, logic, depth = [], [], [], NONE, 0
    for t, (u, ar) in enumerate(zip(units, spec.ariths)):
        last = t == len(units) - 1
        step_logic, pipe = mvu.logic(ar, u.pe, u.simd, spec.out_features if last else 1)
        logic = logic + step_logic
        macs += mvu.macs(ar, u.pe, u.simd)
        memories += mvu.weights(ar, u.pe, u.simd, u.tiles)
        memories.append(Memory(f"state{t}", "ram", ar.in_bits, math.ceil(u.step.in_elems / u.simd), u.simd))
        if u.step.reorder:
            memories.append(Memory(f"reorder{t}", "ram", ar.acc_bits, u.step.out_elems))
        fifos.append(Fifo(f"step{t}", u.in_lanes * ar.in_bits, hw.STREAM_FIFO_DEPTH if t == 0 else u.fifo_words))
        depth += u.read_cycles + (pipe if last else u.compute_cycles)
    final = units[-1]
    depth += final.step.red // final.simd + (final.compute_cycles if final.step.reorder else 0)
    return Hardware(cycles=max(u.cycles for u in units), depth=depth, macs=tuple(macs), memories=tuple(memories),
                    fifos=tuple(fifos), logic=logic)  # fmt: skip


def cost(spec: TTSpec, fold: LayerFold) -> Cost:
    return hw.price(hardware(spec, fold))


def lag(spec: TTSpec) -> int:
    return spec.in_features  # the first step reads the whole input vector


def multiplier(spec: TTSpec) -> MultiplierNeed:
    """Every step's MACs on its cheapest multiplier, as a MAC-weighted unit per resource."""
    macs = sum(st.macs for st in spec.steps)
    unit: dict[str, float] = {}
    for st, ar in zip(spec.steps, spec.ariths):
        need = mvu.unit_multiplier(ar, st.macs)
        for k, v in need.unit.items():
            unit[k] = unit.get(k, 0.0) + v * st.macs / max(macs, 1)
    return MultiplierNeed(macs, unit)
