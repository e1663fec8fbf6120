"""``QuantLinear``: an ordinary fully connected layer with LSQ fake-quantized weight and activations.

The dense counterpart of :class:`~accelgen.tensor.tt.TTLinear` for networks that mix the two
(a TT hidden layer and a small dense head) and for the dense baseline a TT layer is compared
with. Quantizers are :class:`~accelgen.tensor.quant.FakeQuant`: the weight per tensor, signed
and narrow (symmetric codes), the input optionally (unsigned after a ReLU), the output
optionally (e.g. the logits, so an exported graph ends in integer codes).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from accelgen.tensor.quant import FakeQuant, QuantSpec

__all__ = ["QuantLinear"]


class QuantLinear(nn.Module):
    """``y = q_out(q_in(x) @ q_w(W).T + bias)`` with ``W`` of shape ``(out_features, in_features)``.

    ``weight_bits`` is 2..8; ``act_bits`` / ``out_bits`` (2..8 or None) quantize the input /
    output, signed unless ``act_signed`` / ``out_signed`` is False.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        weight_bits: int = 8,
        act_bits: int | None = None,
        act_signed: bool = False,
        out_bits: int | None = None,
        out_signed: bool = True,
        name: str = "linear",
    ) -> None:
        super().__init__()
        self.name = name
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound)) if bias else None
        self.weight_quant = FakeQuant(weight_bits, signed=True, narrow=True, name=f"{name}.weight")
        self.weight_quant.init_scale_(self.weight)
        self.act_quant = None if act_bits is None else FakeQuant(act_bits, signed=act_signed, name=f"{name}.act")
        self.out_quant = None if out_bits is None else FakeQuant(out_bits, signed=out_signed, name=f"{name}.out")

    def num_parameters(self, include_bias: bool = True) -> int:
        """Weights (and biases), not counting quantizer scales."""
        return self.weight.numel() + (self.bias.numel() if include_bias and self.bias is not None else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"layer {self.name!r}: expected input (batch, {self.in_features}), got {tuple(x.shape)}")
        if self.act_quant is not None:
            x = self.act_quant(x)
        y = nn.functional.linear(x, self.weight_quant(self.weight), self.bias)
        return y if self.out_quant is None else self.out_quant(y)

    def quant_specs(self) -> dict[str, QuantSpec | None]:
        """The quantizers' (scale, bits, signed, narrow): ``act``, ``weight`` and ``out``."""
        return {
            "act": None if self.act_quant is None else self.act_quant.spec(),
            "weight": self.weight_quant.spec(),
            "out": None if self.out_quant is None else self.out_quant.spec(),
        }

    def extra_repr(self) -> str:
        return f"name={self.name!r}, in={self.in_features}, out={self.out_features}, bias={self.bias is not None}"
