"""A real (non-editable) wheel carries templates/, hls/ and boards/ and runs on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_and_finds_its_data(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, cwd=tmp_path)  # fmt: skip
    (wheel,) = wheels.glob("accelgen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for data in ("templates/README.md", "hls/README.md", "boards/ultra96v2.toml"):
        assert f"accelgen/_data/{data}" in names, f"{data} missing from the wheel"
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, cwd=tmp_path)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = (
        "import accelgen, accelgen.resources as r; "
        "print(accelgen.__file__); print(r.data_dir('boards')); print(r.data_dir('templates'))"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env=env).stdout.split()  # fmt: skip
    assert all(line.startswith(str(target)) for line in out), out
    model = ROOT / "tests" / "models" / "qdq_mlp_pertensor.onnx"
    proc = subprocess.run([str(target / "bin" / "accelgen"), "inspect", str(model), "--json"],
                          capture_output=True, text=True, cwd=tmp_path, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert '"dialect": "qdq"' in proc.stdout


@pytest.mark.slow
@pytest.mark.slowest  # a fresh virtualenv and a wheel install (make test-all)
def test_wheel_in_a_fresh_virtualenv_runs_the_build(tmp_path):
    """pip install of the wheel (and its dependencies from the index) into a new venv, then
    the README's main job from outside the checkout."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, cwd=tmp_path)  # fmt: skip
    (wheel,) = wheels.glob("accelgen-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=900)  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = tmp_path / "digits_ultra96"
    proc = subprocess.run([str(venv / "bin" / "accelgen"), "build", str(ROOT / "examples" / "digits_cnn_w4a8.onnx"),
                           "--board", "ultra96", "-o", str(out), "--json"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["csim"]["passed"] is True and report["csim"]["mismatches"] == 0
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import accelgen; print(accelgen.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, check=True)  # fmt: skip
    assert probe.stdout.startswith(str(venv))
    assert (out / "driver" / "notebook.ipynb").is_file()
