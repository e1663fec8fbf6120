"""Train the digits TT network on the device (C simulation), bit for bit against the numpy spec.

    python examples/tt_train_on_device.py [-o OUTDIR] [--epochs N] [--rank R] [--lr LR] [--json] [--quick]

The network of examples/tensorized_digits.py: ``784 -> TT 512`` (modes 4*7*4*7 -> 4*4*8*4,
internal ranks ``--rank``) ``-> ReLU -> 512 -> 10``, on the same data (digits upsampled to
28x28, 1347 train / 450 test). ``accelgen.codegen.train.generate`` (what ``accelgen
train-build`` runs) writes and compiles the training project into ``OUTDIR/train_build``;
then three trainers see the same samples in the same order with the same learning rate:

* ``csim``: the generated HLS top in C simulation (8-bit cores, states and head, 16-bit
  errors, stochastic rounding of the updates);
* ``golden``: the numpy spec; after every step (one call of ``--batch`` samples) every core,
  bias and head weight and the LFSR state of the two are compared (``csim_bit_exact``);
* torch float64: the same network from the same (dequantized) initial values, per-sample SGD
  on the same schedule (``acc_float_tt``).

Accuracies are on the test split. Bytes and cycles are the training design's estimates
(``report.json``); ``train_bytes_dense`` is fp32 dense training of the same network with the
same optimizer (weights, gradients, one sample's activations and errors). ``--json`` prints
one JSON object on stdout; progress goes to stderr. ``--quick``: 4 steps (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tensorized_digits import CLASSES, MODES_IN, MODES_OUT, digits_28x28  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def schedule(epochs: int, steps_per_epoch: int, lr: float, decay: float) -> list[float]:
    """The learning rate of every step: ``lr * decay^epoch``."""
    return [lr * decay**e for e in range(epochs) for _ in range(steps_per_epoch)]


def batches(n: int, batch: int, epochs: int, seed: int, limit: int | None):
    """(epoch, sample indices) per step: a fresh permutation per epoch."""
    rng = np.random.default_rng(seed)
    out = []
    for epoch in range(epochs):
        perm = rng.permutation(n)
        out += [(epoch, perm[i : i + batch]) for i in range(0, n, batch)]
    return out[:limit] if limit else out


def float_training(initial: dict, data, steps, lrs) -> float:
    """Torch float64 training of the same network (TTLinear, contraction 0..d-1, ReLU, Linear),
    one SGD step per sample in the device's order; returns the test accuracy."""
    import torch

    from accelgen.tensor import TTLinear

    torch.set_num_threads(1)  # per-sample steps are tiny: threads only add overhead
    torch.set_default_dtype(torch.float64)
    ranks = tuple(c.shape[3] for c in initial["cores"][:-1])
    tt = TTLinear(784, 512, MODES_IN, MODES_OUT, rank=ranks, order=tuple(range(len(MODES_IN))), rank_prior=None)
    head = torch.nn.Linear(512, CLASSES)
    with torch.no_grad():
        for core, value in zip(tt.cores, initial["cores"]):
            core.copy_(torch.from_numpy(value))
        tt.bias.copy_(torch.from_numpy(initial["tt_bias"]))
        head.weight.copy_(torch.from_numpy(initial["head"].T))
        head.bias.copy_(torch.from_numpy(initial["head_bias"]))
    model = torch.nn.Sequential(tt, torch.nn.ReLU(), head)
    optimizer = torch.optim.SGD(model.parameters(), lr=lrs[0])
    x_train, y_train = torch.from_numpy(data[0].astype(np.float64)), torch.from_numpy(data[1])
    for (_, idx), lr in zip(steps, lrs):
        optimizer.param_groups[0]["lr"] = lr
        for i in idx:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x_train[i : i + 1]), y_train[i : i + 1]).backward()
            optimizer.step()
    torch.set_default_dtype(torch.float32)
    with torch.no_grad():
        pred = model(torch.from_numpy(data[2].astype(np.float64))).argmax(1).numpy()
    return float((pred == data[3]).mean())


def run(args) -> dict:
    from accelgen.codegen import train as train_build
    from accelgen.runtime.training import spec
    from accelgen.runtime.training.trainer import Trainer

    data = digits_28x28()
    x_train, y_train, x_test, y_test = data
    ranks = (1, *[args.rank] * (len(MODES_IN) - 1), 1)
    config, state = train_build.design_from_data(MODES_IN, MODES_OUT, ranks, CLASSES, x_train, y_train,
                                                 seed=args.seed)  # fmt: skip
    t0 = time.perf_counter()
    design = train_build.generate(config, state, Path(args.output) / "train_build", board=args.board)
    log(f"train-build: {design.outdir} in {time.perf_counter() - t0:.1f} s; fracs {config.fracs}")
    device, golden = Trainer(design.outdir, "csim"), Trainer(design.outdir, "golden")

    steps = batches(len(x_train), args.batch, args.epochs, args.seed, 4 if args.quick else None)
    lrs = [args.lr * args.decay**epoch for epoch, _ in steps]
    exact = True
    t0 = time.perf_counter()
    for n, ((epoch, idx), lr) in enumerate(zip(steps, lrs)):
        stats = device.step(x_train[idx], y_train[idx], lr)
        golden.step(x_train[idx], y_train[idx], lr)
        exact = exact and device.state().equals(golden.state())
        if n % 10 == 0 or n == len(steps) - 1:
            log(f"  step {n + 1}/{len(steps)} epoch {epoch + 1} lr {lr:.4g}: {stats['right']}/{stats['samples']} "
                f"right, mean p_label {stats['mean_p_label']:.3f}, bit-exact so far: {exact}")  # fmt: skip
    train_s = time.perf_counter() - t0
    acc_device = device.evaluate(x_test, y_test)
    acc_golden = golden.evaluate(x_test, y_test)
    log(f"device trained in {train_s:.1f} s (csim and golden in lockstep): test accuracy {acc_device:.4f}")
    t0 = time.perf_counter()
    initial = spec.dequantize_state(config, state)
    acc_float = float_training(initial, data, steps, lrs)
    log(f"torch float training in {time.perf_counter() - t0:.1f} s: test accuracy {acc_float:.4f}")
    rep = design.report
    w = config.widths
    return {
        "steps": len(steps),
        "csim_bit_exact": bool(exact),
        "acc_float_tt": acc_float,
        "acc_device": acc_device,
        "train_bytes_device": rep["train_bytes_device"],
        "train_bytes_dense": rep["train_bytes_dense"],
        "cycles_per_step_est": rep["cycles_per_sample_est"] * args.batch,
        # beyond the contract
        "acc_golden": acc_golden,
        "memory_reduction_est": rep["train_bytes_dense"] / rep["train_bytes_device"],
        # what train_bytes_dense counts (weights, gradients as a framework stores them, optimizer
        # state, one sample's activations and errors), so a reader can judge the comparison
        "train_bytes_dense_parts": rep["train_bytes_dense_parts"],
        "cycles_per_sample_est": rep["cycles_per_sample_est"],
        "clock_mhz": rep["clock_mhz"],
        "step_us_est": rep["cycles_per_sample_est"] * args.batch / rep["clock_mhz"],
        "fits_board": rep["fit"]["fits"],
        "board": rep["board"],
        "resources_est": rep["fit"]["need"],
        "paper_anchors": rep["paper_anchors"],
        "batch": args.batch,
        "samples": sum(len(idx) for _, idx in steps),
        "epochs": args.epochs,
        "lr": args.lr,
        "lr_decay": args.decay,
        "ranks": list(ranks),
        "bits": {"input": w.input_bits, "core": w.core_bits, "head": w.head_bits, "act": w.act_bits,
                 "error": w.error_bits, "bias": w.bias_bits, "acc": w.acc_bits},  # fmt: skip
        "train_seconds_csim_and_golden": train_s,
        "build": str(design.outdir),
    }


def table(f: dict) -> str:
    lines = [
        f"steps {f['steps']} ({f['samples']} samples, batch {f['batch']}), C-sim bit-exact with the spec after "
        f"every step: {f['csim_bit_exact']}",
        f"test accuracy: device {f['acc_device']:.4f}, torch float TT {f['acc_float_tt']:.4f}",
        f"training memory (estimate): device {f['train_bytes_device']:,} B vs dense fp32 {f['train_bytes_dense']:,} B "
        f"= {f['memory_reduction_est']:.0f}x (paper, measured: {f['paper_anchors']['memory_reduction_vs_dense']}x)",
        f"cycles per step (estimate): {f['cycles_per_step_est']:,} = {f['step_us_est']:,.0f} us at {f['clock_mhz']} "
        f"MHz on {f['board']} (fits: {f['fits_board']}; paper: {f['paper_anchors']['speedup_vs_embedded_cpu']}x "
        "faster than an embedded CPU, measured there)",
    ]  # fmt: skip
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="out/tt_train_on_device", help="work directory")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rank", type=int, default=4, help="internal TT ranks (default 4)")
    parser.add_argument("--batch", type=int, default=32, help="samples per step (one call of the device)")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--decay", type=float, default=0.6, help="learning-rate factor per epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--board", default="ultra96")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    parser.add_argument("--quick", action="store_true", help="4 steps (a smoke run)")
    args = parser.parse_args(argv)
    for name in ("epochs", "rank", "batch"):
        if getattr(args, name) < 1:
            parser.exit(2, f"{parser.prog}: error: --{name} must be at least 1\n")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.exit(2, f"{parser.prog}: error: --lr must be a positive number\n")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from accelgen.errors import AccelgenError

    try:
        figures = run(args)
    except AccelgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(figures) if args.json else table(figures))
    return 0 if figures["csim_bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
