"""Training-memory measurement: exact parameter bytes, dense against TT at batch 1."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from accelgen.tensor.memory import measure_training_step, memory_table
from accelgen.tensor.tt import TTLinear
from tests.conftest import FIGURES

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _measure(model: nn.Module, batch: int):
    torch.manual_seed(0)
    x, target = torch.randn(batch, 784), torch.randn(batch, 512)
    return measure_training_step(model, x, target, nn.functional.mse_loss)


def test_dense_accounting_is_exact():
    model = nn.Linear(784, 512)
    memory = _measure(model, 1)
    numel = 784 * 512 + 512
    assert memory.parameters == numel * 4
    assert memory.gradients == numel * 4
    # Adam: exp_avg and exp_avg_sq per parameter plus one float32 step counter per parameter
    assert memory.optimizer_state == 2 * numel * 4 + 2 * 4
    # the input and what the loss keeps; the weight itself is not counted twice
    assert 784 * 4 <= memory.saved_for_backward < numel * 4 / 10
    assert memory.total == memory.parameters + memory.gradients + memory.optimizer_state + memory.saved_for_backward


def test_saved_tensors_grow_with_the_batch():
    model = TTLinear(784, 512, rank=16, name="fc1")
    small, large = _measure(model, 1), _measure(model, 64)
    assert small.parameters == large.parameters
    assert large.saved_for_backward > 32 * small.saved_for_backward


def test_tt_at_batch_1_uses_far_less_than_dense():
    dense = _measure(nn.Linear(784, 512), 1)
    layer = TTLinear(784, 512, rank=16, name="fc1")
    tt = _measure(layer, 1)
    assert tt.parameters == layer.num_parameters() * 4
    assert tt.gradients == tt.parameters
    ratio = dense.total / tt.total
    assert ratio > 10
    table = memory_table({"dense": dense, "tt": tt})
    assert table.splitlines()[2].split()[0] == "tt"
    assert float(table.splitlines()[2].split()[-1]) == pytest.approx(ratio, abs=0.05)
    FIGURES.append(
        f"training memory 784-512 batch 1: dense {dense.total} B, TT rank 16 {tt.total} B ({ratio:.1f}x less; "
        f"TT saved-for-backward {tt.saved_for_backward} B)"
    )


def test_quantizers_keep_one_copy_of_what_they_quantize():
    plain = _measure(TTLinear(784, 512, rank=(10, 5, 7), name="fc1"), 1)
    quantized = _measure(TTLinear(784, 512, rank=(10, 5, 7), core_bits=4, mid_bits=8, act_bits=8, name="fc1"), 1)
    # LSQ composed from torch operators kept about three copies per quantized tensor (3.7x here)
    assert quantized.saved_for_backward < 2 * plain.saved_for_backward
