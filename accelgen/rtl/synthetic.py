"""Random quantized MLPs in the lowered IR, for benchmarks, calibration and tests.

Weights are drawn uniformly from the weight type's codes; each hidden layer's thresholds
are quantiles of its accumulator over random inputs, so that every comparator is live
(as in a trained network) rather than constant-folded away.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from accelgen import ir
from accelgen.runtime.numeric import apply_requant


def random_mlp(
    sizes: Sequence[int] = (16, 64, 32, 32, 5),
    *,
    w_bits: int = 2,
    act_bits: int = 2,
    in_bits: int = 8,
    seed: int = 0,
    name: str | None = None,
) -> ir.Graph:
    """An MLP of Dense layers: ``in_bits`` unsigned input codes, ``w_bits`` narrow signed
    weights (2 bits: ternary), ``act_bits`` unsigned hidden activations (1: bipolar), and
    a raw accumulator out of the last layer."""
    rng = np.random.default_rng(seed)
    tensors = {"x": ir.Tensor("x", (None, sizes[0]), "codes", ir.QType(in_bits, False))}
    sample = rng.integers(0, 1 << in_bits, (512, sizes[0]))
    ops: list[ir.Op] = []
    wmax = (1 << (w_bits - 1)) - 1
    w_qtype = ir.QType(w_bits, True, narrow=True)
    src = "x"
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        w = rng.integers(-wmax, wmax + 1, (n_out, n_in)).astype(np.int64)
        acc = sample @ w.T
        out = f"h{i + 1}"
        if i == len(sizes) - 2:
            tensors[out] = ir.Tensor(out, (None, n_out), "acc", ir.QType(32, True))
            ops.append(ir.Dense(f"fc{i + 1}", (src,), (out,), source=f"fc{i + 1}", weights=w, w_qtype=w_qtype))
            break
        bipolar = act_bits == 1
        levels = 1 if bipolar else (1 << act_bits) - 1
        q = np.linspace(0, 1, levels + 2)[1:-1]
        T = np.ceil(np.quantile(acc, q, axis=0).T).astype(np.int64)  # (n_out, levels)
        th = ir.Thresholds(thresholds=T, base=np.array([-1 if bipolar else 0]), direction=np.array([1]),
                           step=2 if bipolar else 1)  # fmt: skip
        qtype = ir.QType(1, True, bipolar=True) if bipolar else ir.QType(act_bits, False)
        tensors[out] = ir.Tensor(out, (None, n_out), "codes", qtype)
        ops.append(ir.Dense(f"fc{i + 1}", (src,), (out,), source=f"fc{i + 1}", weights=w, w_qtype=w_qtype, requant=th))
        sample = apply_requant(acc, th)
        src = out
    label = name or "mlp_" + "_".join(map(str, sizes)) + f"_w{w_bits}a{act_bits}"
    graph = ir.Graph(label, tensors, ops, ["x"], [src if ops[-1].outputs[0] == src else ops[-1].outputs[0]],
                     io_dtypes={ops[-1].outputs[0]: "int64"})  # fmt: skip
    ir.verify(graph, lowered=True)
    return graph
