"""examples/tensorized_digits.py in a subprocess: its --json contract, and a user mistake exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tensorized_digits.py"

CONTRACT = {
    "dense_acc": float,
    "tt_acc": float,
    "dense_params": int,
    "tt_params": int,
    "dense_weight_bits": int,
    "tt_weight_bits": int,
    "ranks_initial": list,
    "ranks_final": list,
    "train_bytes_dense": int,
    "train_bytes_tt": int,
    "onnx": str,
    "build": str,
    "csim_passed": bool,
}


@pytest.mark.csim
@pytest.mark.slow
def test_quick_run_prints_one_json_object_with_the_contract(tmp_path):
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "-o", str(tmp_path / "work"), "--quick", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)  # the whole of stdout is one JSON object
    for key, kind in CONTRACT.items():
        assert key in figures, f"missing {key}"
        assert isinstance(figures[key], kind), f"{key}: {figures[key]!r} is not {kind.__name__}"
    assert figures["csim_passed"] is True
    assert 0.0 <= figures["tt_acc"] <= 1.0 and 0.0 <= figures["dense_acc"] <= 1.0
    assert figures["tt_acc"] > 0.5, "two epochs on digits should already beat chance by far"
    assert figures["dense_params"] == 784 * 512 + 512
    assert figures["dense_weight_bits"] == 784 * 512 * 8
    assert 0 < figures["tt_params"] < figures["dense_params"]
    assert 0 < figures["tt_weight_bits"] < figures["dense_weight_bits"]
    assert 0 < figures["train_bytes_tt"] < figures["train_bytes_dense"]
    initial, final = figures["ranks_initial"], figures["ranks_final"]
    assert len(initial) == len(final) == 5 and initial[0] == initial[-1] == final[0] == final[-1] == 1
    assert all(0 < f <= i for f, i in zip(final, initial))
    assert Path(figures["onnx"]).is_file()
    assert (Path(figures["build"]) / "report.json").is_file()
    assert Path(figures["training_plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_epochs_is_a_user_error(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLE), "-o", str(tmp_path), "--epochs", "0", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "--epochs" in done.stderr and done.stdout == ""


def test_unknown_board_is_a_user_error(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLE), "-o", str(tmp_path), "--board", "nope", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "nope" in done.stderr and done.stdout == ""
