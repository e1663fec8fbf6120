"""µL2Q and LSQ as Brevitas quantizers (injectors whose ``tensor_quant`` is one of the modules here).

Brevitas' proxies call ``tensor_quant(x)`` and expect ``(value, scale, zero_point, bit_width)``;
``export_qonnx`` and ``export_onnx_qcdq`` write a quantizer node from that scale, zero point and
bit width and from the injector's ``signed`` and ``narrow_range``. So each quantizer states the
grid it exports:

* µL2Q, k bits (Gong et al. 2019): step ``alpha = lambda_k * std(w)`` (per tensor), levels at
  ``alpha * (i + 1/2)``, ``i`` in ``[-2**(k-1), 2**(k-1) - 1]`` (2**k levels, no zero). The
  half-step offset exports exactly as a **(k+1)-bit narrow signed Quant with scale alpha/2**:
  the codes are the odd integers ``2i + 1`` in ``[-(2**k - 1), 2**k - 1]``. One bit: a
  ``BipolarQuant`` with scale alpha/2 (levels +-alpha/2). Ternary: levels ``alpha * {-1, 0, 1}``,
  a 2-bit narrow Quant with scale alpha.
* LSQ (Esser et al. 2020): a learned step per output channel for weights (initialised from
  the µL2Q step of each channel), per tensor for activations (initialised by LSQ's rule from
  the calibration batch). k >= 2 bits: codes ``[-2**(k-1), 2**(k-1) - 1]``; one bit: levels
  +-step/2 (BipolarQuant); ternary: a 2-bit narrow Quant.

Exported weights are the quantized weights (:func:`freeze_weights_`), so a Quant node with
ROUND reproduces the mid-rise codes exactly. The math is :func:`accelgen.tensor.quant.lsq_quantize`.
"""

from __future__ import annotations

import math

import torch
from brevitas.inject import ExtendedInjector
from brevitas.inject.enum import FloatToIntImplType
from brevitas.proxy import ActQuantProxyFromInjector, WeightQuantProxyFromInjector
from torch import nn

from accelgen.quant.gaussian import TERNARY_GRID, Grid, midrise_grid, ul2q_lambda
from accelgen.tensor.quant import lsq_quantize

__all__ = ["LsqActQuant", "LsqWeightQuant", "UL2QWeightQuant", "parse_bits"]

#: the bit width spelling of three-level weights
TERNARY = "ternary"
MAX_BITS = 8


def parse_bits(bits: int | str, what: str) -> int | str:
    """``bits`` as 1..8 or ``"ternary"``; ValueError naming ``what`` otherwise."""
    if isinstance(bits, str) and bits.strip().lower() in (TERNARY, "t", "1.58"):
        return TERNARY
    try:
        value = int(bits)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: bit width {bits!r} is not 1..{MAX_BITS} or 'ternary'") from None
    if str(value) != str(bits).strip() and value != bits:
        raise ValueError(f"{what}: bit width {bits!r} is not a whole number")
    if not 1 <= value <= MAX_BITS:
        raise ValueError(f"{what}: bit width {value} is out of range 1..{MAX_BITS} (or 'ternary')")
    return value


def _weight_grid(bits: int | str, *, midrise: bool) -> Grid:
    if bits == TERNARY:
        return TERNARY_GRID
    if midrise or bits == 1:
        return midrise_grid(bits)
    return Grid(-(1 << (bits - 1)), (1 << (bits - 1)) - 1, 0.0)


def _export_form(grid: Grid, step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, bit width) of the exported quantizer for ``grid`` (see the module docstring)."""
    if grid.offset:  # mid-rise: odd codes of a grid of half the step
        bits = 1 if grid.levels == 2 else int(math.log2(grid.levels)) + 1
        return step / 2, torch.tensor(float(bits))
    bits = 2 if grid == TERNARY_GRID else int(math.log2(grid.levels))
    return step, torch.tensor(float(bits))


class _WeightTensorQuant(nn.Module):
    """Common part: quantize onto ``grid`` with ``step`` and return Brevitas' tuple."""

    grid: Grid

    def _quantize(self, w: torch.Tensor, step: torch.Tensor, gradient_factor: float):
        out = lsq_quantize(w, step, self.grid.lo, self.grid.hi, gradient_factor=gradient_factor,
                           offset=self.grid.offset)  # fmt: skip
        scale, bit_width = _export_form(self.grid, step)
        # one zero point for every channel: Brevitas' export compares it with 0 as a scalar
        return out, scale, torch.zeros((), device=w.device), bit_width.to(w.device)


class UL2QTensorQuant(_WeightTensorQuant):
    """µL2Q: ``alpha = lambda_k * std(w)`` recomputed each step (no gradient), until frozen."""

    def __init__(self, bit_width: int, ternary: bool = False) -> None:
        super().__init__()
        bits = TERNARY if ternary else int(bit_width)
        self.grid = _weight_grid(bits, midrise=True)
        self.lam = ul2q_lambda(bits)
        self.register_buffer("frozen_step", torch.tensor(0.0))

    def step(self, w: torch.Tensor) -> torch.Tensor:
        if float(self.frozen_step) > 0:
            return self.frozen_step.to(w.dtype)
        return self.lam * w.detach().std(correction=0).clamp_min(1e-12)

    def forward(self, w: torch.Tensor):
        return self._quantize(w, self.step(w), 1.0)


class LsqTensorQuant(_WeightTensorQuant):
    """LSQ: a learned step per output channel, initialised from each channel's µL2Q step."""

    def __init__(self, bit_width: int, tracked_parameter_list: list, ternary: bool = False) -> None:
        super().__init__()
        bits = TERNARY if ternary else int(bit_width)
        self.grid = _weight_grid(bits, midrise=False)
        w = tracked_parameter_list[0].detach()
        per_channel = w.reshape(w.shape[0], -1)
        std = per_channel.std(dim=1, correction=0).clamp_min(1e-8)
        shape = (w.shape[0],) + (1,) * (w.dim() - 1)
        self.step = nn.Parameter((ul2q_lambda(bits) * std).reshape(shape).to(w.dtype))
        top = max(self.grid.hi + self.grid.offset, 1.0)
        self.gradient_factor = 1.0 / math.sqrt(per_channel.shape[1] * top)

    def forward(self, w: torch.Tensor):
        return self._quantize(w, self.step.abs().clamp_min(1e-12), self.gradient_factor)


class LsqActTensorQuant(nn.Module):
    """LSQ per tensor for activations: codes ``[0, 2**k - 1]`` (unsigned) or
    ``[-2**(k-1), 2**(k-1) - 1]`` (signed); one signed bit is bipolar, levels +-step/2 (Brevitas
    exports every 1-bit quantizer as a BipolarQuant). The step starts at ``2 mean|x| / sqrt(hi)``
    of the first batch seen in training mode (the calibration batch)."""

    def __init__(self, bit_width: int, signed: bool) -> None:
        super().__init__()
        bits = int(bit_width)
        self.bits, self.signed = bits, bool(signed)
        if bits == 1 and not self.signed:
            raise ValueError("1-bit activations are bipolar (Brevitas exports them as BipolarQuant): use signed")
        if bits == 1:
            self.grid = midrise_grid(1)
        elif self.signed:
            self.grid = Grid(-(1 << (bits - 1)), (1 << (bits - 1)) - 1, 0.0)
        else:
            self.grid = Grid(0, (1 << bits) - 1, 0.0)
        self.step = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x: torch.Tensor):
        top = max(self.grid.hi + self.grid.offset, 1.0)
        if self.training and not bool(self.initialized):
            with torch.no_grad():
                self.step.fill_(max(2.0 * float(x.abs().mean()) / math.sqrt(top), 1e-6))
                self.initialized.fill_(True)
        step = self.step.abs().clamp_min(1e-12)
        features = x[0].numel() if x.dim() > 1 else max(x.numel(), 1)  # per sample, as in LSQ
        out = lsq_quantize(x, step, self.grid.lo, self.grid.hi, gradient_factor=1.0 / math.sqrt(features * top),
                           offset=self.grid.offset)  # fmt: skip
        scale = step / 2 if self.grid.offset else step
        return out, scale, torch.zeros(()), torch.tensor(float(self.bits), device=x.device)


class _Common(ExtendedInjector):
    float_to_int_impl_type = FloatToIntImplType.ROUND
    ternary = False


class UL2QWeightQuant(_Common):
    """µL2Q weights (``weight_bit_width`` 1..8; ``weight_ternary=True`` for three levels)."""

    proxy_class = WeightQuantProxyFromInjector
    tensor_quant = UL2QTensorQuant
    bit_width = 2
    signed = True
    narrow_range = True


class LsqWeightQuant(_Common):
    """LSQ weights, a learned step per output channel (``weight_bit_width`` 1..8, or ternary)."""

    proxy_class = WeightQuantProxyFromInjector
    tensor_quant = LsqTensorQuant
    bit_width = 2
    signed = True
    narrow_range = False


class LsqActQuant(_Common):
    """LSQ activations, unsigned (after a ReLU); ``signed=True`` for signed tensors."""

    proxy_class = ActQuantProxyFromInjector
    tensor_quant = LsqActTensorQuant
    bit_width = 2
    signed = False
    narrow_range = False


def weight_quantizer(method: str, bits: int | str) -> dict:
    """Keyword arguments of a Brevitas layer for ``method``'s weight quantizer at ``bits``."""
    base = {"ul2q": UL2QWeightQuant, "lsq": LsqWeightQuant}[method]
    if bits == TERNARY:
        # ternary is 2-bit narrow in both methods
        quant = base.let(narrow_range=True, ternary=True, bit_width=2)
    elif method == "lsq" and bits == 1:
        quant = base.let(bit_width=1)
    else:
        quant = base.let(bit_width=int(bits))
    return {"weight_quant": quant}


@torch.no_grad()
def freeze_weights_(model: nn.Module) -> None:
    """Fix each µL2Q step and replace every µL2Q / LSQ weight by its quantized value, so that
    the exported Quant node (ROUND) reproduces the codes exactly."""
    for module in model.modules():
        proxy = getattr(module, "weight_quant", None)
        tq = getattr(proxy, "tensor_quant", None)
        if not isinstance(tq, _WeightTensorQuant):
            continue
        if isinstance(tq, UL2QTensorQuant):
            tq.frozen_step.fill_(float(tq.step(module.weight)))
        value = tq(module.weight)[0]
        module.weight.copy_(value)
