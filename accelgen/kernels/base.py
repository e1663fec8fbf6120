"""What every kernel module offers the explorer, and the data it exchanges.

A kernel module (``dense``, ``conv``, ...) implements :class:`Kernel`:

* ``OPS``: the IR op classes it can implement, ``matches(op)``: whether it takes this one;
* ``describe(op, graph) -> LayerSpec``: everything its cost model needs, read once;
* ``legal(spec) -> {"pe": [...], "simd": [...]}``: the legal values (every pair is legal);
  a window kernel adds ``"pixels"``, its legal output pixels per cycle, and ``"pixels_pe"``,
  the only ``pe`` at which more than one pixel per cycle is legal (every output channel),
  and may add ``"pixels_simd"``, the only ``simd`` values at which it is (default: all);
  a kernel whose ``simd`` means another word shape at some ``pe`` adds ``"simd_at_pe"``,
  ``{pe: [simd, ...]}``, the legal ``simd`` values at that ``pe`` (instead of ``"simd"``:
  a depthwise layer at every channel takes tap words, :mod:`accelgen.kernels.depthwise`);
  a kernel that works in steps (TTDense) adds ``"steps": [(p_0, p_1, ...), ...]``, the
  per-step parallelisms the explorer searches, and ``"step_options"``, the legal values of
  each step (what a plan given by the user is checked against, see :func:`fold_problems`);
* ``hardware(spec, fold) -> Hardware``: the one description of the layer's hardware at a
  folding (its multipliers, memories, FIFOs, other logic, cycles, pipeline depth). The
  cost is :func:`price` of it (``cost(spec, fold)``), and code generation reads the same
  facts (multiplier kind, accumulator width, buffer shapes, FIFO depths) from the kernel
  module, so the explorer prices what is generated (tests/test_one_description.py);
* ``cost(spec, fold) -> Cost``: ``price(hardware(spec, fold))``, a pure function;
* ``lag(spec)``: input elements consumed before the first output (for stream plumbing);
* ``multiplier(spec)``: resources of one multiplier and the MACs it must do (lower bound).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from accelgen import ir
from accelgen.plan import DEFAULT_PRODUCT, LayerFold

#: resources a cost model counts, in report order; ``lutram`` LUTs are also in ``lut``
RESOURCE_KEYS = ("lut", "ff", "dsp", "bram18", "lutram", "uram")


class Resources(NamedTuple):
    """Programmable-logic resources. ``lutram``: LUTs used as memory (SLICEM), part of ``lut``.

    ``+`` adds and ``* n`` scales field by field (a NamedTuple: cost models build many).
    """

    lut: int = 0
    ff: int = 0
    dsp: int = 0
    bram18: int = 0
    lutram: int = 0
    uram: int = 0

    # unpacked and built with tuple.__new__ (not the generated constructor): the explorer
    # adds and scales a few hundred thousand of these per plan
    def __add__(self, other: Resources) -> Resources:  # type: ignore[override]
        a, b, c, d, e, f = self
        p, q, r, s, t, u = other
        return tuple.__new__(Resources, (a + p, b + q, c + r, d + s, e + t, f + u))

    def __mul__(self, n: int) -> Resources:  # type: ignore[override]
        a, b, c, d, e, f = self
        return tuple.__new__(Resources, (a * n, b * n, c * n, d * n, e * n, f * n))

    __rmul__ = __mul__

    def as_tuple(self) -> tuple[int, ...]:
        return tuple(self)

    def as_dict(self) -> dict[str, int]:
        return dict(zip(RESOURCE_KEYS, self))


NONE = Resources()


def total(parts: list[Resources] | tuple[Resources, ...]) -> Resources:
    out = NONE
    for p in parts:
        out = out + p
    return out


@dataclass(frozen=True)
class Cost:
    """A layer at one folding: cycles per frame (its initiation interval), pipeline depth
    (cycles from its first input to its first output at full speed), resources, and the
    multipliers it instantiates."""

    cycles: int
    depth: int
    resources: Resources
    multipliers: int = 0


@dataclass(frozen=True, kw_only=True)
class LayerSpec:
    """What every kernel's spec holds: the layer's name and kind, its streams' element
    widths and sizes per frame, and the bypass buffering the stream plumbing adds."""

    name: str
    kind: str
    in_bits: tuple[int, ...]
    in_elems: tuple[int, ...]
    out_bits: int
    out_elems: int
    #: extra FIFO depth (elements) on each input, set by the stream plumbing (residual forks)
    bypass: tuple[int, ...] = ()

    def with_bypass(self, depths: tuple[int, ...]) -> LayerSpec:
        return dataclasses.replace(self, bypass=tuple(depths))


@dataclass(frozen=True)
class MultiplierNeed:
    """For the lower bound: the layer must do ``macs`` products per frame, each on a
    multiplier that costs at least ``unit`` (fractions allowed: a DSP48E2 can hold two)."""

    macs: int
    unit: dict[str, float]


@dataclass(frozen=True)
class Mac:
    """``count`` products per cycle of one multiplier ``kind`` (accelgen/hls/accelgen/mac.h):
    XnorPopcount, SignSelect, InputSign (a bipolar operand), LutMultiply, DspMultiply.
    ``a_bits`` / ``w_bits``: operand widths as generated (the centred activation, the weight)."""

    kind: str
    count: int
    a_bits: int
    w_bits: int


@dataclass(frozen=True)
class Memory:
    """``count`` memories of ``width`` x ``depth`` bits: ``rom`` (parameters) or ``ram``
    (line buffers, input vectors, accumulators). ``role`` names it for reports and tests."""

    role: str
    kind: str
    width: int
    depth: int
    count: int = 1


@dataclass(frozen=True)
class Fifo:
    """A stream FIFO of ``width``-bit words, ``depth`` deep (``role``: where it is)."""

    role: str
    width: int
    depth: int


@dataclass(frozen=True)
class Requantizers:
    """``units`` requantizers of ``kind`` (accelgen.kernels.requant.RequantSpec) serving the
    ``lanes`` lanes of a unit's output word (hls/accelgen/mvau.h): one per lane, or fewer
    shared in time (SharedRequant), each requantizing one lane per cycle for ``steps``
    cycles after the word is finished (within the unit's cycles per word: no cycle more per
    frame, the output ``steps`` cycles later)."""

    kind: str
    lanes: int
    units: int
    #: where a multiply-shift unit's product is built: "dsp" (DSP48E2 tiles) or "fabric"
    #: (LUTs and the carry chain), accelgen.plan.REQUANT_PRODUCTS
    product: str = DEFAULT_PRODUCT

    @property
    def shared(self) -> bool:
        return self.units < self.lanes

    @property
    def steps(self) -> int:
        return ceil_div(self.lanes, self.units) if self.shared else 1


@dataclass(frozen=True)
class Hardware:
    """What a layer instantiates at one folding, as generated: the one description its
    cost and its code are both derived from. ``logic``: adders, comparators,
    requantizers and control, already priced (their shapes follow from the same fields);
    ``requantizers``: how a matrix or vector unit's requantizers serve its lanes, and
    ``gearboxes``: (in_bits, out_bits) of the width converters inside the layer (both priced
    in ``logic``, listed so the generated configuration can be checked against them)."""

    cycles: int
    depth: int
    macs: tuple[Mac, ...] = ()
    memories: tuple[Memory, ...] = ()
    fifos: tuple[Fifo, ...] = ()
    logic: Resources = NONE
    requantizers: tuple[Requantizers, ...] = ()
    gearboxes: tuple[tuple[int, int], ...] = ()

    @property
    def multipliers(self) -> int:
        return sum(m.count for m in self.macs)


class Kernel(Protocol):
    OPS: tuple[type[ir.Op], ...]

    def matches(self, op: ir.Op) -> bool: ...
    def describe(self, op: ir.Op, graph: ir.Graph) -> LayerSpec: ...
    def legal(self, spec: LayerSpec) -> dict[str, list[int]]: ...
    def hardware(self, spec: LayerSpec, fold: LayerFold) -> Hardware: ...
    def cost(self, spec: LayerSpec, fold: LayerFold) -> Cost: ...
    def lag(self, spec: LayerSpec) -> int: ...
    def multiplier(self, spec: LayerSpec) -> MultiplierNeed: ...


def divisors(n: int) -> list[int]:
    """Positive divisors of ``n`` in increasing order (``[1]`` for n <= 1)."""
    return list(_divisors(n))


@functools.lru_cache(maxsize=4096)
def _divisors(n: int) -> tuple[int, ...]:  # the explorer asks for the same few per folding
    if n <= 1:
        return (1,)
    small = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    return tuple(sorted(set(small) | {n // d for d in small}))


def price_key(spec: LayerSpec) -> LayerSpec:
    """What a layer's legal foldings and their prices depend on: its spec without its name and,
    for a weighted-sum unit (a spec with an ``arith``), without the accumulator's range (its
    width ``acc_bits`` stays). The explorer prices the layers of one key once (a deep stack
    of equal layers); tests/test_dse.py checks that every kernel prices a spec and its key alike."""
    arith = getattr(spec, "arith", None)
    if arith is not None and hasattr(arith, "acc_range"):
        spec = dataclasses.replace(spec, arith=dataclasses.replace(arith, acc_range=(0, 0)))
    return dataclasses.replace(spec, name="")


def foldings(legal: dict[str, list]) -> list[LayerFold]:
    """Every legal (pe, simd[, steps][, pixels]) combination of a kernel's legal values,
    pe-major, increasing (``simd`` among ``simd_at_pe[pe]`` where given; more than one pixel
    per cycle only at ``pixels_pe`` and a ``pixels_simd`` value; each of the ``requant``
    product bindings where a kernel has a multiply-shift requantizer)."""
    steps = legal.get("steps", [()])
    pixels_simd = legal.get("pixels_simd", legal["simd"])
    products = legal.get("requant", [DEFAULT_PRODUCT])
    out = []
    for pe in legal["pe"]:
        for simd, st, px, rq in itertools.product(simd_values(legal, pe), steps, legal.get("pixels", [1]), products):
            if px == 1 or (pe == legal.get("pixels_pe") and simd in pixels_simd):
                out.append(LayerFold(pe, simd, tuple(st), px, rq))
    return out


def simd_values(legal: dict[str, list], pe: int) -> list[int]:
    """The legal ``simd`` values at ``pe``: ``simd_at_pe[pe]`` where a kernel gives it, else ``simd``."""
    return legal.get("simd_at_pe", {}).get(pe, legal["simd"])


def fold_problems(legal: dict[str, list], fold: LayerFold) -> list[str]:
    """What makes ``fold`` illegal under a kernel's ``legal`` values (empty: it is legal).

    ``pe``, ``simd`` and ``pixels`` must be legal values (``simd`` among ``simd_at_pe[pe]``
    where given; ``pixels`` above 1 only at ``pixels_pe`` and, when given, a ``pixels_simd``
    value); ``requant`` among the kernel's product bindings (``"dsp"`` only without a
    multiply-shift requantizer); with ``step_options``, ``fold.steps`` holds one legal value per step (empty:
    every step at 1).
    """
    bad = [] if fold.pe in legal["pe"] else [f"pe={fold.pe} (legal: {', '.join(map(str, legal['pe']))})"]
    simds = simd_values(legal, fold.pe)
    if fold.simd not in simds:
        at = f" with pe={fold.pe}" if fold.pe in legal.get("simd_at_pe", {}) else ""
        bad.append(f"simd={fold.simd}{at} (legal{' at that pe' if at else ''}: {', '.join(map(str, simds))})")
    pixels = legal.get("pixels", [1])
    if fold.pixels not in pixels:
        bad.append(f"pixels={fold.pixels} (legal: {', '.join(map(str, pixels))})")
    elif fold.pixels > 1 and fold.pe != legal.get("pixels_pe"):
        bad.append(f"pixels={fold.pixels} with pe={fold.pe} (more than one pixel per cycle needs "
                   f"pe={legal.get('pixels_pe')}, every output channel)")  # fmt: skip
    elif fold.pixels > 1 and "pixels_simd" in legal and fold.simd not in legal["pixels_simd"]:
        bad.append(f"pixels={fold.pixels} with simd={fold.simd} (more than one pixel per cycle needs one kernel "
                   f"tap a word, simd among {', '.join(map(str, legal['pixels_simd']))})")  # fmt: skip
    products = legal.get("requant", [DEFAULT_PRODUCT])
    if fold.requant not in products:
        bad.append(f"requant={fold.requant!r} (legal: {', '.join(map(repr, products))}"
                   f"{'' if len(products) > 1 else '; fabric only for a multiply-shift requantizer'})")  # fmt: skip
    options = legal.get("step_options")
    if options is None:
        if fold.steps:
            bad.append(f"steps={list(fold.steps)} (this layer has no steps)")
        return bad
    steps = fold.steps or (1,) * len(options)
    if len(steps) != len(options):
        bad.append(f"steps={list(steps)} ({len(options)} values needed, one per step)")
        return bad
    for t, (p, values) in enumerate(zip(steps, options)):
        if p not in values:
            bad.append(f"steps[{t}]={p} (legal: {', '.join(map(str, values))})")
    return bad


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def feature_map(t: ir.Tensor) -> tuple[int, int, int]:
    """(H, W, C) of a channels-last stream; a flat vector is 1 x 1 x features."""
    dims = [int(d) for d in t.shape[1:]]
    if len(dims) == 3:
        return dims[0], dims[1], dims[2]
    if len(dims) == 1:
        return 1, 1, dims[0]
    n = 1
    for d in dims[:-1]:
        n *= d
    return 1, n, dims[-1]


def element_bits(t: ir.Tensor) -> int:
    """Bits of one stream element (1 for bipolar codes)."""
    if t.qtype is None:
        return 32
    return 1 if t.qtype.bipolar else t.qtype.bits
