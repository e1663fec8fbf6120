"""The README's tour runs as written, in a fresh directory that holds what `make demo` leaves.

The block between ``<!-- tour: begin -->`` and ``<!-- tour: end -->`` runs in bash (``-e``:
every line must succeed) in a temporary directory holding ``examples/`` and a ``.venv`` that
is this suite's own environment (what `make demo` would have made).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.data import digits_split
from tests.reference import run_reference

ROOT = Path(__file__).resolve().parent.parent
TOUR = re.compile(r"<!-- tour: begin -->\n```sh\n(.*?)```\n<!-- tour: end -->", re.S)
MODEL = ROOT / "examples" / "digits_cnn_w4a8.onnx"


def tour_block() -> str:
    blocks = TOUR.findall((ROOT / "README.md").read_text())
    assert len(blocks) == 1, "README.md needs exactly one marked tour block"
    return blocks[0]


def test_the_tour_starts_by_putting_the_venv_on_path():
    lines = [line for line in tour_block().splitlines() if line.strip()]
    assert lines[0].split("#")[0].strip() == ". .venv/bin/activate"
    assert any(line.startswith("accelgen run ") and "--input x.npy" in line for line in lines)
    # the input file is made by a command of the tour before it is used
    made = next(i for i, line in enumerate(lines) if "x.npy" in line and "accelgen" not in line)
    used = next(i for i, line in enumerate(lines) if "--input x.npy" in line)
    assert made < used


@pytest.mark.csim
@pytest.mark.slow
def test_readme_tour_runs_verbatim(tmp_path):
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tour activates .venv: run the suite from a virtual environment (make test does)")
    (tmp_path / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # nothing of ours on PATH until the tour activates .venv
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", tour_block()], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, f"the tour failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    # the inputs are the digits test split; the outputs are the model's, as its reference executor computes them
    _, _, x_ref, y_ref = digits_split()
    x, labels = np.load(tmp_path / "x.npy"), np.load(tmp_path / "labels.npy")
    assert x.shape == (450, 1, 8, 8) and x.dtype == np.float32
    assert np.array_equal(x.reshape(len(x), -1), x_ref) and np.array_equal(labels, y_ref)
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (450, 10)
    assert np.array_equal(y.argmax(1), run_reference(MODEL, x).argmax(1))
    accuracy = float(re.search(r"^accuracy (\S+)$", proc.stdout, re.M).group(1))
    assert accuracy == pytest.approx((y.argmax(1) == y_ref).mean()) and accuracy > 0.9
    assert "# digits\\_cnn\\_w4a8 on Ultra96\\-V2" in proc.stdout  # the build's README.md, printed last
