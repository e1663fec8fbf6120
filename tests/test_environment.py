"""The environment is not a bug: unwritable, full or impossible output paths exit 2 with
the path and the system's reason, and an unwritable OUTDIR is refused before any stage runs."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import accelgen.pipeline
from accelgen.cli import main

MODEL = Path(__file__).parent / "models" / "qonnx_mlp_w2a2.onnx"


@pytest.fixture
def no_stage_may_run(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a stage ran although the output directory is unusable")

    monkeypatch.setattr(accelgen.pipeline, "compile_model", refuse)


def _build(out, *extra) -> list[str]:
    return ["build", str(MODEL), "--board", "ultra96", "-o", str(out), "--no-csim", "--synth", "off", *extra]


def _assert_exit_2(capsys, argv, *needles) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_outdir_under_a_regular_file(tmp_path, capsys, no_stage_may_run):
    (tmp_path / "file").write_text("not a directory")
    _assert_exit_2(capsys, _build(tmp_path / "file" / "out"), str(tmp_path / "file"), "Not a directory")
    _assert_exit_2(capsys, _build(tmp_path / "file" / "a" / "out"), str(tmp_path / "file"), "Not a directory")


def test_outdir_name_too_long(tmp_path, capsys, no_stage_may_run):
    _assert_exit_2(capsys, _build(tmp_path / ("o" * 300)), "File name too long", "o" * 50)


def test_unwritable_outdir_is_found_before_the_build(tmp_path, capsys, monkeypatch, no_stage_may_run):
    parent = tmp_path / "readonly"
    parent.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == parent else real_access(p, mode))
    _assert_exit_2(capsys, _build(parent / "out"), str(parent), "Permission denied")
    assert list(parent.iterdir()) == []


def test_read_only_file_system(tmp_path, capsys, monkeypatch, no_stage_may_run):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    _assert_exit_2(capsys, _build(tmp_path / "out"), "Read-only file system", str(tmp_path))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permissions")
def test_chmod_read_only_parent(tmp_path, capsys, no_stage_may_run):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        _assert_exit_2(capsys, _build(parent / "out"), str(parent), "Permission denied")
    finally:
        parent.chmod(0o755)


def test_full_disk_during_a_stage_exits_2_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    from accelgen.plan import FoldingPlan

    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(FoldingPlan, "save", full)
    out = tmp_path / "out"
    _assert_exit_2(capsys, _build(out), "No space left on device", "folding.json", f"-o {out}")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_labels_must_match_the_vectors(tmp_path, capsys, no_stage_may_run):
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((5, 64), dtype=np.float32))
    np.save(tmp_path / "y.npy", np.zeros(4, dtype=np.int64))
    argv = _build(tmp_path / "out", "--vectors", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"))
    _assert_exit_2(capsys, argv, "--labels", "5 sample(s)")
    _assert_exit_2(capsys, _build(tmp_path / "out", "--labels", str(tmp_path / "y.npy")), "--labels needs --vectors")
    assert not (tmp_path / "out").exists()
