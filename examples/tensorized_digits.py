"""A tensor-train MLP on digits: train dense and TT, export to QONNX, build for an FPGA.

    python examples/tensorized_digits.py [-o OUTDIR] [--epochs N] [--seed S] [--board ultra96] [--json] [--quick]

scikit-learn's 8x8 digits, bilinearly upsampled to 28x28 (784 inputs), with the fixtures'
split (``train_test_split(test_size=0.25, random_state=0, stratify=y)``: 1347 train, 450
test). Two networks, both with an unsigned 8-bit input quantizer and an 8-bit ``512 -> 10``
quantized head with 8-bit logits:

* dense: ``QuantLinear 784 -> 512`` (8-bit weights) -> ReLU -> head;
* TT: ``TTLinear 784 -> 512`` (modes 4*7*4*7 -> 4*4*8*4, initial rank 16, 4-bit cores, 8-bit
  states between the steps, rank adaptation with a log-uniform prior tempered by 0.1) ->
  ReLU -> head.

Both are trained, exported with ``accelgen.tensor.export_qonnx`` to ``OUTDIR/dense.onnx`` and
``OUTDIR/tt.onnx``; the TT model is built for the board into ``OUTDIR/tt_<board>/`` with
C-simulation against the golden model. Accuracies are those of the exported integer
models run by accelgen's golden interpreter on the test split (the torch accuracies are
reported beside them). Parameters, weight bits and training memory are those of the
factored layer (``784 -> 512``, bias included in the parameters, not in the weight bits);
the head is the same in both networks. Training memory is measured at batch 1 with
``accelgen.tensor.memory`` (parameters, gradients, Adam state, tensors saved for backward).

``--json`` prints one JSON object on stdout and nothing else (progress goes to stderr);
``--quick`` trains 2 epochs by default and C-simulates 16 test vectors (a smoke run).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: the TT layer's modes, as issue 12 factors 784 and 512
MODES_IN, MODES_OUT = (4, 7, 4, 7), (4, 4, 8, 4)
HIDDEN, CLASSES, FEATURES = 512, 10, 784
DENSE_WEIGHT_BITS = 8


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def digits_28x28() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): the fixtures' digits split, images upsampled to 28x28."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)

    def upsample(images: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(images.reshape(-1, 1, 8, 8))
        big = torch.nn.functional.interpolate(t, size=(28, 28), mode="bilinear", align_corners=False)
        return big.reshape(-1, FEATURES).clamp(0, 1).numpy()

    return upsample(x_train), y_train, upsample(x_test), y_test


@dataclass
class Settings:
    epochs: int = 40
    seed: int = 0
    rank: int = 16
    core_bits: int = 4
    mid_bits: int = 8
    prior_weight: float = 0.1
    warmup_epochs: int = 5
    lr: float = 3e-3
    batch: int = 64


def _input_quant_for_pixels(quant) -> None:
    """Pixels lie in [0, 1]: start the input quantizer's scale at 1/255 (LSQ still learns it)."""
    import torch

    with torch.no_grad():
        quant.scale.fill_(1.0 / 255)
        quant.initialized.fill_(True)


def head():
    from accelgen.tensor import QuantLinear

    return QuantLinear(HIDDEN, CLASSES, weight_bits=8, act_bits=8, act_signed=False, out_bits=8, name="fc2")


def dense_model():
    import torch.nn as nn

    from accelgen.tensor import QuantLinear

    fc1 = QuantLinear(FEATURES, HIDDEN, weight_bits=DENSE_WEIGHT_BITS, act_bits=8, act_signed=False, name="fc1")
    _input_quant_for_pixels(fc1.act_quant)
    return nn.Sequential(fc1, nn.ReLU(), head())


def tt_model(settings: Settings, rank=None, rank_prior: str | None = "log_uniform"):
    import torch.nn as nn

    from accelgen.tensor import TTLinear

    fc1 = TTLinear(FEATURES, HIDDEN, MODES_IN, MODES_OUT, rank=settings.rank if rank is None else rank,
                   core_bits=settings.core_bits, mid_bits=settings.mid_bits, act_bits=8, act_signed=False,
                   rank_prior=rank_prior, name="fc1")  # fmt: skip
    _input_quant_for_pixels(fc1.act_quant)
    return nn.Sequential(fc1, nn.ReLU(), head())


def train(model, data, settings: Settings, what: str, rank_adaptive: bool = False):
    """Adam on cross-entropy; the TT model through ``train_rank_adaptive`` (prior, MAP, pruning)."""
    import torch

    from accelgen.tensor import train_rank_adaptive

    x_train, y_train = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    generator = torch.Generator().manual_seed(settings.seed)

    def batches():
        perm = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(perm), settings.batch):
            idx = perm[i : i + settings.batch]
            yield x_train[idx], y_train[idx]

    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    t0 = time.perf_counter()
    history = train_rank_adaptive(
        model, batches, torch.nn.functional.cross_entropy, optimizer, epochs=settings.epochs,
        dataset_size=len(x_train), warmup_epochs=settings.warmup_epochs if rank_adaptive else 0,
        prior_weight=settings.prior_weight,
    )  # fmt: skip
    for epoch, (ranks, loss) in enumerate(zip(history.ranks, history.loss)):
        if epoch % 5 == 4 or epoch == len(history.loss) - 1:
            log(f"  {what} epoch {epoch + 1:3d}: loss {loss:.4f}" + (f", ranks {ranks['fc1']}" if ranks else ""))
    log(f"  {what}: trained {settings.epochs} epochs in {time.perf_counter() - t0:.1f} s")
    model.history = history  # ranks and loss per epoch, for the plot
    return model.eval()


def plot_training(history, ranks_initial, path: Path) -> None:
    """tt_training.png: the TT layer's internal ranks and the training loss per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history.loss) + 1)
    fig, (ax_r, ax_l) = plt.subplots(1, 2, figsize=(9, 3.4))
    internal = len(ranks_initial) - 2
    for k in range(internal):
        ax_r.plot([0, *epochs], [ranks_initial[k + 1], *(r["fc1"][k + 1] for r in history.ranks)],
                  marker=".", label=f"r{k + 1}")  # fmt: skip
    ax_r.set(xlabel="epoch", ylabel="rank", title="TT ranks (rank adaptation, pruning)")
    ax_r.legend()
    ax_l.plot(list(epochs), history.loss)
    ax_l.set(xlabel="epoch", ylabel="loss", title="training loss (cross-entropy)", yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def torch_accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    import torch

    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def golden_accuracy(onnx_path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the exported integer model, run by accelgen's golden interpreter."""
    from accelgen import golden
    from accelgen.pipeline import compile_model

    graph = compile_model(onnx_path).graph
    (out,) = golden.run(graph, x).values()
    return float((out.argmax(1) == y).mean())


def training_bytes(layer, out_features: int) -> int:
    """Bytes of one Adam training step of ``layer`` alone at batch 1 (a copy; the layer is kept)."""
    import torch

    from accelgen.tensor.memory import measure_training_step

    layer = copy.deepcopy(layer).train()
    x = torch.rand(1, layer.in_features, generator=torch.Generator().manual_seed(0))
    target = torch.zeros(1, out_features)
    return measure_training_step(layer, x, target, torch.nn.functional.mse_loss).total


def factored_figures(dense_fc1, tt_fc1, core_bits: int) -> dict:
    """Parameters (bias included) and weight bits (bias excluded) of the factored layer."""
    core_numbers = sum(core.numel() for core in tt_fc1.cores)
    return {
        "dense_params": dense_fc1.num_parameters(),
        "tt_params": tt_fc1.num_parameters(),
        "dense_weight_bits": dense_fc1.weight.numel() * DENSE_WEIGHT_BITS,
        "tt_weight_bits": core_numbers * core_bits,
    }


def build_tt(onnx_path: Path, outdir: Path, board: str, x: np.ndarray, y: np.ndarray):
    from accelgen.pipeline import build

    def progress(stage: str, state: str, detail: str) -> None:
        if state != "start":
            log(f"  {stage:>9s}  {state:8s} {detail}")

    return build(onnx_path, outdir, board=board, vectors=x, labels=y, progress=progress)


def run(outdir: Path, settings: Settings, board: str, csim_vectors: int | None) -> dict:
    """The whole example; returns the JSON contract's figures (and a few more)."""
    import torch

    from accelgen.tensor import export_qonnx

    torch.manual_seed(settings.seed)
    outdir.mkdir(parents=True, exist_ok=True)
    data = digits_28x28()
    x_test, y_test = data[2], data[3]
    log(f"digits 28x28: {len(data[0])} train, {len(x_test)} test samples")

    log("dense 784-512-10 (8-bit weights):")
    dense = train(dense_model(), data, settings, "dense")
    log("TT 784-512 + dense 512-10:")
    tt = tt_model(settings)
    ranks_initial = tt[0].ranks
    tt = train(tt, data, settings, "tt", rank_adaptive=True)
    ranks_final = tt[0].ranks

    plot_path = outdir / "tt_training.png"
    plot_training(tt.history, ranks_initial, plot_path)
    dense_path, tt_path = outdir / "dense.onnx", outdir / "tt.onnx"
    export_qonnx(dense, dense_path, (None, FEATURES))
    export_qonnx(tt, tt_path, (None, FEATURES))
    log(f"exported {dense_path} and {tt_path}")

    figures = {
        "dense_acc": golden_accuracy(dense_path, x_test, y_test),
        "tt_acc": golden_accuracy(tt_path, x_test, y_test),
        **factored_figures(dense[0], tt[0], settings.core_bits),
        "ranks_initial": list(ranks_initial),
        "ranks_final": list(ranks_final),
        "train_bytes_dense": training_bytes(dense[0], HIDDEN),
        "train_bytes_tt": training_bytes(tt[0], HIDDEN),
    }
    log(f"building {tt_path.name} for {board}:")
    vectors = x_test if csim_vectors is None else x_test[:csim_vectors]
    labels = y_test if csim_vectors is None else y_test[:csim_vectors]
    design = build_tt(tt_path, outdir / f"tt_{board}", board, vectors, labels)
    csim = design.report.get("csim") or {}
    figures |= {
        "onnx": str(tt_path),
        "build": str(design.outdir),
        "csim_passed": bool(csim.get("passed", False)),
        # beyond the contract: the torch (fake-quantized) accuracies and what the build simulated
        "dense_acc_torch": torch_accuracy(dense, x_test, y_test),
        "tt_acc_torch": torch_accuracy(tt, x_test, y_test),
        "csim_vectors": int(csim.get("vectors", 0)),
        "tt_order": list(tt[0].order),
        "tt_core_bits": settings.core_bits,
        "dense_onnx": str(dense_path),
        "training_plot": str(plot_path),
        "epochs": settings.epochs,
        "seed": settings.seed,
    }
    return figures


def table(f: dict) -> str:
    def ratio(a, b):
        return f"{a / b:,.1f}x" if b else "-"

    rows = [
        ("accuracy (exported integer model, golden)", f"{f['dense_acc']:.4f}", f"{f['tt_acc']:.4f}", ""),
        ("accuracy (torch, fake-quantized)", f"{f['dense_acc_torch']:.4f}", f"{f['tt_acc_torch']:.4f}", ""),
        ("parameters of 784->512", f"{f['dense_params']:,}", f"{f['tt_params']:,}",
         ratio(f["dense_params"], f["tt_params"])),
        ("weight bits of 784->512", f"{f['dense_weight_bits']:,}", f"{f['tt_weight_bits']:,}",
         ratio(f["dense_weight_bits"], f["tt_weight_bits"])),
        ("training bytes, batch 1 (measured)", f"{f['train_bytes_dense']:,}", f"{f['train_bytes_tt']:,}",
         ratio(f["train_bytes_dense"], f["train_bytes_tt"])),
        ("ranks", "-", f"{tuple(f['ranks_initial'])} -> {tuple(f['ranks_final'])}", ""),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    lines = [f"{'':{width}s}  {'dense':>12s}  {'TT':>26s}  {'ratio':>9s}"]
    lines += [f"{a:{width}s}  {b:>12s}  {c:>26s}  {d:>9s}" for a, b, c, d in rows]
    lines.append(f"C-simulation of {f['build']}: {'passed' if f['csim_passed'] else 'FAILED'} "
                 f"({f['csim_vectors']} vectors); model {f['onnx']}")  # fmt: skip
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="out/tensorized_digits", help="work directory (models, build)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs of each model (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--board", default="ultra96")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    parser.add_argument("--quick", action="store_true", help="2 epochs and 16 C-simulation vectors (a smoke run)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.exit(2, f"{parser.prog}: error: --epochs must be at least 1, got {args.epochs}\n")
    if args.threads < 1:
        parser.exit(2, f"{parser.prog}: error: --threads must be at least 1, got {args.threads}\n")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from accelgen import boards
    from accelgen.errors import InputError

    torch.set_num_threads(args.threads)
    try:
        boards.get_board(args.board)
    except InputError as exc:
        print(f"error: --board {args.board}: {exc}", file=sys.stderr)
        return 2
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 40)
    settings = Settings(epochs=epochs, seed=args.seed, warmup_epochs=min(5, max(epochs // 4, 0)))
    figures = run(Path(args.output), settings, args.board, 16 if args.quick else None)
    if args.json:
        print(json.dumps(figures))
    else:
        print(table(figures))
    return 0 if figures["csim_passed"] and not math.isnan(figures["tt_acc"]) else 1


if __name__ == "__main__":
    sys.exit(main())
