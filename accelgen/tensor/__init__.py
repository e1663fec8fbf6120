"""Tensor-train layers for training in torch (the ``accelgen[train]`` extra).

Import this package only where it is used: the rest of accelgen never imports torch.

A rank-adaptive, quantization-aware layer and its training loop::

    layer = TTLinear(784, 512, rank=16, core_bits=4, mid_bits=8, act_bits=8, name="fc1")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    log = train_rank_adaptive(model, batches, loss_fn, optimizer, epochs=20,
                              dataset_size=len(train_set), warmup_epochs=5)
    log.ranks[-1]["fc1"], layer.order, layer.macs(), layer.quant_specs()

A hand-written loop adds ``warmup_factor(epoch, warmup) / dataset_size * layer.prior_loss()``
to the loss, calls ``layer.update_ranks_()`` after each step and, now and then,
``transfer_optimizer_(optimizer, layer.prune_(threshold))``.

A network of TT layers, ``QuantLinear`` layers (a dense layer with LSQ-quantized weight and
activations) and ReLUs exports to QONNX for the compiler::

    model = nn.Sequential(layer, nn.ReLU(), QuantLinear(512, 10, act_bits=8, out_bits=8, name="fc2"))
    export_qonnx(model.eval(), "tt.onnx", (None, 784))
"""

from accelgen.tensor.export import ExportError, export_qonnx
from accelgen.tensor.factor import FactorizationError, check_modes, factorize
from accelgen.tensor.order import choose_order, contraction_macs, legal_orders
from accelgen.tensor.qlinear import QuantLinear
from accelgen.tensor.quant import FakeQuant, QuantSpec
from accelgen.tensor.rank import train_rank_adaptive, transfer_optimizer_, warmup_factor
from accelgen.tensor.tt import TTLinear

__all__ = [
    "ExportError",
    "FactorizationError",
    "FakeQuant",
    "QuantLinear",
    "QuantSpec",
    "TTLinear",
    "check_modes",
    "choose_order",
    "contraction_macs",
    "export_qonnx",
    "factorize",
    "legal_orders",
    "train_rank_adaptive",
    "transfer_optimizer_",
    "warmup_factor",
]
