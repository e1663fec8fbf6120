"""Design-space exploration: a folding (pe, simd) per layer, planned against a board.

The explorer asks each layer's kernel (accelgen.kernels) for its legal foldings and their
costs; it never looks at op types. It then solves, exactly:

1. **the smallest initiation interval**: the pipeline's II is its slowest layer's cycles,
   so it is one of the layers' cycle counts. For a candidate II ``T`` every layer may use
   any folding with ``cycles <= T``; ``T`` is feasible when one folding per layer fits the
   budget in every resource. Feasibility only grows with ``T``, so a binary search over
   the candidates finds the smallest feasible one. Each feasibility question is a small
   multi-dimensional multiple-choice knapsack, decided by (a) the per-resource relaxation
   and Lagrangian bounds, which prove infeasibility, (b) Lagrangian-weighted choices,
   which usually find a solution, and (c) a depth-first branch and bound over the
   per-layer Pareto-optimal foldings, which settles the rest exactly (within a node
   budget; if it runs out the result says the II is not proven optimal). It cuts with
   per-resource and Lagrangian bounds and takes interchangeable layers (identical
   options, as in a deep MLP) in non-decreasing option order only;
2. **the cheapest plan at that II** (or at the II a ``target_fps`` needs): minimise the
   summed fractions of the budget used, by per-layer choice when that fits and by branch
   and bound otherwise.

The answer comes with lower bounds on the II (total MACs over the multipliers the budget
affords; the fully unrolled slowest layer; the relaxation) and the gap to them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelgen import analysis, ir
from accelgen.boards import DEFAULT_MAX_UTIL, Board, check_max_util, known_boards
from accelgen.errors import FitError, InputError
from accelgen.kernels import kernel_for, shell, streams
from accelgen.kernels.base import (
    RESOURCE_KEYS,
    Cost,
    Kernel,
    LayerSpec,
    Resources,
    fold_problems,
    foldings,
    price_key,
    total,
)
from accelgen.plan import FoldingPlan, LayerFold

#: branch-and-bound nodes the whole exploration may spend before settling for "not proven"
NODE_BUDGET = 200_000
#: rounds of Lagrangian re-weighting before branch and bound
LAGRANGE_ROUNDS = 40
#: subgradient steps for the multipliers of the cost bound
DUAL_ROUNDS = 300


# ---------------------------------------------------------------------------------------
# Layers and their options
# ---------------------------------------------------------------------------------------


@dataclass
class Layer:
    """One integer op, its kernel and spec, and the cost of every legal folding."""

    op: ir.Op
    kernel: Kernel
    spec: LayerSpec
    legal: dict[str, list[int]]
    folds: list[LayerFold]
    costs: list[Cost]

    @property
    def name(self) -> str:
        return self.op.name

    def index(self, fold: LayerFold) -> int:
        return self.folds.index(fold)


def describe_layers(graph: ir.Graph) -> list[Layer]:
    """Every integer op with its kernel, its spec (bypass FIFOs sized) and the cost of
    every legal folding."""
    specs = streams.layer_specs(graph)
    layers = []
    priced: dict = {}  # layers that differ only in name and accumulator range (a deep stack) price once
    for op in graph.integer_ops():
        kernel = kernel_for(op)
        spec = specs[op.name]
        key = (kernel.__name__, price_key(spec))
        if key not in priced:
            legal = kernel.legal(spec)
            folds = foldings(legal)
            priced[key] = legal, folds, [kernel.cost(spec, f) for f in folds]
        layers.append(Layer(op, kernel, spec, *priced[key]))
    return layers


# ---------------------------------------------------------------------------------------
# The search (pure: arrays of cycles and resource vectors per layer, and a budget)
# ---------------------------------------------------------------------------------------


class _OutOfNodes(Exception):
    pass


def _pareto(res: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The options of ``order`` (cheapest first) that no earlier one matches or beats on
    every column of ``res``.

    Front by front: the first option left is kept and every later one it matches or beats
    is dropped (an option beaten by a dropped one is beaten by the kept one that dropped
    it), so the work grows with the options times the front, not with their square."""
    rows = res[order]
    alive = np.ones(len(order), dtype=bool)
    i = 0
    while i < len(order):
        alive[i + 1 :] &= ~np.all(rows[i] <= rows[i + 1 :], axis=1)
        later = np.flatnonzero(alive[i + 1 :])
        i = i + 1 + int(later[0]) if later.size else len(order)
    return order[alive]


@dataclass
class Problem:
    """``cycles[i]``: (n_i,) cycles of layer i's options; ``res[i]``: (n_i, K) resources;
    ``budget``: (K,). Weights make resources comparable: fractions of the budget."""

    cycles: list[np.ndarray]
    res: list[np.ndarray]
    budget: np.ndarray
    nodes_left: int = NODE_BUDGET
    weights: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.weights = 1.0 / np.maximum(self.budget, 1).astype(np.float64)
        # an option beaten on cycles and on every resource by another is never worth taking
        self.useful = [_pareto(np.column_stack([c, r]), np.lexsort((np.arange(c.size), r @ self.weights, c)))
                       for c, r in zip(self.cycles, self.res)]  # fmt: skip

    @property
    def min_ii(self) -> int:
        return max((int(c.min()) for c in self.cycles), default=0)

    def candidates(self) -> list[int]:
        """Every II worth trying: the layers' cycle counts at or above the unrolled minimum."""
        lo = self.min_ii
        values = {int(v) for c, u in zip(self.cycles, self.useful) for v in c[u] if v >= lo}
        return sorted(values | {lo})

    def allowed(self, ii: int) -> list[np.ndarray]:
        """Per layer: the Pareto-optimal options with cycles <= ii, cheapest first."""
        out = []
        for cyc, res, useful in zip(self.cycles, self.res, self.useful):
            idx = useful[cyc[useful] <= ii]
            if idx.size == 0:
                return []
            order = idx[np.lexsort((idx, cyc[idx], res[idx] @ self.weights))]
            out.append(_pareto(res, order))
        return out

    def relaxation_fits(self, ii: int) -> bool:
        """The necessary condition: each resource's per-layer minima fit on their own."""
        mins = 0
        for cyc, res in zip(self.cycles, self.res):
            ok = cyc <= ii
            if not ok.any():
                return False
            mins = mins + res[ok].min(axis=0)
        return bool(np.all(mins <= self.budget))

    # -- feasibility ---------------------------------------------------------------------

    def feasible(self, ii: int) -> tuple[list[int] | None, bool]:
        """A fitting choice with every layer at <= ii cycles, and whether the answer is proven."""
        if not self.relaxation_fits(ii):
            return None, True
        allowed = self.allowed(ii)
        lam = self.weights.copy()
        budget = self.budget.astype(np.float64)
        for _ in range(LAGRANGE_ROUNDS):
            choice = [int(a[np.argmin(self.res[i][a] @ lam)]) for i, a in enumerate(allowed)]
            used = sum(self.res[i][c] for i, c in enumerate(choice))
            if np.all(used <= self.budget):
                return choice, True
            # the Lagrangian bound: sum of per-layer minima of lam.r must not exceed lam.budget
            if sum(float((self.res[i][a] @ lam).min()) for i, a in enumerate(allowed)) > lam @ budget + 1e-9:
                return None, True
            over = used / np.maximum(budget, 1.0)
            lam = lam * np.where(used > self.budget, np.clip(over, 1.1, 4.0), 1.0)
        try:
            return self._branch_and_bound(allowed, lam, objective=None), True
        except _OutOfNodes:
            return None, False

    # -- the smallest II -------------------------------------------------------------------

    def minimise(self) -> tuple[list[int] | None, int, bool]:
        """Binary search for the smallest feasible II over :meth:`candidates`.

        Returns (choice, II, proven); choice None when nothing fits at any II. ``proven``:
        every feasibility answer on the way was exact (none ran out of nodes).
        """
        candidates = self.candidates()
        choice, proven = self.feasible(candidates[-1])
        if choice is None:
            return None, candidates[-1], proven
        lo, hi, best, all_proven = 0, len(candidates) - 1, choice, proven
        while lo < hi:
            mid = (lo + hi) // 2
            found, proven = self.feasible(candidates[mid])
            all_proven = all_proven and proven
            if found is not None:
                hi, best = mid, found
            else:
                lo = mid + 1
        return best, candidates[lo], all_proven

    # -- cheapest plan at an II ----------------------------------------------------------

    def cheapest(self, ii: int, start: list[int]) -> tuple[list[int], bool]:
        """The fitting choice at <= ii cycles with the least summed budget fraction."""
        allowed = self.allowed(ii)
        choice = [int(a[0]) for a in allowed]  # cheapest first
        used = sum(self.res[i][c] for i, c in enumerate(choice))
        if np.all(used <= self.budget):
            return choice, True
        best = self._improve(allowed, list(start))
        try:
            found = self._branch_and_bound(allowed, self.weights, objective=best)
        except _OutOfNodes:
            return best, False
        return (found if found is not None else best), True

    def _score(self, choice: list[int]) -> float:
        return float(sum(self.res[i][c] @ self.weights for i, c in enumerate(choice)))

    def _improve(self, allowed: list[np.ndarray], choice: list[int]) -> list[int]:
        """Greedy descent: switch single layers to cheaper options while everything fits."""
        used = sum(self.res[i][c] for i, c in enumerate(choice))
        changed = True
        while changed:
            changed = False
            for i, a in enumerate(allowed):
                cur = self.res[i][choice[i]]
                for opt in a:  # cheapest first
                    cand = self.res[i][opt]
                    if cand @ self.weights >= cur @ self.weights - 1e-12:
                        break
                    if np.all(used - cur + cand <= self.budget):
                        used = used - cur + cand
                        choice[i] = int(opt)
                        changed = True
                        break
        return choice

    def _dual(self, opts: list[np.ndarray], w: np.ndarray, target: float | None = None) -> np.ndarray:
        """Multipliers ``mu >= 0`` for the Lagrangian bound of "minimise sum w.r subject to
        sum r <= budget": sum_i min_o (w + mu).r_io - mu.budget. Any mu gives a valid bound;
        a projected subgradient ascent finds a strong one (Polyak steps towards ``target``,
        the incumbent's cost, when there is one). ``w`` zero (feasibility): the bound is
        positive for some mu exactly when the relaxation shows nothing fits."""
        k = self.budget.size
        width = max(r.shape[0] for r in opts)
        stack = np.zeros((len(opts), width, k))
        pad = np.ones((len(opts), width), bool)
        for i, r in enumerate(opts):
            stack[i, : r.shape[0]] = r
            pad[i, : r.shape[0]] = False
        budget = self.budget.astype(np.float64)
        scale = np.maximum(budget, 1.0)
        rows = np.arange(len(opts))
        unit = self.weights  # mu = nu * unit: nu in units of each resource's budget
        feasibility = not w.any()
        nu = np.ones(k) if feasibility else np.zeros(k)
        best_mu, best_value, factor, stalled = nu * unit, -math.inf, 2.0, 0
        for _ in range(DUAL_ROUNDS):
            mu = nu * unit
            scores = np.where(pad, np.inf, stack @ (w + mu))
            pick = scores.argmin(axis=1)
            value = float(scores[rows, pick].sum() - mu @ budget)
            if value > best_value + 1e-12:
                best_value, best_mu, stalled = value, mu, 0
            else:
                stalled += 1
                if stalled >= 10:
                    factor, stalled = factor * 0.5, 0
            if feasibility and value > 0:  # nothing fits: proven already
                break
            slack = (stack[rows, pick].sum(axis=0) - budget) / scale  # a subgradient in nu
            slack[(nu <= 0) & (slack < 0)] = 0.0  # projected onto nu >= 0
            norm = float(slack @ slack)
            if norm == 0:  # a fitting choice with complementary slackness: optimal
                break
            if target is None or target <= value:
                step = factor / math.sqrt(norm)
            else:
                step = factor * (target - value) / norm
            nu = np.maximum(nu + step * slack, 0.0)
        return best_mu

    def _branch_and_bound(self, allowed: list[np.ndarray], lam: np.ndarray,
                          objective: list[int] | None) -> list[int] | None:  # fmt: skip
        """Depth-first search over the Pareto options.

        ``objective`` None: return the first fitting choice (None if there is none).
        Otherwise: minimise the weighted cost, starting from the fitting choice given.

        A partial choice is cut when the rest cannot fit (per-resource minima) or cannot
        beat the incumbent (Lagrangian bounds: with mu >= 0, any fitting completion costs
        at least score + sum_rest min (w + mu).r - mu.(budget - used)). Layers with
        identical options are interchangeable: their options are taken in non-decreasing
        rank only, which keeps one of every set of equivalent choices.
        """
        n, k = len(allowed), self.budget.size
        minimising = objective is not None
        w = self.weights if minimising else np.zeros(k)
        opts = [self.res[i][a] for i, a in enumerate(allowed)]
        target = self._score(objective) if minimising else None
        dual = self._dual(opts, w, target)
        # the last multipliers also rank the options: the dual's when minimising, the
        # search weights ``lam`` (which tend to find a fitting choice first) otherwise
        mus = [np.zeros(k), dual] if minimising else [dual, np.asarray(lam, np.float64)]
        key = [(r.shape, r.tobytes()) for r in opts]
        groups: dict = {}
        for i in range(n):
            groups.setdefault(key[i], []).append(i)
        # layers with most options first: their choice constrains the rest the most
        order = [i for g in sorted(groups.values(), key=lambda g: (-opts[g[0]].shape[0], g[0])) for i in g]
        twin = [j > 0 and key[order[j]] == key[order[j - 1]] for j in range(n)]
        rank_w = w + mus[-1]
        ranked, rows, scores, mu_terms = [], [], [], []
        for i in order:
            r = opts[i]
            rank = np.lexsort((np.arange(r.shape[0]), r @ rank_w))
            ranked.append([int(o) for o in rank])
            rows.append([tuple(int(v) for v in row) for row in r[rank]])
            scores.append([float(s) for s in r[rank] @ w])
            mu_terms.append([[float(s) for s in r[rank] @ mu] for mu in mus])
        mins = np.array([opts[i].min(axis=0) for i in order], dtype=np.int64).reshape(n, k)
        suffix = np.zeros((n + 1, k), np.int64)
        suffix[:n] = np.cumsum(mins[::-1], axis=0)[::-1]
        suffix_rows = [tuple(int(v) for v in s) for s in suffix]
        # per mu: sum over the layers from j on of min_o (w + mu).r, minus mu.budget
        suffix_mu = []
        for mu in mus:
            per = np.array([float((opts[i] @ (w + mu)).min()) for i in order])
            tail = np.zeros(n + 1)
            tail[:n] = np.cumsum(per[::-1])[::-1]
            suffix_mu.append([float(t) - float(mu @ self.budget) for t in tail])
        n_mu = len(mus)
        budget = tuple(int(b) for b in self.budget)
        best_choice = list(objective) if minimising else None
        # minimising: beat the incumbent; searching: stay within the Lagrangian bound lam.budget
        best_score = self._score(objective) - 1e-9 if minimising else 1e-9
        pick = [0] * n

        def record() -> list[int]:
            out = [0] * n
            for jj, i in enumerate(order):
                out[i] = int(allowed[i][ranked[jj][pick[jj]]])
            return out

        def visit(j: int, used: tuple, score: float, mu_used: list[float]) -> bool:
            nonlocal best_choice, best_score
            self.nodes_left -= 1
            if self.nodes_left < 0:
                raise _OutOfNodes
            if j == n:
                if not minimising:
                    best_choice = record()
                    return True
                if score < best_score:
                    best_score = score
                    best_choice = record()
                return False
            rest = suffix_rows[j + 1]
            tails = [suffix_mu[m][j + 1] for m in range(n_mu)]
            row_j, score_j, mu_j = rows[j], scores[j], mu_terms[j]
            for o in range(pick[j - 1] if twin[j] else 0, len(row_j)):
                s = score + score_j[o]
                new_mu = [mu_used[m] + mu_j[m][o] for m in range(n_mu)]
                # cannot beat the incumbent / exceeds the Lagrangian bound; options are ranked
                # by the last bound's weights, so once it fails it fails for every later one
                if s + tails[-1] + new_mu[-1] > best_score + 1e-9:
                    break
                if s + tails[0] + new_mu[0] > best_score + 1e-9:
                    continue
                r = row_j[o]
                new = tuple(a + b for a, b in zip(used, r))
                if any(x + y > b for x, y, b in zip(new, rest, budget)):
                    continue
                pick[j] = o
                if visit(j + 1, new, s, new_mu):
                    return True
            return False

        visit(0, (0,) * k, 0.0, [0.0] * n_mu)
        return best_choice


# ---------------------------------------------------------------------------------------
# The explorer
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    """Lower bounds on the II (cycles) and how far the plan is from them."""

    ii_cycles: int
    macs_per_multiplier: int  # total MACs / multipliers the budget affords
    fully_unrolled: int  # the slowest layer at its most parallel folding
    relaxation: int  # smallest II whose per-resource relaxation fits
    proven_optimal: bool  # the plan's II is the smallest feasible one (exact search)

    def gap(self, ii: int) -> float:
        return ii / self.ii_cycles - 1.0 if self.ii_cycles else 0.0


@dataclass
class LayerPlan:
    layer: Layer
    fold: LayerFold
    cost: Cost

    @property
    def name(self) -> str:
        return self.layer.name


@dataclass
class Estimate:
    """A planned design: per-layer foldings and costs, totals, bounds. All estimates."""

    model: str
    board: Board
    clock_mhz: float
    max_util: float
    budget: dict[str, int]
    layers: list[LayerPlan]
    ii_cycles: int
    latency_cycles: int
    resources: Resources
    bound: Bound
    mode: str  # "min-ii", "target-fps" or "given"
    target_fps: float | None = None
    cost_optimal: bool = True
    notes: list[str] = field(default_factory=list)
    search_seconds: float = 0.0
    table: list[dict[str, Any]] = field(default_factory=list)  # analysis.layer_table rows
    #: the AXI-Stream ports (the II is at least their beats per frame) and everything outside
    #: the kernels (the shell and the stream plumbing the chosen plan instantiates,
    #: accelgen.kernels.shell / plumbing): ``budget`` is what the kernels may use once the
    #: shell and the fully folded plan's plumbing are taken off; ``resources`` is the kernels' sum
    interface: shell.Interface | None = None
    overhead: Resources = Resources()

    @property
    def whole_design(self) -> Resources:
        """Kernels (calibrated) plus shell: the estimate of the whole design's utilisation."""
        return shell.whole_design(self.resources, self.overhead)

    @property
    def fps(self) -> float:
        return self.clock_mhz * 1e6 / max(self.ii_cycles, 1)

    @property
    def latency_us(self) -> float:
        return self.latency_cycles / self.clock_mhz

    @property
    def bottleneck(self) -> LayerPlan:
        return max(self.layers, key=lambda lp: lp.cost.cycles)

    @property
    def total_macs(self) -> int:
        return sum(lp.layer.kernel.multiplier(lp.layer.spec).macs for lp in self.layers)

    @property
    def multipliers(self) -> int:
        return sum(lp.cost.multipliers for lp in self.layers)

    def multiplier_efficiency(self) -> float:
        """Achieved MACs per cycle over the multipliers instantiated (1.0: all busy)."""
        if not self.multipliers or not self.ii_cycles:
            return 0.0
        return self.total_macs / self.ii_cycles / self.multipliers

    def utilisation(self) -> dict[str, float]:
        used = self.whole_design.as_dict()
        return {k: (used[k] / n if n else (0.0 if not used[k] else math.inf)) for k, n in self.board.resources.items()}

    def plan(self) -> FoldingPlan:
        return FoldingPlan(
            layers={lp.name: lp.fold for lp in self.layers},
            board=self.board.name,
            clock_mhz=self.clock_mhz,
            meta={
                "generator": "accelgen dse",
                "mode": self.mode,
                "max_util": self.max_util,
                "ii_cycles": self.ii_cycles,
                "estimate": True,
                # the AXI-Stream width the plan was costed at (code generation's bus_bits)
                "bus_bits": self.interface.bus_bits if self.interface else shell.DEFAULT_BUS_BITS,
                "legal": {lp.name: lp.layer.legal for lp in self.layers},
                "sources": {lp.name: lp.layer.op.source for lp in self.layers},
            },
        )


def _problem(layers: list[Layer], keys: list[str], budget: dict[str, int]) -> Problem:
    cycles = [np.array([c.cycles for c in layer.costs], dtype=np.int64) for layer in layers]
    cols = [RESOURCE_KEYS.index(k) for k in keys]
    res = [np.array([c.resources for c in layer.costs], dtype=np.int64).reshape(-1, len(RESOURCE_KEYS))[:, cols]
           for layer in layers]  # fmt: skip
    return Problem(cycles, res, np.array([budget[k] for k in keys], dtype=np.int64))


def _mac_bound(layers: list[Layer], keys: list[str], budget: dict[str, int]) -> int:
    need = dict.fromkeys(keys, 0.0)
    for layer in layers:
        m = layer.kernel.multiplier(layer.spec)
        for k, unit in m.unit.items():
            if k in need:
                need[k] += m.macs * unit
    bounds = [math.ceil(v / budget[k] - 1e-9) for k, v in need.items() if v > 0 and budget[k] > 0]
    return max(bounds, default=0)


def _relaxation_bound(problem: Problem, candidates: list[int]) -> int | None:
    lo, hi = 0, len(candidates) - 1
    if not problem.relaxation_fits(candidates[hi]):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if problem.relaxation_fits(candidates[mid]):
            hi = mid
        else:
            lo = mid + 1
    return candidates[lo]


def explore(
    graph: ir.Graph,
    board: Board,
    *,
    max_util: float = DEFAULT_MAX_UTIL,
    clock_mhz: float | None = None,
    target_fps: float | None = None,
    folding: FoldingPlan | None = None,
    model: str | None = None,
    bus_bits: int = shell.DEFAULT_BUS_BITS,
) -> Estimate:
    """Plan the lowered ``graph`` on ``board``: the minimum-II plan (default), the cheapest
    plan reaching ``target_fps``, or the given ``folding`` validated and costed.

    Raises FitError (exit 3) when nothing fits, InputError for an illegal plan or option.
    """
    t0 = time.perf_counter()
    check_max_util(max_util)
    clock = float(clock_mhz or board.default_clock_mhz)
    if clock <= 0:
        raise InputError(f"--clock must be positive, not {clock_mhz}")
    if target_fps is not None and target_fps <= 0:
        raise InputError(f"--target-fps must be positive, not {target_fps}")
    model = model or graph.name
    keys = [k for k in RESOURCE_KEYS if k in board.resources]
    budget = {k: v for k, v in board.budget(max_util).items() if k in keys}
    layers = describe_layers(graph)
    if not layers:
        raise InputError(f"{model}: no integer layer to put in hardware (everything runs on the host)")
    iface = shell.interface(graph, bus_bits)
    specs = {la.name: la.spec for la in layers}
    family, n_windows, full = board.processing_system, shell.windows(graph), budget
    # the stream plumbing depends on the plan (width converters between differently folded
    # layers): the search reserves that of the fully folded plan (or of the given plan, once legal), and
    # the estimate carries what the chosen plan instantiates (a note says when that breaks the budget)
    given = folding is not None and not any(fold_problems(la.legal, folding.fold(la.name)) for la in layers)
    reserve = shell.stream_plumbing(graph, folding.layers if given else None, bus_bits, specs)  # type: ignore[union-attr]
    overhead = shell.overhead(family, iface, reserve, n_windows)
    notes: list[str] = []
    budget = shell.kernel_budget(full, overhead)  # the kernels' share (< 0: nothing fits)
    problem = _problem(layers, keys, budget)
    relax = _relaxation_bound(problem, problem.candidates())
    if folding is not None:
        choice = _validate(folding, layers, board, notes, overhead)
        mode, proven, cost_optimal = "given", False, False
    elif relax is None:
        raise _no_fit(model, board, max_util, layers, keys, budget, overhead=overhead)
    elif target_fps is not None:
        mode, proven = "target-fps", True
        choice, cost_optimal = _cheapest_at_rate(problem, layers, model, board, max_util, clock, target_fps, iface)
    else:
        mode = "min-ii"
        choice, ii, proven = problem.minimise()
        if choice is None:
            raise _no_fit(model, board, max_util, layers, keys, budget, proven=proven, overhead=overhead)
        ii = max(ii, iface.beats)  # the ports set the pace: fold the layers down to it
        choice, cost_optimal = problem.cheapest(ii, choice)
        if not proven:
            notes.append(
                f"the search ran out of its {NODE_BUDGET:,}-node budget: the II fits but is not proven minimal"
            )
    folds = {la.name: la.folds[c] for la, c in zip(layers, choice)}
    plumb = shell.stream_plumbing(graph, folds, bus_bits, specs)
    extra = {k: v for k, v in (plumb + reserve * -1).as_dict().items() if v > 0}
    overhead = shell.overhead(family, iface, plumb, n_windows)  # what the chosen plan instantiates
    used = shell.whole_design(total([la.costs[c].resources for la, c in zip(layers, choice)]), overhead).as_dict()
    over = [k for k in extra if k in full and used[k] > full[k]]
    if over:
        notes.append("the chosen plan's width converters between differently folded layers take "
                     + ", ".join(f"{extra[k]:,} {k}" for k in over) + " more than the search reserved for the "
                     + "stream plumbing: the whole design is over the budget in " + ", ".join(over))  # fmt: skip
    if mode != "given" and not cost_optimal:
        notes.append("the resources spent at this II are a local optimum (search budget exhausted)")
    bound = Bound(
        ii_cycles=max(_mac_bound(layers, keys, budget), problem.min_ii, relax or 0, iface.beats, 1),
        macs_per_multiplier=_mac_bound(layers, keys, budget),
        fully_unrolled=problem.min_ii,
        relaxation=relax or 0,
        proven_optimal=mode == "min-ii" and proven,
    )
    plans = [LayerPlan(la, la.folds[c], la.costs[c]) for la, c in zip(layers, choice)]
    ii = max(max(lp.cost.cycles for lp in plans), iface.beats, 1)
    lag_of = {la.name: la.kernel.lag for la in layers}
    latency = streams.frame_latency(graph, {la.name: la.spec for la in layers}, {lp.name: lp.cost for lp in plans},
                                    lambda s: lag_of[s.name](s))  # fmt: skip
    return Estimate(
        model=model, board=board, clock_mhz=clock, max_util=max_util, budget=budget, layers=plans, ii_cycles=ii,
        latency_cycles=max(latency, ii), resources=total([lp.cost.resources for lp in plans]), bound=bound,
        mode=mode, target_fps=target_fps, cost_optimal=cost_optimal, notes=notes,
        search_seconds=time.perf_counter() - t0, table=analysis.layer_table(graph), interface=iface,
        overhead=overhead,
    )  # fmt: skip


def _check_interface_rate(iface: shell.Interface, clock: float, target_fps: float) -> None:
    """FitError when ``target_fps`` needs fewer cycles per frame than the ports' beats."""
    if math.floor(clock * 1e6 / target_fps) < iface.beats:
        busy = max(iface.ports, key=lambda p: p.beats)
        raise FitError(
            f"{target_fps:g} fps at {clock:g} MHz needs an II below the {iface.beats} beats per frame of the "
            f"{iface.bus_bits}-bit AXI-Stream port of '{busy.tensor}' ({busy.elements} x {busy.bits}-bit codes; "
            f"at most {clock * 1e6 / iface.beats:,.1f} fps). Try a higher --clock or a lower --target-fps."
        )


def _cheapest_at_rate(problem: Problem, layers: list[Layer], model: str, board: Board, max_util: float,
                      clock: float, target_fps: float, iface: shell.Interface) -> tuple[list[int], bool]:  # fmt: skip
    """The cheapest choice whose every layer runs within the II that ``target_fps`` allows."""
    ii_target = math.floor(clock * 1e6 / target_fps)
    if ii_target < problem.min_ii:
        slow = max(layers, key=lambda la: min(c.cycles for c in la.costs))
        raise FitError(
            f"{target_fps:g} fps at {clock:g} MHz needs an II of {ii_target} cycles, but layer '{slow.name}' "
            f"takes {problem.min_ii} cycles even fully unrolled (at most {clock * 1e6 / problem.min_ii:,.1f} fps). "
            "Try a higher --clock or a lower --target-fps."
        )
    _check_interface_rate(iface, clock, target_fps)
    start, _ = problem.feasible(ii_target)
    if start is None:
        best, best_ii, _ = problem.minimise()
        hint = (f" the fastest plan that fits reaches {clock * 1e6 / best_ii:,.1f} fps (II {best_ii} cycles)."
                if best is not None else " no plan fits at all.")  # fmt: skip
        raise FitError(
            f"{model} cannot reach {target_fps:g} fps on {board.title} within {max_util:.0%} of its resources "
            f"(estimate):{hint} Try a lower --target-fps, --max-util closer to 1, fewer bits or a larger board."
        )
    return problem.cheapest(ii_target, start)


def _validate(plan: FoldingPlan, layers: list[Layer], board: Board, notes: list[str],
              overhead: Resources) -> list[int]:  # fmt: skip
    """Each layer's folding from the plan, checked against its kernel's legal values."""
    names = [la.name for la in layers]
    unknown = [n for n in plan.layers if n not in names]
    if unknown:
        raise InputError(
            f"folding plan: no layer named {', '.join(repr(n) for n in unknown)} in this model; "
            f"its layers are: {', '.join(names)}"
        )
    problems = []
    for la in layers:
        fold = plan.fold(la.name)
        bad = fold_problems(la.legal, fold)
        if bad:
            problems.append(f"layer '{la.name}' ({la.op.kind}): illegal {' and '.join(bad)}")
    if problems:
        raise InputError("folding plan: " + "; ".join(problems))
    missing = [n for n in names if n not in plan.layers]
    if missing:
        notes.append(f"layers missing from the plan use pe=simd=1: {', '.join(missing)}")
    if plan.board and plan.board != board.name:
        notes.append(f"the plan was made for board '{plan.board}', costed here for '{board.name}'")
    choice = []
    for la in layers:
        fold = plan.fold(la.name)
        if fold not in la.folds:
            la.folds.append(fold)
            la.costs.append(la.kernel.cost(la.spec, fold))
        choice.append(la.index(fold))
    used = shell.whole_design(total([la.costs[c].resources for la, c in zip(layers, choice)]), overhead).as_dict()
    over = [f"{k} {used[k]:,} > {n:,}" for k, n in board.resources.items() if used.get(k, 0) > n]
    if over:
        raise FitError(f"the folding plan does not fit {board.title} (estimate): {'; '.join(over)}. "
                       "Fold the largest layers more (smaller pe / simd) or use a larger board.")  # fmt: skip
    return choice


def _no_fit(model: str, board: Board, max_util: float, layers: list[Layer], keys: list[str],
            budget: dict[str, int], proven: bool = True, *, overhead: Resources) -> FitError:  # fmt: skip
    """The FitError for a model that fits no plan: what the fully folded design needs."""
    folded = [la.costs[la.index(LayerFold(1, 1))] if LayerFold(1, 1) in la.folds else la.costs[0] for la in layers]
    need = total([c.resources for c in folded]).as_dict()
    over = [k for k in keys if need[k] > budget[k]] or [max(keys, key=lambda k: need[k] / max(budget[k], 1))]
    key = max(over, key=lambda k: need[k] / max(budget[k], 1))
    users = sorted(((c.resources.as_dict()[key], la.name) for la, c in zip(layers, folded)), reverse=True)
    top = ", ".join(f"'{n}' {v:,}" for v, n in users[:3] if v > 0)
    share = f"{max_util:.0%}" if max_util >= 0.01 else f"{max_util:.1%}"  # --max-util 0.001 is not "0%"
    needs = "; ".join(
        f"{need[k]:,} {k} (budget {budget[k]:,} = {share} of {board.resources[k]:,} less the shell)" for k in over
    )
    enough = _budget_that_fits(board, max_util, need, over, overhead)
    if enough is not None:  # the board has room: the budget is what is too small
        where = f"the budget of --max-util {max_util:g} on {board.title} ({board.name})"
    else:
        where = f"{board.title} ({board.name})"
    head = f"{model} does not fit {where} even fully folded (pe = simd = 1): it needs {needs}"
    if not proven:
        head += "; no faster plan that fits was found within the search budget either"
    hints = [f"a larger budget: it fits at --max-util {enough:g} (now {max_util:g})"] if enough is not None else []
    if key in ("bram18", "lutram", "lut", "uram"):
        hints.append("fewer weight bits (weights live on chip at their bit width)")
    if key in ("dsp", "lut", "ff"):
        hints.append("fewer bits (products of operands of <= 4 bits are built in LUTs, not DSPs)")
    if enough is None:
        bigger = [b.name for b in known_boards().values()
                  if b.name != board.name
                  and all(shell.kernel_budget(b.budget(max_util), overhead).get(k, 0) >= need[k] for k in over)]  # fmt: skip
        hints.append(
            f"a larger board ({', '.join(bigger)})" if bigger else "a larger board (none of the known ones has enough)"
        )
    return FitError(f"{head}. Largest users of {key} (estimate): {top or 'none'}. Try: {'; '.join(hints)}.")


#: the budgets a "does not fit" message may suggest instead of the one given, smallest first
SUGGESTED_MAX_UTIL = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def _budget_that_fits(board: Board, max_util: float, need: dict[str, int], over: list[str],
                      overhead: Resources) -> float | None:  # fmt: skip
    """The smallest suggested --max-util above ``max_util`` at which ``need`` (the fully
    folded design's kernels) fits ``board`` in every resource of ``over``; None if none does."""
    for util in SUGGESTED_MAX_UTIL:
        if util > max_util and all(need[k] <= shell.kernel_budget(board.budget(util), overhead)[k] for k in over):
            return util
    return None
