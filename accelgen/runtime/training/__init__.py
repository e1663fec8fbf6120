"""On-device training of tensorized networks: the fixed-point spec, its LFSR, the Trainer.

numpy only (it runs on the board). :mod:`.spec` is the definition of the arithmetic;
:mod:`.trainer` drives it (golden) or the generated hardware (csim, pynq).
"""

from .spec import Fracs, TrainConfig, TrainingError, TrainState, Widths, calibrate
from .trainer import BACKENDS, Trainer

__all__ = ["BACKENDS", "Fracs", "TrainConfig", "TrainState", "Trainer", "TrainingError", "Widths", "calibrate"]
