"""The accelgen runtime: runs a built design on the host or the board.

Standalone by design: it imports only numpy (and pynq on the board), runs on Python >= 3.8,
and never imports the compiler, so a build's driver directory carries a copy of it.
"""

from .accelerator import Accelerator
from .interpreter import InputValidationError, OpFailure, run
from .manifest import DamagedBuildError
from .program import Program, load_program, save_program

__all__ = [
    "Accelerator",
    "DamagedBuildError",
    "InputValidationError",
    "OpFailure",
    "Program",
    "load_program",
    "run",
    "save_program",
]
