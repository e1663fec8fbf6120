"""QONNX models with a tensor-train (TT) layer written as a Reshape / Transpose / MatMul chain.

``tt_model(...)`` writes what a TT exporter writes (see ``accelgen.ir.TTDense``): the
quantized input ``(B, N)`` is reshaped to its input modes, then one MatMul per core in the
given contraction ``order``; each step transposes the state so that the indices it sums over
come last, reshapes it to ``(B, rows, K)``, multiplies by the core as a quantized 2-D matrix
``(K, Q)`` and reshapes the product back to separate axes. A Quant sits on every
intermediate state, a final Reshape gives ``(B, M)``, then an optional bias Add, Relu and
the output Quant, optionally followed by an ordinary quantized Dense layer.

The state of a contiguous run of contracted cores ``[a..b]`` is kept in the order
``(B, m_0..m_{a-1}, r_a, n_a..n_b, r_{b+1}, m_{b+1}..m_{d-1})``; ``row_variants`` flips the
order of the summed indices inside the core matrix on odd steps, so the matrices are not
all laid out alike. The builder is test code, independent of accelgen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper

from tests.builders import float_input, init

DOMAIN = "qonnx.custom_op.general"
IR_VERSION = 10
OPSET = 13


@dataclass
class TTSpec:
    """What was written, for the tests' own numpy references."""

    modes_in: tuple[int, ...]
    modes_out: tuple[int, ...]
    ranks: tuple[int, ...]
    order: tuple[int, ...]
    cores_float: list[np.ndarray]  # (r_k, m_k, n_k, r_{k+1}) float cores before their Quant
    core_scales: list[float]
    core_bits: int
    x_scale: float
    x_bits: int
    x_signed: bool
    mid_scales: list[float]
    mid_bits: int
    out_scale: float
    out_bits: int
    bias: np.ndarray | None
    relu: bool
    dense: dict | None = None  # {"w": (M, P) float, "w_scale", "w_bits", "out_scale", "out_bits"}
    core_narrow: bool = True
    node_names: dict = field(default_factory=dict)  # role -> ONNX node name


def fake_quant(x: np.ndarray, scale: float, bits: int, signed: bool, narrow: bool = False) -> np.ndarray:
    """QONNX Quant's definition with zero point 0: scale * clip(round_half_even(x / scale))."""
    lo = -(1 << (bits - 1)) + (1 if narrow else 0) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    return scale * np.clip(np.round(np.asarray(x, np.float64) / scale), lo, hi)


def codes_of(x: np.ndarray, scale: float, bits: int, signed: bool, narrow: bool = False) -> np.ndarray:
    lo = -(1 << (bits - 1)) + (1 if narrow else 0) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    return np.clip(np.round(np.asarray(x, np.float64) / scale), lo, hi).astype(np.int64)


class _Writer:
    def __init__(self, dialect: str = "qonnx") -> None:
        self.dialect = dialect
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, stem: str, value) -> str:
        name = self.name(stem)
        self.inits.append(init(name, value))
        return name

    def node(self, op: str, inputs: list[str], stem: str, domain: str = "", **attrs) -> str:
        out = self.name(stem + "_out")
        name = self.name(stem)
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, domain=domain, **attrs))
        return out

    def quant(self, x: str, scale: float, bits: int, signed: bool, stem: str, narrow: bool = False) -> str:
        if self.dialect == "qdq":  # QuantizeLinear -> DequantizeLinear, 8 bits, zero point 0
            assert bits == 8 and not narrow, "the QDQ form here is 8-bit, not narrow"
            s = self.const(stem + "_scale", np.float32(scale))
            z = self.const(stem + "_zp", np.int8(0) if signed else np.uint8(0))
            q = self.node("QuantizeLinear", [x, s, z], stem + "_q")
            return self.node("DequantizeLinear", [q, s, z], stem)
        s = self.const(stem + "_scale", np.float32(scale))
        z = self.const(stem + "_zp", np.float32(0))
        b = self.const(stem + "_bits", np.float32(bits))
        return self.node("Quant", [x, s, z, b], stem, domain=DOMAIN, signed=int(signed), narrow=int(narrow),
                         rounding_mode="ROUND")  # fmt: skip

    def reshape(self, x: str, sample_shape, stem: str = "reshape", fold_batch: bool = False) -> str:
        """Reshape to (batch, *sample_shape), or to (-1, *sample_shape) folding the batch in."""
        dims = [int(d) for d in sample_shape]
        shape = self.const(stem + "_shape", np.array(dims if fold_batch else [-1, *dims], np.int64))
        return self.node("Reshape", [x, shape], stem)

    def transpose(self, x: str, perm, stem: str = "transpose") -> str:
        return self.node("Transpose", [x], stem, perm=[int(p) for p in perm])


def contiguous_orders(d: int) -> list[tuple[int, ...]]:
    """Every contraction order whose prefixes are contiguous runs of cores."""
    out = []

    def grow(order, a, b):
        if len(order) == d:
            out.append(tuple(order))
            return
        if a > 0:
            grow([*order, a - 1], a - 1, b)
        if b < d - 1:
            grow([*order, b + 1], a, b + 1)

    for start in range(d):
        grow([start], start, start)
    return out


def _canonical(run: tuple[int, int] | None, d: int) -> list[tuple[str, int]]:
    """Axis labels of the state (batch excluded) after contracting the run [a..b]."""
    if run is None:
        return [("m", k) for k in range(d)]
    a, b = run
    return (
        [("m", k) for k in range(a)]
        + [("r", a)]
        + [("n", k) for k in range(a, b + 1)]
        + [("r", b + 1)]
        + [("m", k) for k in range(b + 1, d)]
    )


def tt_model(
    modes_in=(4, 4),
    modes_out=(3, 2),
    ranks=(1, 3, 1),
    order=None,
    *,
    core_bits: int = 4,
    x_bits: int = 4,
    x_signed: bool = False,
    mid_bits: int = 8,
    out_bits: int = 4,
    bias: bool = True,
    relu: bool = True,
    dense_out: int | None = None,
    mid_quant: bool = True,
    tail: bool = True,
    row_variants: bool = True,
    break_step: int | None = None,
    break_output: bool = False,
    quant_before_reshape: bool = False,
    transpose_back: bool = True,
    fold_batch: bool = False,
    dialect: str = "qonnx",
    seed: int = 0,
) -> tuple[onnx.ModelProto, TTSpec]:
    """A QONNX model x -> Quant -> TT chain -> Reshape -> [Add] -> [Relu] -> Quant [-> Dense -> Quant].

    ``mid_quant=False`` leaves the intermediate states unquantized and ``tail=False`` makes
    the final Reshape the output (float checks of the contraction itself). ``break_step``
    makes that step sum another core's output index instead of one of its own (an index of
    the same size), and ``break_output`` swaps two output modes before the final Reshape:
    chains that look like TT but are not a TT contraction. ``quant_before_reshape`` puts the
    output Quant on the last state, before the final Reshape (without bias and Relu).
    ``transpose_back=False`` leaves the state in whatever axis order a step produced (the
    next step's Transpose gathers what it sums), as another exporter might; ``fold_batch``
    reshapes the state to ``(-1, K)`` before each MatMul, folding the batch into the rows.
    ``dialect="qdq"`` writes every quantizer as QuantizeLinear -> DequantizeLinear (8 bits).
    """
    d = len(modes_in)
    order = tuple(range(d - 1, -1, -1)) if order is None else tuple(order)
    rng = np.random.default_rng(seed)
    N, M = math.prod(modes_in), math.prod(modes_out)
    cores = [rng.normal(0, 1, (ranks[k], modes_in[k], modes_out[k], ranks[k + 1])) for k in range(d)]
    core_scales = [float(np.abs(c).max() / ((1 << (core_bits - 1)) - 1)) * rng.uniform(0.8, 1.0) for c in cores]
    x_scale = 1.0 / ((1 << x_bits) - 1) if not x_signed else 1.0 / ((1 << (x_bits - 1)) - 1)
    x_scale *= 2.0
    sizes = {("m", k): modes_in[k] for k in range(d)} | {("n", k): modes_out[k] for k in range(d)}
    sizes |= {("r", k): ranks[k] for k in range(d + 1)}

    # scales of the intermediate states from the spread of a float run on random inputs
    probe = rng.uniform(-1 if x_signed else 0, 1, (64, N)) * x_scale * ((1 << (x_bits - 1)) - 1)
    mid_scales: list[float] = []

    w = _Writer(dialect)
    narrow = dialect != "qdq"
    x_q = w.quant("x", x_scale, x_bits, x_signed, "quant_x")
    names = {"quant_x": w.nodes[-1].name}
    state = w.reshape(x_q, modes_in, "reshape_in")
    names["head"] = w.nodes[-1].name
    labels = _canonical(None, d)
    probe_state = probe.reshape(-1, *modes_in)
    run: tuple[int, int] | None = None
    for t, k in enumerate(order):
        core_labels = [("r", k), ("m", k), ("n", k), ("r", k + 1)]
        if run is None:
            summed = [("m", k)]
        elif k == run[1] + 1:
            summed = [("r", k), ("m", k)]
        elif k == run[0] - 1:
            summed = [("m", k), ("r", k + 1)]
        else:
            raise ValueError(f"order {order} is not a contiguous-prefix order")
        if row_variants and t % 2 == 1:
            summed = summed[::-1]
        kept_core = [lab for lab in core_labels if lab not in summed]
        kept_state = [lab for lab in labels if lab not in summed]
        perm_labels = kept_state + summed
        if break_step == t:  # sum a kept index of the same size instead: not a TT contraction any more
            pairs = [(i, j) for i, lab in enumerate(kept_state) for j, sl in enumerate(summed)
                     if sizes[lab] == sizes[sl] and sizes[lab] > 1]  # fmt: skip
            # prefer the output index of a core that is not a neighbour: summing it is never a TT contraction
            pairs.sort(key=lambda p: (kept_state[p[0]][0] != "n", abs(kept_state[p[0]][1] - k) <= 1))
            if not pairs:
                raise ValueError(f"step {t} has no kept axis of the size of a summed one to swap")
            i, j = pairs[0]
            n_kept = len(kept_state)
            perm_labels[i], perm_labels[n_kept + j] = perm_labels[n_kept + j], perm_labels[i]
        perm = [labels.index(lab) for lab in perm_labels]
        if perm != list(range(len(labels))):
            state = w.transpose(state, [0, *[p + 1 for p in perm]], f"transpose_{t}")
            probe_state = probe_state.transpose(0, *[p + 1 for p in perm])
        rows = math.prod(sizes[lab] for lab in perm_labels[: len(kept_state)])
        K = math.prod(sizes[lab] for lab in perm_labels[len(kept_state) :])
        if fold_batch:  # (batch * rows, K): a 2-D MatMul, as torch TT layers often write it
            state = w.reshape(state, (-1, K), f"reshape_rows_{t}", fold_batch=True)
        else:
            state = w.reshape(state, (rows, K), f"reshape_rows_{t}")
        probe_state = probe_state.reshape(-1, rows, K)
        # the core as a (K, Q) matrix: summed core indices as rows, kept ones as columns
        qcore = fake_quant(cores[k], core_scales[k], core_bits, True, narrow=narrow)
        mat = np.transpose(cores[k], [core_labels.index(lab) for lab in summed + kept_core])
        qmat = np.transpose(qcore, [core_labels.index(lab) for lab in summed + kept_core])
        Q = math.prod(sizes[lab] for lab in kept_core)
        core_name = w.const(f"core{k}", mat.reshape(K, Q).astype(np.float32))
        wq = w.quant(core_name, core_scales[k], core_bits, True, f"quant_core{k}", narrow=narrow)
        state = w.node("MatMul", [state, wq], f"matmul_{t}")
        names[f"matmul_{t}"] = w.nodes[-1].name
        probe_state = probe_state @ qmat.reshape(K, Q)
        labels = kept_state + kept_core
        state = w.reshape(state, [sizes[lab] for lab in labels], f"reshape_split_{t}")
        probe_state = probe_state.reshape(-1, *[sizes[lab] for lab in labels])
        run = (k, k) if run is None else (min(run[0], k), max(run[1], k))
        if t < d - 1 and mid_quant:
            scale = float(np.abs(probe_state).max()) / ((1 << (mid_bits - 1)) - 1) * 0.9
            mid_scales.append(scale)
            state = w.quant(state, scale, mid_bits, True, f"quant_mid{t}")
            names[f"quant_mid{t}"] = w.nodes[-1].name
            probe_state = fake_quant(probe_state, scale, mid_bits, True)
        want = _canonical(run, d)
        if labels != want and (transpose_back or t == d - 1):
            perm = [labels.index(lab) for lab in want]
            state = w.transpose(state, [0, *[p + 1 for p in perm]], f"transpose_back_{t}")
            probe_state = probe_state.transpose(0, *[p + 1 for p in perm])
            labels = want
    if break_output:  # the output modes of the first two cores swapped: not the TT output order
        perm = list(range(len(labels)))
        i, j = labels.index(("n", 0)), labels.index(("n", 1))
        perm[i], perm[j] = j, i
        state = w.transpose(state, [0, *[p + 1 for p in perm]], "transpose_out")
        names["transpose_out"] = w.nodes[-1].name
    if quant_before_reshape:  # the output Quant on the state, before the final Reshape (no bias, no Relu)
        out_scale = float(np.abs(probe_state).max() + 1e-6) / ((1 << (out_bits - 1)) - 1) * 0.8
        state = w.quant(state, out_scale, out_bits, True, "quant_out")
        names["quant_out"] = w.nodes[-1].name
        bias = relu = False
    y = w.reshape(state, (M,), "reshape_out")
    names["tail"] = w.nodes[-1].name
    probe_y = probe_state.reshape(-1, M)
    b = None
    if tail and bias:
        b = rng.normal(0, 0.5 * float(np.abs(probe_y).std()) + 1e-3, M)
        y = w.node("Add", [y, w.const("bias", b.astype(np.float32))], "bias_add")
        probe_y = probe_y + b
    if tail and relu:
        y = w.node("Relu", [y], "relu")
        probe_y = np.maximum(probe_y, 0)
    if not quant_before_reshape:
        out_scale = float(np.abs(probe_y).max() + 1e-6) / ((1 << (out_bits - 1)) - 1) * 0.8
    dense = None
    out_dim = M
    if tail:
        if not quant_before_reshape:
            y = w.quant(y, out_scale, out_bits, not relu, "quant_out")
            names["quant_out"] = w.nodes[-1].name
        if dense_out:
            wd = rng.normal(0, 1, (M, dense_out))
            dense = {"w": wd, "w_scale": float(np.abs(wd).max()) / 7, "w_bits": 4, "out_bits": 8}
            probe_d = fake_quant(probe_y, out_scale, out_bits, not relu) @ fake_quant(
                wd, dense["w_scale"], 4, True, True
            )
            dense["out_scale"] = float(np.abs(probe_d).max() + 1e-6) / 127
            wq = w.quant(w.const("dense_w", wd.astype(np.float32)), dense["w_scale"], 4, True, "quant_dense_w", True)
            y = w.node("MatMul", [y, wq], "dense")
            names["dense"] = w.nodes[-1].name
            y = w.quant(y, dense["out_scale"], 8, True, "quant_dense_out")
            out_dim = dense_out
    # rename the last value to "y" so the graph output has a stable name
    w.nodes[-1].output[0] = "y"
    graph = helper.make_graph(w.nodes, "tt", [float_input("x", ("batch", N))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", out_dim])], w.inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(DOMAIN, 1)])
    model.ir_version = IR_VERSION
    spec = TTSpec(
        tuple(modes_in), tuple(modes_out), tuple(ranks), order, cores, core_scales, core_bits, x_scale, x_bits,
        x_signed, mid_scales, mid_bits, out_scale, out_bits, b, relu, dense, node_names=names, core_narrow=narrow,
    )  # fmt: skip
    return model, spec


def full_weight(cores: list[np.ndarray]) -> np.ndarray:
    """W (N, M) of a TT matrix by the contract's definition, in float64 (test reference)."""
    w = cores[0][0]  # (m_0, n_0, r_1)
    for g in cores[1:]:
        m, n = w.shape[0], w.shape[1]
        w = np.einsum("abr,rcds->acbds", w, g).reshape(m * g.shape[1], n * g.shape[2], g.shape[3])
    return w[:, :, 0]
