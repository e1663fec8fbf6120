"""Ultra-low-bit quantization-aware training on Brevitas: µL2Q and LSQ (the ``accelgen[train]`` extra).

Import this package only where it is used: the rest of accelgen never imports torch.

    from accelgen.quant import quantize
    result = quantize(float_model, (x_train, y_train), (x_val, y_val), w_bits=2, a_bits=2,
                      method="ul2q", epochs=30, output="model_w2a2.onnx")
    result.val_accuracy          # the QONNX file builds with `accelgen build`
"""

import warnings

# Brevitas warns at import about an optional package of its own (fast_hadamard_transform)
warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")

from accelgen.quant.convert import METHODS, activation_nodes, compute_layers, to_brevitas  # noqa: E402
from accelgen.quant.gaussian import gaussian_mse, optimal_step, ul2q_lambda  # noqa: E402
from accelgen.quant.quantizers import (  # noqa: E402
    LsqActQuant,
    LsqWeightQuant,
    UL2QWeightQuant,
    freeze_weights_,
)
from accelgen.quant.train import QuantResult, export_qonnx, quantize  # noqa: E402

__all__ = [
    "METHODS",
    "LsqActQuant",
    "LsqWeightQuant",
    "QuantResult",
    "UL2QWeightQuant",
    "activation_nodes",
    "compute_layers",
    "export_qonnx",
    "freeze_weights_",
    "gaussian_mse",
    "optimal_step",
    "quantize",
    "to_brevitas",
    "ul2q_lambda",
]
