"""The C-simulation cache heals: damaged entries are rebuilt, killed builds' leftovers
cleaned, concurrent builds of the same design both succeed."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from accelgen import csim
from accelgen.codegen import generate
from accelgen.pipeline import compile_model

MODEL = Path(__file__).parent / "models" / "qonnx_mlp_w2a2.onnx"


@pytest.fixture
def fake_compiler(monkeypatch):
    """compile_design writes a recognisable library and testbench; counts its runs."""
    runs = []

    def fake_compile(hls_dirs, work, *, log=None, testbench=True, opt="-O2", defines=(), pch_root=None):
        runs.append(work)
        (work / csim.LIB_NAME).write_bytes(b"\x7fELF library " * 100)
        if testbench:
            (work / csim.TB_NAME).write_bytes(b"\x7fELF testbench " * 100)
        return work / csim.LIB_NAME

    monkeypatch.setattr(csim.builder, "compile_design", fake_compile)
    monkeypatch.setattr(csim.builder, "build_key", lambda hls: "k" * 64)
    return runs


def _build(tmp_path) -> csim.Build:
    (tmp_path / "design" / "hls").mkdir(parents=True, exist_ok=True)
    (tmp_path / "design" / "hls" / "top.cpp").write_text("// top")
    return csim.build(tmp_path / "design", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b.library.write_bytes(b.library.read_bytes()[:100]),  # truncated
        lambda b: b.library.write_bytes(b"garbage"),
        lambda b: b.testbench.unlink(),
        lambda b: (b.directory / csim.ENTRY_MANIFEST).unlink(),  # a build killed before its manifest
        lambda b: (b.directory / csim.ENTRY_MANIFEST).write_text("{not json"),
    ],
    ids=["truncated-library", "garbage-library", "missing-testbench", "no-manifest", "bad-manifest"],
)
def test_a_damaged_entry_is_rebuilt(tmp_path, fake_compiler, damage):
    first = _build(tmp_path)
    assert not first.cached and _build(tmp_path).cached and len(fake_compiler) == 1
    damage(first)
    healed = _build(tmp_path)
    assert not healed.cached and len(fake_compiler) == 2
    assert healed.library == first.library and healed.library.read_bytes().startswith(b"\x7fELF library")
    assert _build(tmp_path).cached


def test_leftovers_of_killed_builds_are_cleaned(tmp_path, fake_compiler):
    cache = tmp_path / "cache"
    dead = cache / ".build-999999999-abc"  # no such process
    legacy = cache / ".build-xyz"  # an older accelgen's leftover
    live = cache / f".build-{os.getpid()}-def"  # a build still running
    for d in (dead, legacy, live):
        d.mkdir(parents=True)
        (d / csim.LIB_NAME).write_bytes(b"half")
    _build(tmp_path)
    assert not dead.exists() and not legacy.exists() and live.exists()


def test_a_concurrent_build_of_the_same_design_is_kept(tmp_path, fake_compiler):
    """The other build published first: ours is discarded, not an error."""
    first = _build(tmp_path)
    work = tmp_path / "cache" / f".build-{os.getpid()}-mine"
    work.mkdir()
    (work / csim.LIB_NAME).write_bytes(b"other")
    csim.cache.publish_entry(work, first.directory, [csim.LIB_NAME, csim.TB_NAME])
    assert first.library.read_bytes().startswith(b"\x7fELF library")


def test_concurrent_builds_both_succeed(tmp_path, fake_compiler):
    barrier = threading.Barrier(4)
    results, errors = [], []
    real = csim.cache.publish_entry

    def publish_together(*args):
        barrier.wait(timeout=10)  # every thread has compiled before any publishes
        real(*args)

    csim.cache.publish_entry = publish_together
    try:
        threads = [threading.Thread(target=lambda: _try(tmp_path, results, errors)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        csim.cache.publish_entry = real
    assert errors == [] and len(results) == 4
    assert len({r.library for r in results}) == 1 and _build(tmp_path).cached
    assert not list((tmp_path / "cache").glob(".build-*"))


def _try(tmp_path, results, errors):
    try:
        results.append(_build(tmp_path))
    except Exception as exc:  # collected for the assertion
        errors.append(exc)


@pytest.mark.csim
def test_truncated_library_heals_and_csim_passes(tmp_path):
    out = generate(compile_model(MODEL), None, tmp_path / "design")
    cache = tmp_path / "cache"
    first = csim.build(out, cache_dir=cache)
    first.library.write_bytes(first.library.read_bytes()[:4096])
    result = csim.run_csim(out, cache_dir=cache)
    assert result["passed"] and result["cached"] is False and result["mismatches"] == 0


@pytest.mark.csim
def test_precompiled_kernel_library_gives_the_same_library_and_heals(tmp_path):
    """The kernel library precompiled (cache/pch) compiles the very same object code as the
    text headers; a damaged precompiled header is rebuilt or bypassed, never trusted."""
    out = generate(compile_model(MODEL), None, tmp_path / "design")
    hls = [out / "hls"]
    plain, with_pch = tmp_path / "plain", tmp_path / "pch_build"
    plain.mkdir()
    with_pch.mkdir()
    csim.compile_design(hls, plain, testbench=False)
    csim.compile_design(hls, with_pch, testbench=False, pch_root=tmp_path / "pch")
    (entry,) = (tmp_path / "pch").iterdir()
    assert (entry / (csim.PCH_NAME + ".gch")).stat().st_size > 0
    assert (with_pch / csim.LIB_NAME).read_bytes() == (plain / csim.LIB_NAME).read_bytes()

    gch = entry / (csim.PCH_NAME + ".gch")
    gch.write_bytes(gch.read_bytes()[:4096])  # truncated: the entry is rebuilt
    again = tmp_path / "again"
    again.mkdir()
    csim.compile_design(hls, again, testbench=False, pch_root=tmp_path / "pch")
    assert gch.stat().st_size > 4096
    assert (again / csim.LIB_NAME).read_bytes() == (plain / csim.LIB_NAME).read_bytes()

    gch.write_bytes(b"\0" * gch.stat().st_size)  # garbage of the right size: g++ refuses it, plain compile
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    csim.compile_design(hls, garbage, testbench=False, pch_root=tmp_path / "pch")
    assert (garbage / csim.LIB_NAME).read_bytes() == (plain / csim.LIB_NAME).read_bytes()
