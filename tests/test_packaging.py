"""A real (non-editable) wheel carries templates/, hls/ and boards/ and runs on its own."""

from __future__ import annotations

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
