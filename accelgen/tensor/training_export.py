"""Export a network trained on the device (``accelgen.runtime.training``) as QONNX.

The trained codes become an ``nn.Sequential(TTLinear, ReLU, QuantLinear)`` whose quantizers
hold the training arithmetic's power-of-two scales, written by :func:`export_qonnx`:

* TT input: unsigned ``input_bits`` at ``2^-input_bits`` (the device's input codes);
* cores at ``2^-fracs.cores[k]``, states between the steps at ``2^-fracs.states[k]`` (contraction
  order 0..d-1, the device's), both ``core_bits`` / ``act_bits`` signed;
* the TT bias (float, on its grid), ReLU, the head's input at ``2^-fracs.hidden`` (unsigned),
  the head's weight at ``2^-fracs.head`` (narrow), the head bias float; logits float.

Every Quant rounds half to even, as the device's requantization does, so the exported model's
codes are the device's codes and its logits are the device's exact logits times
``2^-logit_frac``. Widths above 8 bits cannot be written (the quantizers are 2..8 bits).
"""

from __future__ import annotations

from pathlib import Path

import torch

from accelgen.runtime.training.spec import TrainConfig, TrainState, dequantize_state
from accelgen.tensor.export import ExportError, export_qonnx
from accelgen.tensor.qlinear import QuantLinear
from accelgen.tensor.tt import TTLinear


def _set_scale(quant, frac: int) -> None:
    quant.scale.fill_(2.0**-frac)
    quant.initialized.fill_(True)


def trained_module(config: TrainConfig, state: TrainState) -> torch.nn.Sequential:
    """The trained network as accelgen.tensor modules (eval mode, float64 parameters)."""
    w, f = config.widths, config.fracs
    if max(w.core_bits, w.head_bits, w.act_bits, w.input_bits) > 8:
        raise ExportError(f"widths {w}: the exported quantizers are 2..8 bits")
    values = dequantize_state(config, state)
    with torch.no_grad():
        tt = TTLinear(config.in_features, config.hidden, config.modes_in, config.modes_out,
                      rank=config.ranks, order=tuple(range(config.d)), core_bits=w.core_bits,
                      mid_bits=w.act_bits, act_bits=w.input_bits, act_signed=False, rank_prior=None,
                      name="tt")  # fmt: skip
        for k, core in enumerate(values["cores"]):
            tt.cores[k].copy_(torch.from_numpy(core))
            _set_scale(tt.core_quant[k], f.cores[k])
        for t, frac in enumerate(f.states):
            _set_scale(tt.mid_quant[t], frac)
        _set_scale(tt.act_quant, w.input_bits)
        tt.bias.copy_(torch.from_numpy(values["tt_bias"]))
        head = QuantLinear(config.hidden, config.classes, weight_bits=w.head_bits, act_bits=w.act_bits,
                           act_signed=False, name="head")  # fmt: skip
        head.weight.copy_(torch.from_numpy(values["head"].T))
        head.bias.copy_(torch.from_numpy(values["head_bias"]))
        _set_scale(head.weight_quant, f.head)
        _set_scale(head.act_quant, f.hidden)
    return torch.nn.Sequential(tt, torch.nn.ReLU(), head).eval()


def export_trained(config: TrainConfig, state: TrainState, path: str | Path) -> Path:
    """Write the trained network to ``path`` as QONNX (``accelgen build`` takes it)."""
    export_qonnx(trained_module(config, state), path, (None, config.in_features))
    return Path(path)
