"""examples/tt_train_on_device.py --quick --json: the issue's contract on a real (short) run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.csim

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tt_train_on_device.py"
CONTRACT = ("steps", "csim_bit_exact", "acc_float_tt", "acc_device", "train_bytes_device", "train_bytes_dense",
            "cycles_per_step_est")  # fmt: skip


def test_quick_run_prints_the_contract(tmp_path, capsys, torch_one_thread):
    spec = importlib.util.spec_from_file_location("tt_train_on_device", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--quick", "--json", "-o", str(tmp_path)]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(CONTRACT) <= set(figures)
    assert figures["steps"] == 4 and figures["csim_bit_exact"] is True
    assert figures["acc_device"] == figures["acc_golden"]  # the same codes, evaluated twice
    assert 0.0 <= figures["acc_device"] <= 1.0 and 0.0 <= figures["acc_float_tt"] <= 1.0
    assert figures["train_bytes_dense"] >= 100 * figures["train_bytes_device"]
    # dense fp32 training, counted independently: weights + gradients of 784x512 + 512 + 512x10 + 10
    params = 784 * 512 + 512 + 512 * 10 + 10
    assert figures["train_bytes_dense"] >= 8 * params
    assert figures["fits_board"] is True and figures["cycles_per_step_est"] > 0
    report = json.loads((Path(figures["build"]) / "report.json").read_text())
    assert report["train_bytes_device"] == figures["train_bytes_device"]
