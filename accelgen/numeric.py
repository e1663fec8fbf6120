"""Rounding shared by the front end, the passes and the golden model.

The arithmetic lives in the standalone runtime (:mod:`accelgen.runtime.numeric`) so that
the board and the compiler round the same way; this module names it for the compiler.
"""

from accelgen.runtime.numeric import ROUNDING_MODES, round_mode, to_codes

__all__ = ["ROUNDING_MODES", "round_mode", "to_codes"]
