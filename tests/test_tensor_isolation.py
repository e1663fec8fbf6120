"""accelgen's compiler imports without torch; torch is only for accelgen.tensor (the train extra)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli is a dependency there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_compiler_does_not_import_torch():
    code = (
        "import sys, accelgen, accelgen.cli, accelgen.pipeline, accelgen.frontend, accelgen.golden\n"
        "assert 'torch' not in sys.modules, 'torch imported by the compiler'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_train_extra_pins_torch_and_test_extra_has_the_oracle():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "torch==2.13.0" in extras["train"] and [d for d in extras["train"] if d.startswith("torch")] == ["torch==2.13.0"]
    assert any(dep.startswith("brevitas") for dep in extras["train"])  # accelgen.quant
    assert "accelgen[train]" in extras["test"]
    assert any(dep.startswith("tensorly") for dep in extras["test"])
