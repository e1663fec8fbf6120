"""``quantize``: a float torch model in, a calibrated, fine-tuned ultra-low-bit Brevitas model
(and its QONNX file) out."""

from __future__ import annotations

import copy
import random
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from accelgen.errors import InputError
from accelgen.quant.convert import to_brevitas
from accelgen.quant.quantizers import freeze_weights_

#: onnxruntime refuses the IR 14 that onnx >= 1.23 writes
MAX_IR_VERSION = 10


@dataclass
class QuantResult:
    """The quantized model, its accuracy on ``val`` and, when exported, the QONNX file."""

    model: nn.Module
    val_accuracy: float
    float_accuracy: float
    onnx_path: Path | None = None

    def export(self, path: str | Path, sample: torch.Tensor) -> Path:
        """Write the model as QONNX to ``path`` (see :func:`export_qonnx`)."""
        self.onnx_path = export_qonnx(self.model, sample, path)
        return self.onnx_path


def _tensors(data, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        x, y = data
    except (TypeError, ValueError):
        raise InputError(f"{what}: give a pair (X, y)") from None
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y).astype(np.int64))
    if len(x) != len(y) or len(x) == 0:
        raise InputError(f"{what}: X has {len(x)} samples and y {len(y)}; they must match and not be empty")
    return x, y


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` (evaluation mode) on ``(x, y)``."""
    model.eval()
    out = model(x)
    return float((out.argmax(1) == y).float().mean())


def _check_fits(model: nn.Module, x: torch.Tensor, y: torch.Tensor, what: str) -> None:
    model.eval()
    try:
        with torch.no_grad():
            out = model(x[:2])
    except RuntimeError as exc:
        raise InputError(f"{what}: samples of shape {tuple(x.shape[1:])} do not fit the model ({exc})") from None
    if out.dim() != 2 or int(y.max()) >= out.shape[1] or int(y.min()) < 0:
        raise InputError(f"{what}: labels {int(y.min())}..{int(y.max())} do not fit the model's output "
                         f"{tuple(out.shape[1:])}; give class indices 0..{out.shape[-1] - 1}")  # fmt: skip


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float, seed: int,
        batch_size: int = 64, label: str = "train", progress: bool = True) -> nn.Module:  # fmt: skip
    """Adam with a cosine schedule on cross-entropy, seeded shuffling; one progress bar per epoch."""
    seed_all(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (len(x) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs * steps_per_epoch, 1))
    gen = torch.Generator().manual_seed(seed)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=True) as bars:
        for epoch in range(epochs):
            model.train()
            task = bars.add_task(f"{label} epoch {epoch + 1}/{epochs}", total=steps_per_epoch)
            perm = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch_size):
                idx = perm[i : i + batch_size]
                opt.zero_grad()
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
                sched.step()
                bars.advance(task)
    model.eval()
    return model


@torch.no_grad()
def calibrate(model: nn.Module, x: torch.Tensor, batch: int = 256) -> None:
    """One pass in training mode without gradients: LSQ's activation steps start from it, and
    BatchNorm statistics follow the quantized weights."""
    model.train()
    model(x[:batch])
    model.eval()


def quantize(model: nn.Module, train, val, *, w_bits=2, a_bits=2, method: str = "ul2q", epochs: int = 30,
             lr: float = 1e-3, seed: int = 0, output: str | Path | None = None,
             progress: bool = True) -> QuantResult:  # fmt: skip
    """Quantize float ``model`` (Linear, Conv2d, BatchNorm, ReLU, pooling, residual add) with
    ``method`` ("ul2q", "lsq" or "brevitas" for Brevitas' default quantizers), calibrate it,
    fine-tune it for ``epochs`` on ``train`` = (X, y) and measure it on ``val``.

    ``w_bits`` / ``a_bits``: 1..8 (weights also "ternary"), or a dict from layer name
    (:func:`accelgen.quant.convert.compute_layers`, :func:`~accelgen.quant.convert.activation_nodes`)
    to bits with an optional "default" entry (mixed precision). The graph input is quantized
    to 8 bits. ``output``: also export QONNX there.
    """
    x, y = _tensors(train, "train")
    xv, yv = _tensors(val, "val")
    base = copy.deepcopy(model).float()
    _check_fits(base, x, y, "train")
    _check_fits(base, xv, yv, "val")
    float_acc = accuracy(base, xv, yv)
    seed_all(seed)
    qmodel = to_brevitas(base, method, w_bits, a_bits)
    calibrate(qmodel, x)
    fit(qmodel, x, y, epochs=epochs, lr=lr, seed=seed, label=f"{method} W{w_bits}A{a_bits}", progress=progress)
    freeze_weights_(qmodel)
    result = QuantResult(qmodel, accuracy(qmodel, xv, yv), float_acc)
    if output is not None:
        result.export(output, x[:1])
    return result


def export_qonnx(model: nn.Module, sample: torch.Tensor, path: str | Path) -> Path:
    """Brevitas' ``export_qonnx`` (TorchScript exporter, symbolic batch) to one self-contained
    file with ``ir_version`` capped at 10."""
    from brevitas.export import export_qonnx as brevitas_export_qonnx

    path = Path(path)
    model.eval()
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = Path(tmp) / "model.onnx"
        brevitas_export_qonnx(model, (sample,), str(raw), dynamo=False, input_names=["input"],
                              output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})  # fmt: skip
        exported = onnx.load(str(raw))
    exported.ir_version = min(exported.ir_version, MAX_IR_VERSION)
    onnx.save(exported, str(path))
    return path
