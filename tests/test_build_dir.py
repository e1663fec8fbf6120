"""Build directories are checked, and every error path of `accelgen run OUTDIR` exits 2.

One small build (with C-simulation) is copied for each test; a test damages its copy the
way a disk, a transfer or a hand edit would, and the runtime must say so and stop.
"""

from __future__ import annotations

import json
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from accelgen.cli import main
from accelgen.runtime import Accelerator, DamagedBuildError, InputValidationError

MODEL = Path(__file__).parent / "models" / "qonnx_mlp_w2a2.onnx"
pytestmark = pytest.mark.csim


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("builddir")
    out = root / "out"
    assert main(["build", str(MODEL), "--board", "ultra96", "-o", str(out), "--synth", "off", "--json"]) == 0
    x = np.random.default_rng(0).uniform(0, 1, (7, 64)).astype(np.float32)
    np.save(root / "x.npy", x)
    return out, root / "x.npy"


@pytest.fixture
def build(pristine, tmp_path):
    out, x = pristine
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    return copy, x


def _run(capsys, argv) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    return code, err


def test_an_untouched_build_runs_on_both_backends(build, tmp_path, capsys):
    out, x = build
    for backend in ("golden", "csim"):
        code, err = _run(capsys, ["run", str(out), "-i", str(x), "-o", str(tmp_path / f"{backend}.npy"),
                                  "--backend", backend])  # fmt: skip
        assert code == 0, err
    assert np.array_equal(np.load(tmp_path / "golden.npy"), np.load(tmp_path / "csim.npy"))


def _rewrite_npz(path: Path, change) -> None:
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    np.savez(path, **arrays)


def _nan_weights(arrays) -> None:
    key = next(k for k, v in arrays.items() if v.dtype.kind == "f" or v.size > 1)
    arrays[key] = np.full(arrays[key].shape, np.nan)


TAMPER = {
    "program.json-bad-json": lambda d: (d / "driver" / "program.json").write_text("{ not json"),
    "program.json-missing-key": lambda d: _edit_json(d / "driver" / "program.json", lambda j: j.pop("ops")),
    "program.json-unknown-version": lambda d: _edit_json(d / "driver" / "program.json", lambda j: j.update(version=9)),
    "program.npz-truncated": lambda d: _truncate(d / "driver" / "program.npz"),
    "program.npz-nan": lambda d: _rewrite_npz(d / "driver" / "program.npz", _nan_weights),
    "program.npz-missing": lambda d: (d / "driver" / "program.npz").unlink(),
}


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", TAMPER, ids=list(TAMPER))
@pytest.mark.parametrize("backend", ["golden", "csim"])
def test_a_tampered_program_exits_2_naming_the_file(build, tmp_path, capsys, damage, backend):
    out, x = build
    TAMPER[damage](out)
    code, err = _run(capsys, ["run", str(out), "-i", str(x), "-o", str(tmp_path / "y.npy"), "--backend", backend])
    assert code == 2 and "build directory damaged" in err and "rebuild it" in err and "program" in err, err
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("without_manifest", [False, True], ids=["manifest", "no-manifest"])
def test_a_garbage_library_exits_2(build, tmp_path, capsys, without_manifest):
    out, x = build
    (out / "csim" / "libaccel.so").write_bytes(b"\x7fELF garbage")
    if without_manifest:  # the library is still refused by the loader's own check
        (out / "manifest.json").unlink()
    code, err = _run(capsys, ["run", str(out), "-i", str(x), "-o", str(tmp_path / "y.npy")])
    assert code == 2 and "build directory damaged" in err and "libaccel.so" in err, err


def test_without_manifest_bad_json_is_still_reported(build, tmp_path, capsys):
    out, x = build
    for manifest in out.rglob("manifest.json"):
        manifest.unlink()
    (out / "driver" / "program.json").write_text("[1, 2")
    code, err = _run(capsys, ["run", str(out), "-i", str(x), "-o", str(tmp_path / "y.npy"), "--backend", "golden"])
    assert code == 2 and "build directory damaged" in err, err


def test_a_copied_driver_directory_checks_itself(build):
    out, _ = build
    driver = out.parent / "board-copy"
    shutil.copytree(out / "driver", driver)
    Accelerator(driver, backend="golden").close()
    (driver / "program.npz").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(DamagedBuildError, match="program.npz"):
        Accelerator(driver, backend="golden")


# -- runtime edges ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["golden", "csim"])
def test_an_empty_batch_works(build, backend):
    out, _ = build
    with Accelerator(out, backend=backend) as accel:
        y = accel.run(np.zeros((0, 64), dtype=np.float32))
        assert y.shape[0] == 0 and y.shape[1:] == accel.run(np.zeros((1, 64), dtype=np.float32)).shape[1:]


def test_a_ragged_input_gets_a_clear_error(build):
    out, _ = build
    with Accelerator(out, backend="golden") as accel, pytest.raises(InputValidationError, match="rectangular"):
        accel.run([[0.0] * 64, [0.0] * 63])


def test_run_output_has_normal_permissions_and_needs_its_directory(build, tmp_path, capsys, monkeypatch):
    import os

    out, x = build
    old = os.umask(0o022)
    try:
        assert _run(capsys, ["run", str(out), "-i", str(x), "-o", str(tmp_path / "y.npy")])[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "y.npy").stat().st_mode) == 0o644
    code, err = _run(capsys, ["run", str(out), "-i", str(x), "-o", str(tmp_path / "no" / "such" / "y.npy")])
    assert code == 2 and str(tmp_path / "no" / "such") in err and "does not exist" in err
    assert not (tmp_path / "no").exists()
    assert _run(capsys, ["run", str(out), "-i", str(x), "-o", str(tmp_path)])[0] == 2  # a directory


# -- every error path of `accelgen run OUTDIR` -----------------------------------------------------


def test_run_outdir_bad_inputs_exit_2(build, tmp_path, capsys):
    out, x = build
    y = str(tmp_path / "y.npy")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 10), dtype=np.float32))
    np.save(tmp_path / "nan.npy", np.full((3, 64), np.nan, dtype=np.float32))
    (tmp_path / "text.npy").write_text("not an array")
    cases = {
        "no such file": ["-i", str(tmp_path / "missing.npy")],
        "shape": ["-i", str(tmp_path / "wrong.npy")],
        "finite": ["-i", str(tmp_path / "nan.npy")],
        "not a .npy": ["-i", str(tmp_path / "text.npy")],
        "no input 'nope'": ["-i", f"nope={x}"],
        "board": ["-i", str(x), "--backend", "pynq"],
    }
    for needle, args in cases.items():
        code, err = _run(capsys, ["run", str(out), *args, "-o", y])
        assert code == 2 and needle in err, (needle, err)
    assert not Path(y).exists()


def test_run_a_directory_that_is_not_a_build_exits_2(tmp_path, capsys, pristine):
    _, x = pristine
    (tmp_path / "empty").mkdir()
    for backend in ("golden", "csim"):
        code, err = _run(capsys, ["run", str(tmp_path / "empty"), "-i", str(x), "-o", str(tmp_path / "y.npy"),
                                  "--backend", backend])  # fmt: skip
        assert code == 2 and str(tmp_path / "empty") in err, err


def test_build_inspect_and_dse_refuse_a_build_directory_as_model(build, capsys):
    out, _ = build
    for argv in (["build", str(out), "--board", "ultra96", "-o", str(out.parent / "o2")], ["inspect", str(out)],
                 ["dse", str(out), "--board", "ultra96"]):  # fmt: skip
        code, err = _run(capsys, argv)
        assert code == 2 and str(out) in err, (argv, err)


def test_manifest_lists_the_files_the_runtime_reads(build):
    out, _ = build
    files = json.loads((out / "manifest.json").read_text())["files"]
    for rel in ("driver/program.json", "driver/program.npz", "hls/design.json", "csim/libaccel.so", "report.json"):
        assert rel in files
    assert not [f for f in files if f.startswith("logs/")]
    assert zipfile.is_zipfile(out / "driver" / "program.npz")
