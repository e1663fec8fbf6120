"""Fake quantization with a learned scale (LSQ), in the form a QONNX ``Quant`` node states.

``q(x) = clip(round(x / s), lo, hi) * s`` with zero point 0, per tensor. The forward uses
round-half-even (``torch.round``), which is QONNX's ``ROUND``; training may round
stochastically instead. Gradients (Esser et al., "Learned step size quantization"):

* input: straight-through inside the clip range, zero outside;
* scale: ``round(x/s) - x/s`` inside the range, ``lo`` or ``hi`` outside, multiplied by
  ``1 / sqrt(numel * hi)`` so the scale learns at a rate comparable to the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from accelgen import ir

__all__ = ["FakeQuant", "QuantSpec", "lsq_quantize"]


@dataclass(frozen=True)
class QuantSpec:
    """What an exporter writes into ``Quant(x, scale, zero_point=0, bitwidth)``, rounding ROUND."""

    scale: float
    bits: int
    signed: bool
    narrow: bool

    @property
    def lo(self) -> int:
        return ir.QType(self.bits, self.signed, narrow=self.narrow).qmin

    @property
    def hi(self) -> int:
        return ir.QType(self.bits, self.signed, narrow=self.narrow).qmax


class _LsqQuantize(torch.autograd.Function):
    """``(clip(R(x / s), lo, hi) + offset) * s`` with LSQ's gradients, keeping only ``x`` for the backward.

    ``offset`` 0: a mid-tread grid, ``R`` rounds half to even (or stochastically); offset 0.5:
    a mid-rise grid (µL2Q's levels at odd multiples of s/2), ``R`` is floor. ``s`` is a scalar
    or broadcasts against ``x`` (per channel); its gradient is summed to its shape.

    Written as one function rather than composed from torch operators so that training
    saves one copy of ``x`` (plus 1-byte codes when rounding stochastically) instead of every
    intermediate: the quantizers sit on every state of the contraction.
    """

    @staticmethod
    def forward(ctx, x, scale, lo, hi, gradient_factor, stochastic, offset=0.0):
        v = x / scale
        if offset:
            codes = torch.clamp(torch.floor(v), lo, hi)
        else:
            clipped = torch.clamp(v, lo, hi)
            codes = torch.floor(clipped + torch.rand_like(clipped)) if stochastic else torch.round(clipped)
        ctx.lo, ctx.hi, ctx.gradient_factor, ctx.stochastic, ctx.offset = lo, hi, gradient_factor, stochastic, offset
        if stochastic:
            # the drawn codes cannot be recomputed; they fit one byte (2..8 bits)
            code_type = torch.int8 if lo < 0 else torch.uint8
            ctx.save_for_backward(x, scale, codes.to(code_type))
        else:
            ctx.save_for_backward(x, scale)
        return (codes + offset) * scale

    @staticmethod
    def backward(ctx, grad_out):
        x, scale, *saved_codes = ctx.saved_tensors
        v = x / scale
        lo, hi = ctx.lo + ctx.offset, ctx.hi + ctx.offset  # the outermost levels, in steps
        inside = (v >= lo) & (v <= hi)
        if ctx.stochastic:
            levels = saved_codes[0].to(x.dtype)
        elif ctx.offset:
            levels = torch.clamp(torch.floor(v), ctx.lo, ctx.hi) + ctx.offset
        else:
            levels = torch.round(v)
        # d(out)/d(scale): level - v inside the range, the outermost level outside (LSQ)
        d_scale = torch.where(inside, levels - v, torch.where(v < lo, float(lo), float(hi)))
        grad_x = grad_out * inside.to(grad_out.dtype) if ctx.needs_input_grad[0] else None
        grad_scale = None
        if ctx.needs_input_grad[1]:
            grad_scale = _sum_to(grad_out * d_scale, scale.shape) * ctx.gradient_factor
        return grad_x, grad_scale, None, None, None, None, None


def _sum_to(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum ``t`` over the axes a tensor of ``shape`` was broadcast along."""
    if t.shape == shape:
        return t
    lead = t.dim() - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and t.shape[lead + i] != 1)
    return t.sum(dim=axes, keepdim=True).reshape(shape) if axes else t.reshape(shape)


def lsq_quantize(x, scale, lo: int, hi: int, *, gradient_factor: float = 1.0, offset: float = 0.0,
                 stochastic: bool = False) -> torch.Tensor:  # fmt: skip
    """``(clip(R(x / scale), lo, hi) + offset) * scale`` with straight-through gradients for ``x``
    inside the outermost levels and LSQ's gradient (times ``gradient_factor``) for ``scale``
    (see :class:`_LsqQuantize`). A ``scale`` without ``requires_grad`` gets no gradient."""
    return _LsqQuantize.apply(x, scale, lo, hi, gradient_factor, stochastic, offset)


class FakeQuant(nn.Module):
    """Per-tensor fake quantizer, 2..8 bits, zero point 0, learned positive scale.

    The scale is initialised from the first tensor seen (``2 * mean|x| / sqrt(hi)``, LSQ's
    rule) unless ``scale`` is given. ``stochastic=True`` rounds ``floor(v + u)``, ``u ~ U[0, 1)``
    (unbiased) while training; evaluation always rounds half to even.
    """

    def __init__(
        self,
        bits: int,
        *,
        signed: bool = True,
        narrow: bool = False,
        stochastic: bool = False,
        scale: float | None = None,
        name: str = "quant",
    ) -> None:
        super().__init__()
        if not 2 <= int(bits) <= 8:
            raise ValueError(f"quantizer {name!r}: bits must be 2..8, got {bits}")
        self.bits = int(bits)
        self.signed = signed
        self.narrow = narrow
        self.stochastic = stochastic
        self.name = name
        self.scale = nn.Parameter(torch.tensor(1.0 if scale is None else float(scale)))
        self.register_buffer("initialized", torch.tensor(scale is not None))

    def spec(self) -> QuantSpec:
        """(scale, bits, signed, narrow) for an exporter's QONNX ``Quant`` node."""
        return QuantSpec(float(self.scale.detach().abs()), self.bits, self.signed, self.narrow)

    @torch.no_grad()
    def init_scale_(self, x: torch.Tensor) -> None:
        """Set the scale from ``x`` by LSQ's rule (also used for data-dependent initialisation)."""
        spec = self.spec()
        mean_abs = float(x.detach().abs().mean())
        self.scale.fill_(max(2.0 * mean_abs / math.sqrt(spec.hi), 1e-8))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            self.init_scale_(x)
        spec = self.spec()
        gradient_factor = 1.0 / math.sqrt(x.numel() * spec.hi)
        # abs keeps the step positive whatever the optimiser does; clamp keeps it non-zero
        scale = self.scale.abs().clamp_min(1e-12).to(x.dtype)
        return lsq_quantize(
            x, scale, spec.lo, spec.hi, gradient_factor=gradient_factor, stochastic=self.stochastic and self.training
        )

    def extra_repr(self) -> str:
        kind = "signed" if self.signed else "unsigned"
        return f"bits={self.bits}, {kind}, narrow={self.narrow}, stochastic={self.stochastic}"
