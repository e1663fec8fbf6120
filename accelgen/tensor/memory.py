"""Training memory of one optimisation step, measured from what torch allocates.

Four parts, each counted by the bytes of the distinct storages behind the tensors:
parameters, their gradients, the optimizer's state after one step, and the tensors autograd
saves for the backward (seen through ``torch.autograd.graph.saved_tensors_hooks``; a saved
tensor that is a view of a parameter is not counted again). Transient buffers freed inside
an operator are not part of any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["TrainingMemory", "measure_training_step", "memory_table"]


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes held during one training step at ``batch``."""

    batch: int
    parameters: int
    gradients: int
    optimizer_state: int
    saved_for_backward: int

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer_state + self.saved_for_backward


def _storage_key(tensor: torch.Tensor) -> tuple[int, int]:
    storage = tensor.untyped_storage()
    return storage.data_ptr(), storage.nbytes()


def _bytes_of(tensors: Iterable[torch.Tensor], exclude: set[tuple[int, int]] | None = None) -> int:
    seen = set(exclude or ())
    total = 0
    for tensor in tensors:
        key = _storage_key(tensor)
        if key not in seen:
            seen.add(key)
            total += key[1]
    return total


def measure_training_step(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer_factory: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] = torch.optim.Adam,
) -> TrainingMemory:
    """Run one forward, backward and optimizer step of ``model`` on ``(x, target)`` and measure it.

    The model's parameters change (one step is taken); pass a copy to keep the original.
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = optimizer_factory(parameters)
    parameter_storages = {_storage_key(p) for p in parameters}
    saved: list[torch.Tensor] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor)
        return tensor

    optimizer.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = loss_fn(model(x), target)
    saved_bytes = _bytes_of(saved, exclude=parameter_storages)
    loss.backward()
    optimizer.step()
    state = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    return TrainingMemory(
        batch=int(x.shape[0]),
        parameters=_bytes_of(parameters),
        gradients=_bytes_of(p.grad for p in parameters if p.grad is not None),
        optimizer_state=_bytes_of(state),
        saved_for_backward=saved_bytes,
    )


def memory_table(rows: dict[str, TrainingMemory]) -> str:
    """A plain-text table of the parts in bytes, one row per model, with each total's ratio to the first."""
    parts = ("parameters", "gradients", "optimizer_state", "saved_for_backward", "total")
    header = ["model", "batch", *parts, "x less"]
    baseline = next(iter(rows.values())).total if rows else 1
    body = [
        [name, str(m.batch), *(str(getattr(m, part)) for part in parts), f"{baseline / m.total:.1f}"]
        for name, m in rows.items()
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in [header, *body])
