"""Tensor-train (TT) layers: a Reshape / Transpose / MatMul chain recognised by its structure.

A TT exporter writes a fully connected layer whose weight is a TT matrix as a chain that
starts at a quantized ``(B, N)`` tensor: Reshapes and Transposes that move the indices a
step sums over to the last axis, one MatMul per core with a constant quantized 2-D matrix,
a quantizer on every intermediate state (QONNX ``Quant``, or QDQ ``QuantizeLinear ->
DequantizeLinear``), and a final Reshape to ``(B, M)``. Nothing names the
chain; it is found and proven here:

1. *Axis tracking.* The state's axes are followed symbolically: every axis is a row-major
   list of atoms: the batch, fragments of the input features (``x``) or of a MatMul's
   columns (``w_t``). A Reshape regroups atoms (splitting one when a dimension boundary
   falls inside it; the batch, whose size is a huge prime while tracking, is never split
   but may be folded into another axis), a Transpose permutes them, a MatMul sums out the
   atoms of the last axis and adds one atom for its columns.
2. *Structure.* The chain is a TT contraction iff every input atom is summed by exactly one
   MatMul, each MatMul's input atoms are one contiguous run of the input (its core's input
   mode), the output atoms left in the result come core by core in input order (the output
   modes), and every other column atom is summed by the MatMul of an adjacent core (a rank
   bond). This yields the modes, ranks, order and the core each MatMul holds.
3. *Numbers.* The chain evaluated in float64 on random inputs, with the integer weights and
   without the intermediate quantizers, must equal the input contracted with the recovered
   cores. This is the definitive check; the structure only says where to look.

A chain that looks like TT (at least two MatMuls on a state with more than one axis) but
fails a check is an InputError naming the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import onnx

from accelgen import ir
from accelgen.errors import InputError
from accelgen.frontend.load import QONNX_DOMAINS
from accelgen.frontend.quantizers import import_quant, linear_out_type, rounding_of
from accelgen.frontend.values import Value

if TYPE_CHECKING:
    from accelgen.frontend.base import ImportContext

#: the random inputs of the numeric proof
CHECK_BATCH = 3
CHECK_RTOL = 1e-9
#: the batch's size while tracking axes: a prime no product of modes and ranks is a multiple of,
#: so an axis holds the batch iff its size is a multiple of it, and the batch is never split
BATCH = (1 << 61) - 1


class NotTT(Exception):
    """The chain is not a TT contraction; ``node`` names where that became clear."""

    def __init__(self, node: str, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


# ---------------------------------------------------------------------------------------
# Symbolic axes
# ---------------------------------------------------------------------------------------


@dataclass
class Atoms:
    """Atoms of the chain's state: sizes, origins, refinements (an atom split in two)."""

    size: list[int] = field(default_factory=list)
    origin: list[tuple[str, int]] = field(default_factory=list)  # ("x", 0) or ("w", step)
    children: dict[int, tuple[int, int]] = field(default_factory=dict)

    def new(self, size: int, origin: tuple[str, int]) -> list[int]:
        """A fresh atom as a list (empty for size 1: a size-1 axis carries no index)."""
        if size == 1:
            return []
        self.size.append(size)
        self.origin.append(origin)
        return [len(self.size) - 1]

    def leaves(self, atom: int) -> list[int]:
        if atom not in self.children:
            return [atom]
        hi, lo = self.children[atom]
        return self.leaves(hi) + self.leaves(lo)

    def split(self, atom: int, hi_size: int) -> tuple[int, int]:
        """Split ``atom`` into (most significant part of ``hi_size``, the rest)."""
        lo_size = self.size[atom] // hi_size
        origin = self.origin[atom]
        self.size += [hi_size, lo_size]
        self.origin += [origin, origin]
        hi, lo = len(self.size) - 2, len(self.size) - 1
        self.children[atom] = (hi, lo)
        return hi, lo

    def dims_sizes(self, dims: list[list[int]]) -> tuple[int, ...]:
        return tuple(math.prod(self.size[a] for a in dim) for dim in dims)


def show(sizes) -> str:
    """A shape for a message, the batch written as such."""
    return "(" + ", ".join(("batch" if d == BATCH else f"batch*{d // BATCH}") if d % BATCH == 0 else str(d)
                           for d in sizes) + ")"  # fmt: skip


def regroup(atoms: Atoms, dims: list[list[int]], target: tuple[int, ...], node: str) -> list[list[int]]:
    """The state's axes after a Reshape to ``target`` (per sample), splitting atoms as needed."""
    queue = [leaf for dim in dims for a in dim for leaf in atoms.leaves(a)]
    out: list[list[int]] = []
    for size in target:
        dim: list[int] = []
        prod = 1
        while prod < size:
            if not queue or size % prod:
                break
            a = queue.pop(0)
            need = size // prod
            if atoms.size[a] <= need:
                if need % atoms.size[a]:
                    queue.insert(0, a)
                    break
                dim.append(a)
                prod *= atoms.size[a]
            elif atoms.size[a] % need == 0:
                hi, lo = atoms.split(a, need)
                dim.append(hi)
                queue.insert(0, lo)
                prod *= need
            else:
                queue.insert(0, a)
                break
        if prod != size:
            raise NotTT(
                node, f"reshaping {show(atoms.dims_sizes(dims))} to {show(target)} mixes indices of different axes"
            )
        out.append(dim)
    if queue:
        raise NotTT(node, f"reshaping {show(atoms.dims_sizes(dims))} to {show(target)} loses elements")
    return out


# ---------------------------------------------------------------------------------------
# The chain as walked
# ---------------------------------------------------------------------------------------


@dataclass
class Step:
    """One MatMul of the chain: its summed atoms, its column atom, the Quant after it."""

    node: onnx.NodeProto
    weight: str
    rows: list[int]
    cols: list[int]
    quant: onnx.NodeProto | None = None


@dataclass
class Chain:
    head: onnx.NodeProto
    indices: list[int] = field(default_factory=list)  # node indices of the chain
    program: list[tuple] = field(default_factory=list)  # ("reshape", shape) / ("transpose", perm) / ("matmul", t)
    batch: list[int] = field(default_factory=list)  # the batch's atom
    steps: list[Step] = field(default_factory=list)
    atoms: Atoms = field(default_factory=Atoms)
    x_atoms: list[int] = field(default_factory=list)
    dims: list[list[int]] = field(default_factory=list)
    out_quant: onnx.NodeProto | None = None
    multi_axis: bool = False
    complete: bool = False
    last: onnx.NodeProto | None = None
    layout: TTLayout | None = None

    def data_atoms(self) -> list[int]:
        """The state's leaf atoms other than the batch, in row-major order."""
        return [leaf for dim in self.dims for a in dim for leaf in self.atoms.leaves(a) if leaf not in self.batch]

    def is_output(self) -> bool:
        """The state is (batch, features): the shape a TT chain ends in."""
        return len(self.dims) == 2 and self.dims[0] == self.batch

    def live_input_atoms(self) -> bool:
        live = {leaf for dim in self.dims for a in dim for leaf in self.atoms.leaves(a)}
        return any(self.atoms.origin[a][0] == "x" for a in live)

    def looks_like_tt(self) -> bool:
        return len(self.steps) >= 2 and self.multi_axis


@dataclass
class TTLayout:
    """What the structure says: modes, ranks, order, and how to read each core."""

    modes_in: tuple[int, ...]
    modes_out: tuple[int, ...]
    ranks: tuple[int, ...]
    order: tuple[int, ...]
    core_of_step: list[int]
    cores: list[np.ndarray]  # integer (r_k, m_k, n_k, r_{k+1})


def _name(node: onnx.NodeProto) -> str:
    return node.name or node.output[0]


# ---------------------------------------------------------------------------------------
# Structure: modes, ranks, order, cores
# ---------------------------------------------------------------------------------------


def analyse(chain: Chain, weights: list[np.ndarray]) -> TTLayout:
    """Derive the TT layout of a complete chain (``weights``: each step's integer matrix)."""
    atoms = chain.atoms
    x_leaves = [leaf for a in chain.x_atoms for leaf in atoms.leaves(a)]
    y_leaves = chain.data_atoms()
    consumer: dict[int, int] = {}
    for t, step in enumerate(chain.steps):
        for a in step.rows:
            for leaf in atoms.leaves(a):
                consumer[leaf] = t
    steps = chain.steps
    # input modes: each step sums one contiguous run of the input's atoms
    runs: dict[int, list[int]] = {}
    for pos, leaf in enumerate(x_leaves):
        if leaf not in consumer:
            raise NotTT(_name(chain.last), "part of the input features is never summed by a MatMul")
        runs.setdefault(consumer[leaf], []).append(pos)
    for t, step in enumerate(steps):
        pos = runs.get(t)
        if not pos:
            raise NotTT(_name(step.node), "this MatMul sums no input mode (it multiplies an earlier result only)")
        if pos != list(range(pos[0], pos[-1] + 1)):
            raise NotTT(_name(step.node), "this MatMul sums input indices that are not one contiguous mode")
    step_of_core = sorted(range(len(steps)), key=lambda t: runs[t][0])
    core_of_step = [step_of_core.index(t) for t in range(len(steps))]
    d = len(steps)
    order = tuple(core_of_step)
    if not ir.is_contiguous_order(order, d):
        t = next(t for t in range(d) if max(order[: t + 1]) - min(order[: t + 1]) != t)
        raise NotTT(_name(steps[t].node), f"contracting the cores in the order {order} is not a TT contraction "
                    "(each step must extend the contracted run of cores by a neighbour)")  # fmt: skip
    # every column atom either reaches the output (an output mode) or is summed by a neighbour (a bond)
    bonds: dict[int, list[int]] = {k: [] for k in range(d + 1)}  # bond k joins cores k-1 and k
    y_set = set(y_leaves)
    for t, step in enumerate(steps):
        k = core_of_step[t]
        for leaf in (lf for a in step.cols for lf in atoms.leaves(a)):
            if leaf in y_set:
                continue
            u = consumer.get(leaf)
            if u is None:
                raise NotTT(_name(step.node), "some of this MatMul's results are never used")
            if abs(core_of_step[u] - k) != 1:
                raise NotTT(_name(steps[u].node), "this MatMul sums results of a core that is not its neighbour")
            bonds[max(k, core_of_step[u])].append(leaf)
    for t, step in enumerate(steps):
        k = core_of_step[t]
        for leaf in (lf for a in step.rows for lf in atoms.leaves(a)):
            origin = atoms.origin[leaf]
            if origin[0] == "w" and leaf not in bonds[k] and leaf not in bonds[k + 1]:
                raise NotTT(_name(step.node), "this MatMul sums an output index of another core")
    # output modes: the output's atoms come core by core, in input order
    owners = [core_of_step[atoms.origin[leaf][1]] for leaf in y_leaves]
    if owners != sorted(owners):
        raise NotTT(_name(chain.last), f"the output indices come from the cores in the order {owners}, not core by "
                    "core; the Transpose before the final Reshape does not give the TT output order")  # fmt: skip
    size = atoms.size
    modes_in = tuple(math.prod(size[x_leaves[p]] for p in runs[step_of_core[k]]) for k in range(d))
    modes_out = tuple(math.prod(size[leaf] for leaf, o in zip(y_leaves, owners) if o == k) for k in range(d))
    ranks = tuple(math.prod(size[leaf] for leaf in bonds[k]) for k in range(d + 1))
    cores = []
    for k in range(d):
        t = step_of_core[k]
        step = steps[t]
        axes = [lf for a in step.rows for lf in atoms.leaves(a)] + [lf for a in step.cols for lf in atoms.leaves(a)]
        mine_x = [x_leaves[p] for p in runs[t]]
        mine_y = [leaf for leaf, o in zip(y_leaves, owners) if o == k]
        want = bonds[k] + mine_x + mine_y + bonds[k + 1]
        if sorted(want) != sorted(axes):
            raise NotTT(_name(step.node), "this MatMul's matrix does not hold exactly one core")
        w = weights[t].reshape([size[a] for a in axes]) if axes else weights[t].reshape(())
        w = np.transpose(w, [axes.index(a) for a in want])
        cores.append(np.ascontiguousarray(w.reshape(ranks[k], modes_in[k], modes_out[k], ranks[k + 1])))
    return TTLayout(modes_in, modes_out, ranks, order, core_of_step, cores)


def tt_apply(x: np.ndarray, cores: list[np.ndarray]) -> np.ndarray:
    """x (B, N) times the TT matrix of ``cores``, contracted left to right in float64."""
    b = x.shape[0]
    s = np.asarray(x, np.float64).reshape(b, 1, 1, -1)  # (B, output so far, rank, remaining input)
    for g in cores:
        r, m, n, r2 = g.shape
        s = s.reshape(b, s.shape[1], r, m, -1)
        s = np.einsum("bjrmz,rmns->bjnsz", s, g.astype(np.float64))
        s = s.reshape(b, -1, r2, s.shape[-1])
    return s.reshape(b, -1)


def run_chain(chain: Chain, weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The chain's own arithmetic in float64 (no intermediate quantizers)."""
    s = np.asarray(x, np.float64)
    b = s.shape[0]
    for kind, arg in chain.program:
        if kind == "reshape":
            s = s.reshape([d // BATCH * b if d % BATCH == 0 else d for d in arg])
        elif kind == "transpose":
            s = np.transpose(s, arg)
        else:
            s = s @ weights[arg].astype(np.float64)
    return s.reshape(b, -1)


def prove(chain: Chain, weights: list[np.ndarray], layout: TTLayout) -> None:
    """The definitive check: the chain equals the recovered TT matrix on random inputs."""
    n = math.prod(layout.modes_in)
    x = np.random.default_rng(0).normal(size=(CHECK_BATCH, n))
    got = run_chain(chain, weights, x)
    want = tt_apply(x, layout.cores)
    scale = max(float(np.abs(want).max()), 1.0)
    if got.shape != want.shape or not np.allclose(got, want, rtol=CHECK_RTOL, atol=CHECK_RTOL * scale):
        raise NotTT(_name(chain.last), "the chain's Reshape/Transpose/MatMul steps do not compute the TT "
                    f"contraction of the cores they hold (modes {layout.modes_in} x {layout.modes_out}, ranks "
                    f"{layout.ranks}, order {layout.order})")  # fmt: skip


# ---------------------------------------------------------------------------------------
# The importer's handler
# ---------------------------------------------------------------------------------------

CHAIN_OPS = ("Reshape", "Transpose", "MatMul")


def import_tt_chain(ctx: ImportContext, index: int, node: onnx.NodeProto) -> bool:
    """Import the TT chain starting at ``node`` as one TTDense; False if it is no TT chain."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in CHAIN_OPS or not node.input:
        return False
    v = ctx.values.get(node.input[0])
    if not isinstance(v, Value) or v.view != "real":
        return False
    x = ctx.tensors[v.tensor]
    if x.kind != "codes" or len(x.shape) != 2:
        return False
    chain = _walk_tt(ctx, index, node, int(x.shape[1]))
    ctx.node = node
    if chain is None:
        return False
    _emit_tt(ctx, chain, v)
    return True


def _node_index(ctx: ImportContext) -> tuple[dict[str, list[int]], dict[str, int]]:
    """(consumers, producer) of every ONNX tensor, as node indices (built once)."""
    if ctx.tt_index is None:
        consumers: dict[str, list[int]] = {}
        producer: dict[str, int] = {}
        for i, n in enumerate(ctx.model.graph.node):
            for name in n.input:
                consumers.setdefault(name, []).append(i)
            for name in n.output:
                producer[name] = i
        ctx.tt_index = (consumers, producer)
    return ctx.tt_index


def _consumers_of(ctx: ImportContext, tensor: str) -> list[int]:
    return _node_index(ctx)[0].get(tensor, [])


def _ensure_constant(ctx: ImportContext, name: str) -> bool:
    """Make ``name`` a known constant, importing the constant nodes that produce it early."""
    if name in ctx.consts or name in ctx.qconsts:
        return True
    if name in ctx.values:
        return False  # a data tensor
    g = ctx.model.graph
    idx = _node_index(ctx)[1].get(name)
    if idx is None or idx in ctx.done_nodes:
        return False
    producer = g.node[idx]
    if not all(_ensure_constant(ctx, n) for n in producer.input if n):
        return False
    saved, ctx.node = ctx.node, producer
    ctx.import_node(producer)
    ctx.node = saved
    ctx.done_nodes.add(idx)
    return name in ctx.consts or name in ctx.qconsts


def _walk_tt(ctx: ImportContext, index: int, head: onnx.NodeProto, features: int) -> Chain | None:
    """Follow the chain from ``head``; None when it is not a TT chain (nothing to import)."""
    chain = Chain(head)
    chain.batch = chain.atoms.new(BATCH, ("b", 0))
    chain.x_atoms = chain.atoms.new(features, ("x", 0))
    chain.dims = [list(chain.batch), list(chain.x_atoms)]
    graph_outputs = {o.name for o in ctx.model.graph.output}
    g = ctx.model.graph
    current, idx = head.input[0], index
    problem: NotTT | None = None
    while True:
        node = g.node[idx]
        try:
            taken = _track(ctx, chain, node, current)
        except NotTT as exc:
            problem = exc
            break
        if not taken:
            break
        chain.indices.append(idx)
        chain.last = node
        current = node.output[0]
        if chain.steps and node.op_type in ("Reshape", "MatMul") and chain.is_output() and not chain.live_input_atoms():
            chain.complete = True
            break
        users = _consumers_of(ctx, current)
        if len(users) != 1 or current in graph_outputs:
            if chain.looks_like_tt():
                problem = NotTT(_name(node), "the chain's state is read by more than one node (or is a graph "
                                "output) before the TT contraction is complete")  # fmt: skip
            break
        idx = users[0]
    if not chain.looks_like_tt():
        return None
    if problem is None and not chain.complete:
        stop = g.node[idx]
        problem = NotTT(_name(chain.last), f"the chain ends here (the next node, '{_name(stop)}', is a "
                        f"{stop.op_type}) while some input features were never summed by a MatMul")  # fmt: skip
    try:
        if problem is not None:
            raise problem
        weights = [_tt_weight(ctx, step)[0] for step in chain.steps]
        layout = analyse(chain, weights)
        prove(chain, weights, layout)
    except NotTT as exc:
        raise InputError(
            f"node '{exc.node}': the Reshape/Transpose/MatMul chain from '{_name(head)}' looks like a "
            f"tensor-train layer but is not one: {exc.message}. Export the TT layer as the input reshaped "
            "to its modes, one MatMul per core whose summed indices are the last axis, and a final Reshape "
            "to (batch, out_features) (README, 'Tensor-train layers')"
        ) from None
    chain.layout = layout
    ctx.done_nodes.update(chain.indices)
    return chain


def _track(ctx: ImportContext, chain: Chain, node: onnx.NodeProto, current: str) -> bool:
    """Apply one node to the symbolic state; False when the node is not part of a chain."""
    if not node.input or node.input[0] != current:
        return False
    op = node.op_type
    name = _name(node)
    atoms = chain.atoms
    if node.domain in ("", "ai.onnx") and op == "Reshape":
        if len(node.input) < 2 or not _ensure_constant(ctx, node.input[1]):
            return False
        target = [int(d) for d in np.asarray(ctx.const_real(node.input[1])).reshape(-1)]
        shape = _tt_target_shape(ctx, chain, target, name)
        chain.dims = regroup(atoms, chain.dims, shape, name)
        chain.program.append(("reshape", shape))
    elif node.domain in ("", "ai.onnx") and op == "Transpose":
        perm = [int(p) for p in ctx.attr(node, "perm", list(reversed(range(len(chain.dims)))))]
        if sorted(perm) != list(range(len(chain.dims))):
            raise NotTT(name, f"Transpose perm {perm} does not permute the {len(chain.dims)} axes of the state")
        chain.dims = [chain.dims[p] for p in perm]
        chain.program.append(("transpose", perm))
    elif node.domain in ("", "ai.onnx") and op == "MatMul":
        if not _ensure_constant(ctx, node.input[1]):
            return False
        w = ctx.qconsts.get(node.input[1])
        arr = w.codes if w is not None else np.asarray(ctx.consts[node.input[1]])
        if arr.ndim != 2:
            return False
        if arr.size == 0 and chain.live_input_atoms():
            raise InputError(
                f"node '{name}': the matrix '{node.input[1]}' of shape {tuple(arr.shape)} is empty (a tensor-train "
                "rank or mode of 0); every mode and rank must be at least 1"
            )
        if not chain.live_input_atoms():
            return False  # a following layer: the chain ended before
        rows = chain.dims[-1]
        if any(leaf in chain.batch for a in rows for leaf in atoms.leaves(a)):
            raise NotTT(name, "this MatMul sums over the batch")
        if math.prod(atoms.size[a] for a in rows) != arr.shape[0]:
            raise NotTT(name, f"the state's last axis has {math.prod(atoms.size[a] for a in rows)} elements, "
                        f"the matrix {arr.shape[0]} rows")  # fmt: skip
        step = Step(node, node.input[1], list(rows), atoms.new(int(arr.shape[1]), ("w", len(chain.steps))))
        chain.dims = [*chain.dims[:-1], list(step.cols)]
        chain.steps.append(step)
        chain.program.append(("matmul", len(chain.steps) - 1))
    elif op == "DequantizeLinear" and node.domain in ("", "ai.onnx"):
        # the real view of the codes a QuantizeLinear of the chain just made (QDQ): nothing moves
        if chain.last is None or chain.last.op_type != "QuantizeLinear" or not _same_qparams(ctx, chain.last, node):
            return False
    elif op == "QuantizeLinear" and node.domain in ("", "ai.onnx") and chain.live_input_atoms():
        if not chain.steps or not all(_ensure_constant(ctx, n) for n in node.input[1:] if n):
            return False
        if chain.steps[-1].quant is not None:
            raise NotTT(name, "two quantizers on one intermediate state")
        chain.steps[-1].quant = node
    elif op in ("Quant", "IntQuant") and node.domain in QONNX_DOMAINS:
        if not chain.steps or not all(_ensure_constant(ctx, n) for n in node.input[1:] if n):
            return False
        if not chain.live_input_atoms():
            if chain.out_quant is not None:
                raise NotTT(name, "two quantizers after the last MatMul")
            chain.out_quant = node
        elif chain.steps[-1].quant is not None:
            raise NotTT(name, "two quantizers on one intermediate state")
        else:
            chain.steps[-1].quant = node
    else:
        return False
    if len(chain.data_atoms()) > 1 or any(chain.batch and chain.batch[0] in d and len(d) > 1 for d in chain.dims):
        chain.multi_axis = True  # the features are split into several axes, or folded into the batch
    return True


def _same_qparams(ctx: ImportContext, q: onnx.NodeProto, dq: onnx.NodeProto) -> bool:
    """Whether a DequantizeLinear reads codes with the scale and zero point they were made with."""
    if not all(_ensure_constant(ctx, n) for n in dq.input[1:] if n):
        return False
    pairs = [(q.input[i] if len(q.input) > i else "", dq.input[i] if len(dq.input) > i else "") for i in (1, 2)]
    for a, b in pairs:
        va = np.asarray(ctx.const_real(a)) if a else np.zeros(1)
        vb = np.asarray(ctx.const_real(b)) if b else np.zeros(1)
        if va.shape != vb.shape or not np.array_equal(va.astype(np.float64), vb.astype(np.float64)):
            return False
    return ctx.attr(q, "axis", 1) == ctx.attr(dq, "axis", 1)


def _tt_target_shape(ctx: ImportContext, chain: Chain, target: list[int], name: str) -> tuple[int, ...]:
    """A Reshape target with 0 and -1 resolved; the batch's size is :data:`BATCH`.

    Without a -1, the first entry is the batch whatever its value (an exporter's fixed
    batch size); with one, the -1 takes what is left (the batch, folded or not).
    """
    sizes = chain.atoms.dims_sizes(chain.dims)
    total = math.prod(sizes)
    shape = list(target)
    if not shape:
        raise NotTT(name, "reshape to a scalar")
    for i, dim in enumerate(shape):
        if dim == 0:
            if i >= len(sizes):
                raise NotTT(name, f"reshape target {target} copies a dimension the state does not have")
            shape[i] = sizes[i]
    if shape.count(-1) > 1:
        raise NotTT(name, f"reshape target {target} is ambiguous")
    if -1 in shape:
        known = math.prod(dim for dim in shape if dim != -1)
        shape[shape.index(-1)] = total // max(known, 1)
    elif shape[0] % BATCH:
        shape[0] = BATCH
    if math.prod(shape) != total or min(shape) < 1:
        per_sample = [d for d in target[1:]]
        raise NotTT(name, f"reshape target {per_sample} does not hold the {total // BATCH} elements of a sample "
                    "(modes whose product is not the layer's dimension, or an empty axis?)")  # fmt: skip
    return tuple(shape)


def _tt_weight(ctx: ImportContext, step: Step) -> tuple[np.ndarray, ir.QType]:
    """A step's matrix as integer ``code - zero_point`` with its per-tensor QType."""
    name = step.weight
    ctx.node = step.node
    if name not in ctx.qconsts:
        raise InputError(
            f"node '{_name(step.node)}': the TT core '{name}' is not quantized (float constant); put a Quant "
            "on every core so accelgen can build integer hardware"
        )
    q = ctx.qconsts[name]
    if q.codes.size == 0:
        raise InputError(f"node '{_name(step.node)}': the TT core '{name}' is empty (rank or mode 0)")
    bits = ctx.check_bits(q.bits, f"TT core '{name}'")
    if np.ptp(q.scale) > 0 or np.ptp(q.zero_point) > 0:
        raise InputError(
            f"node '{_name(step.node)}': the TT core '{name}' is quantized per channel; accelgen takes "
            "one scale and zero point per core"
        )
    scale, zp = float(q.scale.reshape(-1)[0]), int(q.zero_point.reshape(-1)[0])
    ctx.check_scale(np.array([scale]), name)
    qt = ir.QType(bits, q.signed, (scale,), (zp,), narrow=q.narrow, bipolar=q.bipolar)
    w = q.codes if q.bipolar else q.codes - q.zero_point
    return w.astype(np.int64), qt


def _tt_mid_qtype(ctx: ImportContext, step: Step, t: int) -> ir.FloatRequant:
    """The requantization of step ``t``'s sums to the codes of the quantizer after it."""
    node = step.quant
    if node is None:
        raise InputError(
            f"node '{_name(step.node)}': the TT state after this MatMul (step {t}) is not quantized; put a "
            "Quant on every intermediate state of the chain"
        )
    ctx.node = node
    scale = np.asarray(ctx.const_real(node.input[1]), dtype=np.float64).reshape(-1)
    qdq = node.op_type == "QuantizeLinear"
    if qdq:
        zp_name = node.input[2] if len(node.input) > 2 else ""
        zp = np.asarray(ctx.const_real(zp_name), dtype=np.float64).reshape(-1) if zp_name else np.zeros(1)
        bits, signed = linear_out_type(ctx, node)
        narrow = False
    else:
        zp = np.asarray(ctx.const_real(node.input[2]), dtype=np.float64).reshape(-1)
        bits = float(np.asarray(ctx.const_real(node.input[3])).reshape(-1)[0])
        signed = bool(ctx.attr(node, "signed", 1))
        narrow = bool(ctx.attr(node, "narrow", 0))
    bits = ctx.check_bits(bits, "TT state")
    if scale.size != 1 or zp.size != 1 or zp[0] != 0 or (bits == 1 and signed):
        raise InputError(
            f"node '{_name(node)}': the TT intermediate quantizer must be per tensor with zero point 0 "
            "and at least 2 bits (or unsigned)"
        )
    ctx.check_scale(scale, node.input[1])
    q = ir.QType(bits, signed, (float(scale[0]),), (0,), narrow=narrow)
    rounding = "HALF_EVEN" if qdq else rounding_of(ctx, node)
    return ir.FloatRequant((), q, rounding, zero_point_after_rounding=qdq)


def _emit_tt(ctx: ImportContext, chain: Chain, v: Value) -> None:
    layout: TTLayout = chain.layout
    x = ctx.tensors[v.tensor]
    if x.qtype.per_channel:
        raise InputError(f"node '{_name(chain.head)}': per-channel quantized input of a TT layer")
    d = len(chain.steps)
    core_qtypes: list[ir.QType | None] = [None] * d
    for t, step in enumerate(chain.steps):
        core_qtypes[layout.core_of_step[t]] = _tt_weight(ctx, step)[1]
    mid_qtypes, mid_requant = [], []
    scale = x.qtype.scale[0]
    for t, step in enumerate(chain.steps):
        scale *= core_qtypes[layout.core_of_step[t]].scale[0]
        if t == d - 1:
            if step.quant is not None:
                raise InputError(f"node '{_name(step.quant)}': unexpected quantizer after the last TT MatMul")
            break
        requant = _tt_mid_qtype(ctx, step, t)
        mid_qtypes.append(requant.out_qtype)
        mid_requant.append(requant)
        scale = requant.out_qtype.scale[0]
    m = math.prod(layout.modes_out)
    first = _name(chain.steps[0].node)
    end = chain.last.output[0]
    ctx.node = chain.steps[0].node
    acc_name = end if chain.out_quant is None else end + "_acc"
    out = ctx.new_tensor(acc_name, (None, m), "acc", ctx.acc_qtype(np.array([scale]), 1))
    ctx.emit(ir.TTDense, [v.tensor], out, source=first, modes_in=layout.modes_in, modes_out=layout.modes_out,
               ranks=layout.ranks, order=layout.order, cores=tuple(layout.cores), core_qtypes=tuple(core_qtypes),
               mid_qtypes=tuple(mid_qtypes), mid_requant=tuple(mid_requant))  # fmt: skip
    if chain.out_quant is None:
        ctx.set(end, out, "real")
        return
    # a Quant after the last MatMul (before the final Reshape): the layer's output quantizer
    qnode = chain.out_quant
    if np.asarray(ctx.const_real(qnode.input[1])).size != 1:
        raise InputError(f"node '{_name(qnode)}': a per-channel quantizer inside a TT chain; quantize per tensor")
    ctx.node = qnode
    ctx.set(qnode.input[0], out, "real")
    import_quant(ctx, qnode)
    ctx.values[end] = ctx.values[qnode.output[0]]
