"""Tensor-train layers for training in torch (the ``accelgen[train]`` extra).

Import this package only where it is used: the rest of accelgen never imports torch.
"""

from accelgen.tensor.factor import FactorizationError, check_modes, factorize
from accelgen.tensor.order import choose_order, contraction_macs, legal_orders
from accelgen.tensor.quant import FakeQuant, QuantSpec
from accelgen.tensor.rank import train_rank_adaptive, transfer_optimizer_, warmup_factor
from accelgen.tensor.tt import TTLinear

__all__ = [
    "FactorizationError",
    "FakeQuant",
    "QuantSpec",
    "TTLinear",
    "check_modes",
    "choose_order",
    "contraction_macs",
    "factorize",
    "legal_orders",
    "train_rank_adaptive",
    "transfer_optimizer_",
    "warmup_factor",
]
