"""The TTDense hardware (hls/accelgen/tt.h, accelgen/kernels/tt.py): randomized bit-exact
C simulation against a numpy reference written here, and its cost model and plan.

Each case is a small lowered graph built by hand: random integer cores of 2..8 bits
(signed, unsigned with a zero point, narrow), d = 2, 3, 4, contraction orders
right-to-left, left-to-right and inside-out, intermediate requantizers as thresholds and
as multiply-shift, foldings from all-1 to fully parallel, a TTDense between two Dense
layers. All cases share one g++ library per C-simulation model (ap_types and native).

The reference contracts the integer cores one step at a time from the TT definition
(``accelgen.ir.TTDense``) and applies the requantizers by their definitions in
accelgen/ir.py; it does not use accelgen.golden. Code generation writes the testbench's
vectors with the golden model, which must therefore equal the reference too
(``test_golden_equals_the_reference``).
"""

from __future__ import annotations

import itertools
import math
import string

import numpy as np
import pytest

from accelgen import analysis, boards, dse, golden, ir, report
from accelgen.codegen import generate
from accelgen.csim import run_csim
from accelgen.errors import InputError
from accelgen.kernels import dense as dense_kernel
from accelgen.kernels import kernel_for
from accelgen.kernels import tt as tt_kernel
from accelgen.plan import FoldingPlan, LayerFold
from tests.test_hls_kernels import (
    ACC,
    BIPOLAR,
    GraphBuilder,
    assert_layers_equal_reference,
    case_emulators,
    centred,
    qt,
    random_codes,
    ref_requant,
)

MODELS = ("ap_types", "native")


# -- the numpy reference -------------------------------------------------------------------------


def ref_tt(x: np.ndarray, op: ir.TTDense, xq: ir.QType) -> np.ndarray:
    """Contract the centred input with the cores in ``op.order``, requantizing between steps.

    The state after contracting the run of cores [a..b] has axes (batch, the input modes
    not yet contracted, j_a..j_b, r_a, r_{b+1}), as in the TT contract.
    """
    d = len(op.modes_in)
    letters = iter(string.ascii_letters)
    i_ax = [next(letters) for _ in range(d)]
    j_ax = [next(letters) for _ in range(d)]
    r_ax = [next(letters) for _ in range(d + 1)]
    batch = next(letters)
    state = centred(x, xq).reshape(x.shape[0], *op.modes_in).astype(object)
    ins, outs, ranks = list(i_ax), [], []  # the state's axes: batch, ins, outs, ranks
    lo = hi = None
    for t, k in enumerate(op.order):
        before = [batch, *ins, *outs, *ranks]
        ins = [a for a in ins if a != i_ax[k]]
        if lo is None:  # the first core brings j_k, r_k and r_{k+1}
            outs, ranks, lo, hi = [j_ax[k]], [r_ax[k], r_ax[k + 1]], k, k
        elif k == hi + 1:  # extend to the right: sum over i_k and r_k
            outs, ranks, hi = [*outs, j_ax[k]], [r_ax[lo], r_ax[k + 1]], k
        else:  # extend to the left: sum over i_k and r_{k+1}
            assert k == lo - 1, op.order
            outs, ranks, lo = [j_ax[k], *outs], [r_ax[k], r_ax[hi + 1]], k
        after = [batch, *ins, *outs, *ranks]
        spec = f"{''.join(before)},{r_ax[k]}{i_ax[k]}{j_ax[k]}{r_ax[k + 1]}->{''.join(after)}"
        state = np.einsum(spec, state, op.cores[k].astype(object))
        if t < d - 1:
            flat = ref_requant(state.reshape(-1, 1).astype(np.int64), op.mid_requant[t])
            state = flat.reshape(state.shape).astype(object)
    acc = state.reshape(x.shape[0], op.out_features).astype(np.int64)
    return ref_requant(acc, op.requant)


def ref_run(g: ir.Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    env = dict(inputs)
    for op in g.ops:
        xq = g.tensors[op.inputs[0]].qtype
        x = env[op.inputs[0]]
        if isinstance(op, ir.TTDense):
            env[op.outputs[0]] = ref_tt(x, op, xq)
        elif isinstance(op, ir.Dense):
            env[op.outputs[0]] = ref_requant(centred(x, xq) @ op.weights.T, op.requant)
        else:
            raise AssertionError(op.kind)
    return env


# -- building cases ------------------------------------------------------------------------------


def _state_range(q: ir.QType, zp: int) -> int:
    return max(abs(q.qmin - zp), abs(q.qmax - zp))


def add_tt(b: GraphBuilder, x: str, modes_in, modes_out, ranks, order, core_qs, mid_qs, out_q, *,
           mid_rq: str = "thresholds_shared", rq: str = "thresholds", fold=None) -> str:  # fmt: skip
    """A TTDense with random cores, per-tensor intermediate requantizers of kind ``mid_rq``
    ("thresholds_shared" or "ms") and a per-channel output requantizer of kind ``rq``."""
    d = len(modes_in)
    cores = []
    for k in range(d):
        q = core_qs[k]
        shape = (ranks[k], modes_in[k], modes_out[k], ranks[k + 1])
        cores.append((random_codes(b.rng, q, shape) - int(q.zero_point[0])).astype(np.int64))
    steps = tt_kernel.geometry(modes_in, modes_out, ranks, order)
    amp = _state_range(b.q(x), int(b.q(x).zero_point[0]))
    mids = []
    for t, st in enumerate(steps):
        g = tt_kernel.core_matrix(st, cores[st.core])
        span = max(int(np.abs(g).sum(axis=0).max()) * amp, 1)
        if t < d - 1:
            mid = b.requant(mid_qs[t], -span, span, 1, mid_rq)
            if isinstance(mid, ir.MultiplyShift):
                mid = ir.MultiplyShift(mid.multiplier[:1], mid.offset[:1], mid.shift, mid.lo[:1], mid.hi[:1],
                                       mid.direction[:1])  # fmt: skip
            mids.append(mid)
            amp = _state_range(mid_qs[t], 0)
    name = f"tt{len(b.ops)}"
    features = math.prod(modes_out)
    y = b.tensor(f"{name}_out", (features,), out_q or ACC, "codes" if out_q else "acc")
    op = ir.TTDense(
        name, (x,), (y,), modes_in=tuple(modes_in), modes_out=tuple(modes_out), ranks=tuple(ranks),
        order=tuple(order), cores=tuple(cores), core_qtypes=tuple(core_qs), mid_qtypes=tuple(mid_qs),
        mid_requant=tuple(mids), requant=b.requant(out_q, -span, span, features, rq),
    )  # fmt: skip
    return b._add_op(op, y, fold)


F = LayerFold
CASES: dict[str, object] = {}


def case(name: str):
    def register(fn):
        CASES[name] = fn
        return fn

    return register


def steps_of(g: ir.Graph, name: str) -> list[tt_kernel.Step]:
    op = next(o for o in g.ops if o.name == name)
    return tt_kernel.geometry(op.modes_in, op.modes_out, op.ranks, op.order)


@case("d2_right_to_left_all1_thresholds")
def _():
    b = GraphBuilder("t", 1)
    x = b.input("x", (12,), qt(4, False, zp=5))
    y = add_tt(b, x, (3, 4), (2, 3), (1, 3, 1), (1, 0), [qt(4, True), qt(3, True)], [qt(5, True)], qt(4, False),
               fold=F(1, 1, (1, 1)))  # fmt: skip
    return b.finish(y)


@case("d2_left_to_right_full_parallel_ms")
def _():
    b = GraphBuilder("t", 2)
    x = b.input("x", (12,), qt(8, True))
    st = tt_kernel.geometry((4, 3), (3, 2), (1, 4, 1), (0, 1))
    full = tuple(s.red * s.cols for s in st)
    y = add_tt(b, x, (4, 3), (3, 2), (1, 4, 1), (0, 1), [qt(8, True, narrow=True), qt(6, True)], [qt(8, False)],
               qt(7, True), mid_rq="ms", rq="ms", fold=F(1, 1, full))  # fmt: skip
    return b.finish(y)


@case("d3_left_to_right_mixed_fold_thresholds")
def _():
    b = GraphBuilder("t", 3)
    x = b.input("x", (24,), qt(3, False))
    y = add_tt(b, x, (2, 3, 4), (2, 2, 3), (1, 3, 2, 1), (0, 1, 2), [qt(2, True), qt(5, False, zp=9), qt(3, True)],
               [qt(4, False), qt(6, True)], qt(3, True), fold=F(1, 1, (2, 6, 4)))  # fmt: skip
    return b.finish(y)


@case("d3_right_to_left_ms_raw_acc_out")
def _():
    b = GraphBuilder("t", 4)
    x = b.input("x", (18,), qt(6, False, zp=20))
    y = add_tt(b, x, (3, 2, 3), (2, 2, 2), (1, 2, 3, 1), (2, 1, 0), [qt(7, True), qt(8, False, zp=128), qt(4, True)],
               [qt(8, True), qt(5, False)], None, mid_rq="ms", fold=F(1, 1, (3, 4, 2)))  # fmt: skip
    return b.finish(y)


@case("d3_inside_out_reorder")
def _():
    b = GraphBuilder("t", 5)
    x = b.input("x", (30,), qt(5, True))
    # order (1, 2, 0): the last step contracts core 0, so its outputs are reordered
    y = add_tt(b, x, (2, 5, 3), (3, 2, 2), (1, 2, 3, 1), (1, 2, 0), [qt(3, True), qt(4, True), qt(6, True)],
               [qt(6, True), qt(4, False)], qt(5, False), mid_rq="ms", fold=F(1, 1, (5, 3, 6)))  # fmt: skip
    return b.finish(y)


@case("d4_right_to_left_all1_mixed_requant")
def _():
    b = GraphBuilder("t", 6)
    x = b.input("x", (24,), qt(4, False))
    y = add_tt(b, x, (2, 3, 2, 2), (2, 2, 3, 2), (1, 3, 2, 3, 1), (3, 2, 1, 0),
               [qt(2, True), qt(8, True), qt(4, False, zp=7), qt(5, True)], [qt(6, True), qt(3, False), qt(8, True)],
               qt(6, True), fold=F(1, 1, (1, 1, 1, 1)))  # fmt: skip
    return b.finish(y)


@case("d4_inside_out_full_parallel")
def _():
    b = GraphBuilder("t", 7)
    x = b.input("x", (24,), qt(2, False))
    order = (2, 1, 3, 0)
    st = tt_kernel.geometry((2, 3, 2, 2), (2, 2, 2, 3), (1, 2, 3, 2, 1), order)
    full = tuple(s.red * s.cols for s in st)
    y = add_tt(b, x, (2, 3, 2, 2), (2, 2, 2, 3), (1, 2, 3, 2, 1), order,
               [qt(3, True), qt(2, True), qt(7, True), qt(4, True)], [qt(4, True), qt(8, False), qt(2, True)],
               qt(8, False), mid_rq="ms", rq="ms", fold=F(1, 1, full))  # fmt: skip
    return b.finish(y)


def _bipolar_case(order, steps):  # (1, 0): InputSign then SignSelect; (0, 1): XnorPopcount then LUT products
    b = GraphBuilder("t", 9)
    x = b.input("x", (8,), BIPOLAR)
    y = add_tt(b, x, (2, 4), (3, 2), (1, 2, 1), order, [BIPOLAR, qt(4, True)], [qt(3, True)], qt(4, True),
               fold=F(1, 1, steps))  # fmt: skip
    return b.finish(y)


CASES["d2_bipolar_input_sign_select"] = lambda: _bipolar_case((1, 0), (2, 3))
CASES["d2_bipolar_xnor_popcount"] = lambda: _bipolar_case((0, 1), (3, 4))


@case("dense_tt_dense_chain")
def _():
    b = GraphBuilder("t", 8)
    x = b.input("x", (10,), qt(8, False, zp=3))
    h = b.dense(x, 12, qt(4, True), qt(4, False), fold=F(4, 5))
    y = add_tt(b, h, (3, 4), (4, 2), (1, 4, 1), (0, 1), [qt(5, True), qt(4, True)], [qt(6, True)], qt(5, False),
               fold=F(1, 1, (4, 8)))  # fmt: skip
    return b.finish(b.dense(y, 6, qt(6, True), qt(8, True), fold=F(3, 2), rq="ms"))


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    return case_emulators(tmp_path_factory.mktemp("tt_hls"), CASES, "tt")


pytestmark = pytest.mark.csim


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", list(CASES))
def test_tt_bit_exact(emulators, name, model):
    assert_layers_equal_reference(*emulators[name, model], reference=ref_run)


def test_testbench_passes_on_a_dense_tt_dense_design(emulators, tmp_path):
    """The generated C testbench (its own build) agrees with the vectors on every layer."""
    emu, graph, x = emulators["dense_tt_dense_chain", "native"]
    result = run_csim(emu.outdir, cache_dir=tmp_path)
    assert result["passed"] and result["mismatches"] == 0, result["first_mismatch"]
    assert result["vectors"] == x["x"].shape[0]
    assert [la["name"] for la in result["layers"] if la["kind"] == "layer"] == ["dense0", "tt1", "dense2"]


def test_cases_cover_the_brief(emulators):
    """d = 2..4, both requantizer kinds between steps, core bits 1 (bipolar) and 2..8, reorder,
    all-1 and fully parallel."""
    ds, mids, bits, reorder, full, one = set(), set(), set(), False, False, False
    for name in CASES:
        _, graph, _ = emulators[name, "native"]
        for op in graph.ops:
            if isinstance(op, ir.TTDense):
                ds.add(len(op.modes_in))
                mids |= {type(r).__name__ for r in op.mid_requant}
                bits |= {q.bits for q in op.core_qtypes}
                reorder |= steps_of(graph, op.name)[-1].reorder
    for make in CASES.values():
        graph, plan, _ = make()
        for op in graph.ops:
            if isinstance(op, ir.TTDense):
                st = steps_of(graph, op.name)
                par = plan.fold(op.name).steps
                full |= par == tuple(s.red * s.cols for s in st)
                one |= set(par) == {1}
    assert ds == {2, 3, 4} and mids == {"Thresholds", "MultiplyShift"} and bits == set(range(1, 9))
    assert reorder and full and one
    policies = set()
    for name in CASES:
        for header in (emulators[name, "native"][0].outdir / "hls" / "config").glob("*.h"):
            text = header.read_text()
            if "tt_step" in text or "TT contraction step" in text:
                policies |= {m for m in ("XnorPopcount", "SignSelect", "InputSign", "LutMultiply", "DspMultiply")
                             if f"accelgen::{m} mac" in text}  # fmt: skip
    assert len(policies) == 5, policies


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2), (1, 2, 0)])
def test_reference_equals_the_full_weight(order):
    """Without requantization between steps the reference is x @ W, W rebuilt from the
    cores by the TT definition (every order gives the same sums)."""
    rng = np.random.default_rng(7)
    modes_in, modes_out, ranks = (2, 3, 2), (3, 2, 2), (1, 2, 3, 1)
    cores = tuple(rng.integers(-4, 5, size=(ranks[k], modes_in[k], modes_out[k], ranks[k + 1])) for k in range(3))
    w = np.einsum("aijb,bklc,cmnd->ikmjln", *cores).reshape(12, 12)
    xq = qt(4, False, zp=3)
    x = rng.integers(0, 16, size=(5, 12))
    op = ir.TTDense("t", ("x",), ("y",), modes_in=modes_in, modes_out=modes_out, ranks=ranks, order=order,
                    cores=cores, mid_requant=(None, None), requant=None)  # fmt: skip
    np.testing.assert_array_equal(ref_tt(x, op, xq), (x - 3) @ w)


@pytest.mark.parametrize("name", list(CASES))
def test_golden_equals_the_reference(name):
    """The golden interpreter (which writes the testbench's vectors) equals the reference on every tensor."""
    graph, _, x = CASES[name]()
    env = golden.run(graph, x, keep=True)
    ref = ref_run(graph, x)
    for op in graph.ops:
        np.testing.assert_array_equal(env[op.outputs[0]], ref[op.outputs[0]], err_msg=op.name)


# -- cost model and plan -------------------------------------------------------------------------------

MNIST_MODES = ((4, 7, 4, 7), (4, 4, 8, 4))


def mnist_tt(order=(3, 2, 1, 0), rank: int = 16, core_bits: int = 4, act_bits: int = 8) -> ir.Graph:
    """784 -> 512 TT layer, modes (4,7,4,7) -> (4,4,8,4), ranks 16, as issue 12 builds it."""
    b = GraphBuilder("mnist_tt", 11)
    x = b.input("x", (784,), qt(act_bits, False))
    ranks = (1, rank, rank, rank, 1)
    y = add_tt(b, x, *MNIST_MODES, ranks, order, [qt(core_bits, True)] * 4, [qt(act_bits, True)] * 3,
               qt(act_bits, False), mid_rq="ms", rq="ms")  # fmt: skip
    g, _, _ = b.finish(y)
    return g


def mnist_dense(w_bits: int = 8, act_bits: int = 8) -> ir.Graph:
    b = GraphBuilder("mnist_dense", 12)
    x = b.input("x", (784,), qt(act_bits, False))
    g, _, _ = b.finish(b.dense(x, 512, qt(w_bits, True), qt(act_bits, False), rq="ms"))
    return g


def _spec(g: ir.Graph):
    op = g.ops[0]
    kernel = kernel_for(op)
    return kernel, kernel.describe(op, g)


def test_tt_is_registered_and_costed():
    g = mnist_tt()
    kernel, spec = _spec(g)
    assert kernel is tt_kernel
    legal = kernel.legal(spec)
    assert legal["pe"] == [1] and legal["simd"] == [1] and len(legal["steps"]) > 10
    for par in legal["steps"]:
        for p, st in zip(par, spec.steps):
            assert (st.red * st.cols) % p == 0
    assert (1, 1, 1, 1) in legal["steps"]
    assert tuple(st.red * st.cols for st in spec.steps) in legal["steps"]
    assert kernel.multiplier(spec).macs == sum(st.macs for st in spec.steps) == 1_917_952


def test_cycles_fall_monotonically_with_parallelism():
    """The II is the slowest step's period (the steps are pipelined); more parallelism in
    any step never adds cycles, and in the slowest step it removes them (a step's pe also
    speeds up the next step's read of its state)."""
    g = mnist_tt()
    kernel, spec = _spec(g)
    ones = F(1, 1, (1, 1, 1, 1))
    base = kernel.cost(spec, ones)
    macs = [st.macs for st in spec.steps]
    assert max(macs) <= base.cycles < sum(macs)  # one MAC per cycle per step, steps overlapped
    assert base.depth >= sum(macs)  # one sample's latency runs through every step
    slowest = max(range(4), key=lambda t: tt_kernel.step_units(list(spec.steps), ones, "tt0")[t].cycles)
    for t in range(4):
        prev = base.cycles
        for p in tt_kernel.step_options(spec.steps[t]):
            par = [1, 1, 1, 1]
            par[t] = p
            c = kernel.cost(spec, F(1, 1, tuple(par))).cycles
            assert c <= prev
            prev = c
        if t == slowest:
            assert prev < base.cycles
    full = kernel.cost(spec, F(1, 1, tuple(st.red * st.cols for st in spec.steps)))
    assert full.cycles < base.cycles / 50 and full.depth < base.depth / 50


def test_tt_resources_far_below_dense():
    """All-1 folding: the TT layer's on-chip memory is a small fraction of the dense layer's
    (its cores are 50x fewer bits; the state buffers between steps take most of what is left)."""
    tt_kind, tt_spec = _spec(mnist_tt())
    tt_cost = tt_kind.cost(tt_spec, F(1, 1, (1, 1, 1, 1)))
    dk, dspec = _spec(mnist_dense())
    dense_cost = dk.cost(dspec, F(1, 1))
    assert dk is dense_kernel
    # at most a quarter: block RAM is bit-sliced as Vivado infers it (hw.bram18_count, UG912), so
    # the 14K-deep 8-bit state buffer and FIFO take eight 16K x 1 blocks each (41 against 203)
    assert tt_cost.resources.bram18 * 4 <= dense_cost.resources.bram18
    assert analysis.weight_bits(mnist_tt().ops[0]) * 40 <= 784 * 512 * 8
    assert tt_cost.resources.dsp <= max(dense_cost.resources.dsp, 1) * 4


def test_bram_consistent_with_packed_bits():
    """Core ROMs hold exactly the packed core bits: the memory grows with the core width
    and the BRAM18 count never falls below packed bits / 18 Kib."""
    g = mnist_tt(order=(0, 1, 2, 3))
    op = g.ops[0]
    kernel, spec = _spec(g)
    fold = F(1, 1, (1, 1, 1, 1))
    res4 = kernel.cost(spec, fold).resources
    assert analysis.weight_bits(op) == 4 * sum(c.size for c in op.cores) == 4 * 16064
    g8 = mnist_tt(order=(0, 1, 2, 3), core_bits=8)
    res8 = kernel.cost(_spec(g8)[1], fold).resources
    assert res8.bram18 + res8.lut > res4.bram18 + res4.lut
    packed = sum(c.size * 8 for c in g8.ops[0].cores)
    assert (res8.bram18 * 18 * 1024 + res8.lutram * 64) >= packed


def test_dse_picks_legal_tt_foldings_within_budget():
    board = boards.get_board("ultra96v2")
    g = mnist_tt()
    est = dse.explore(g, board)
    (lp,) = est.layers
    spec = lp.layer.spec
    assert len(lp.fold.steps) == 4
    assert lp.fold in lp.layer.folds
    for p, st in zip(lp.fold.steps, spec.steps):
        assert (st.red * st.cols) % p == 0
    budget = board.budget(est.max_util)
    used = est.resources.as_dict()
    assert all(used[k] <= budget[k] for k in budget)
    assert est.ii_cycles < kernel_for(lp.layer.op).cost(spec, F(1, 1, (1, 1, 1, 1))).cycles
    # the plan round-trips through JSON with its steps, and the explorer costs it as given
    plan = FoldingPlan.from_json(est.plan().to_json())
    assert plan.fold(lp.name).steps == lp.fold.steps
    again = dse.explore(g, board, folding=plan)
    assert again.ii_cycles == est.ii_cycles


def test_illegal_tt_folding_is_a_clear_error(tmp_path):
    graph, _, x = CASES["d2_right_to_left_all1_thresholds"]()
    with pytest.raises(InputError, match="step 0: parallelism 5 must divide"):
        generate(graph, FoldingPlan({"tt0": F(1, 1, (5, 1))}), tmp_path / "bad", vectors=x)
    with pytest.raises(InputError, match=r"steps=\[1, 1, 1\] \(2 values needed"):
        dse.explore(graph, boards.get_board("ultra96v2"), folding=FoldingPlan({"tt0": F(1, 1, (1, 1, 1))}))


def test_any_legal_tt_folding_is_accepted_from_a_plan():
    """The explorer searches a family of foldings, but a plan may give any legal one, and
    a TT layer missing from the plan runs at parallelism 1 in every step."""
    g = mnist_tt()
    board = boards.get_board("ultra96v2")
    kernel, spec = _spec(g)
    legal = kernel.legal(spec)
    offered = set(legal["steps"])
    chosen = next(c for c in itertools.product(*legal["step_options"]) if c not in offered)
    est = dse.explore(g, board, folding=FoldingPlan({"tt0": F(1, 1, chosen)}))
    assert est.layers[0].fold.steps == chosen
    assert est.layers[0].cost == kernel.cost(spec, F(1, 1, chosen))
    with pytest.raises(InputError, match=r"steps\[1\]=5 \(legal: 1, 2, 4"):
        dse.explore(g, board, folding=FoldingPlan({"tt0": F(1, 1, (1, 5, 1, 1))}))
    small = dse.explore(mnist_tt(), boards.get_board("zcu102"), folding=FoldingPlan({}))
    assert small.layers[0].cost.cycles == kernel.cost(spec, F(1, 1, (1, 1, 1, 1))).cycles


def test_report_shows_the_tt_steps():
    est = dse.explore(mnist_tt(), boards.get_board("ultra96v2"))
    doc = report.build_report(est)
    (layer,) = doc["layers"]
    assert layer["steps"] == list(est.layers[0].fold.steps) and layer["macs"] == 1_917_952
    assert "| steps | " + "/".join(map(str, layer["steps"])) in report.render_markdown(doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"order": (0, 2, 1)}, "does not contract a contiguous run"), ({"order": (0, 0, 1)}, "not a permutation"),
     ({"ranks": (2, 2, 3, 1)}, "must start and end with 1"), ({"modes_in": (2, 3, 5)}, "core 1 has shape")],
)  # fmt: skip
def test_bad_tt_structure_is_a_clear_error_naming_the_layer(change, message):
    graph, _, _ = CASES["d3_inside_out_reorder"]()
    op = graph.ops[0].replace(**change)
    graph = graph.copy(ops=[op])
    with pytest.raises(InputError, match=f"TTDense 'tt0'.*{message}"):
        dse.explore(graph, boards.get_board("ultra96v2"))


@pytest.mark.parametrize(
    ("steps", "message"), [("4", "must be a list of integers"), ([2, 0], "has a value below 1"), ([1.5], "integers")]
)
def test_plan_steps_are_checked_when_read(steps, message):
    data = {"layers": {"tt0": {"pe": 1, "simd": 1, "steps": steps}}}
    with pytest.raises(InputError, match=f"layer 'tt0'.*{message}"):
        FoldingPlan.from_json(data, source="plan.json")


def test_plan_json_keeps_steps_only_where_there_are_some():
    plan = FoldingPlan({"tt0": F(1, 1, (2, 3)), "dense1": F(4, 2)})
    data = plan.to_json()
    assert data["layers"] == {"tt0": {"pe": 1, "simd": 1, "steps": [2, 3]}, "dense1": {"pe": 4, "simd": 2}}
    assert FoldingPlan.from_json(data).layers == plan.layers


@pytest.mark.parametrize("ranks", [(1, 16, 16, 16, 1), (1, 4, 3, 5, 1), (1, 2, 1, 3, 1)])
def test_kernel_steps_do_the_macs_the_ir_defines(ranks):
    """The hardware's per-step geometry does exactly the MACs of ir.tt_step_sizes, in every order."""
    for order in itertools.permutations(range(4)):
        if ir.is_contiguous_order(order, 4):
            steps = tt_kernel.geometry(*MNIST_MODES, ranks, order)
            want = [state * summed for state, summed in ir.tt_step_sizes(*MNIST_MODES, ranks, order)]
            assert [st.macs for st in steps] == want, order
