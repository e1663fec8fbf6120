"""Compiling a generated HLS project with g++, cached by content hash: the generated C++
(``OUTDIR/hls``, vectors excluded), the kernel library, the ap_types headers, the compiler
and its flags. The build is a shared library (the top function plus the emulator entry
points) and the C testbench linked against it, so the testbench and the emulator run the
very same object code. The kernel library and ap_types are precompiled once per content
key (:func:`precompiled_kernels`)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from accelgen.csim import cache
from accelgen.csim.toolchain import (
    BUILD_TIMEOUT_S,
    LIB_FLAGS,
    LIB_NAME,
    TB_FLAGS,
    TB_NAME,
    ap_types_dir,
    cache_root,
    compiler,
    tool_fingerprint,
)
from accelgen.errors import InputError, InternalError
from accelgen.workspace import write_atomic


@dataclass
class Build:
    """A compiled design: the shared library, the testbench, how long it took."""

    directory: Path
    library: Path
    testbench: Path
    seconds: float
    cached: bool
    key: str


def _source_files(hls: Path) -> list[Path]:
    skip = {"vectors"}
    return sorted(
        p for p in hls.rglob("*")
        if p.is_file() and p.suffix in (".cpp", ".h") and not skip.intersection(p.relative_to(hls).parts)
    )  # fmt: skip


def build_key(hls: Path) -> str:
    cxx, ap = compiler(), str(ap_types_dir())
    h = hashlib.sha256()
    h.update(json.dumps([LIB_FLAGS, TB_FLAGS, tool_fingerprint(cxx, ap)]).encode())
    for f in _source_files(hls):
        h.update(str(f.relative_to(hls)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def build(outdir: str | Path, *, cache_dir: str | Path | None = None, log: Path | None = None) -> Build:
    """Compile OUTDIR/hls (or reuse the cached build of identical sources)."""
    hls = Path(outdir) / "hls"
    if not (hls / "top.cpp").is_file():
        raise InputError(f"{outdir}: no hls/top.cpp; generate the design first (accelgen.codegen.generate)")
    return _cached_build([hls], cache_dir, log, testbench=True)


def build_group(
    outdirs: list[str | Path], *, cache_dir: str | Path | None = None, opt: str = "-O2", ap_model: bool = False
) -> Path:
    """One shared library holding several generated designs (distinct top names), built by
    one compiler run and cached by content hash: the way to test many small designs
    without one g++ run each. Returns the library; bind it with ``Emulator(outdir, library=...)``.

    ``ap_model``: simulate every operation with the ap_types model (the code synthesis
    compiles) instead of the native-integer fast paths of C simulation.
    """
    hls_dirs = [Path(o) / "hls" for o in outdirs]
    defines = ("ACCELGEN_CSIM_AP_MODEL",) if ap_model else ()
    return _cached_build(hls_dirs, cache_dir, None, testbench=False, opt=opt, defines=defines).library


def _cached_build(
    hls_dirs: list[Path], cache_dir, log, *, testbench: bool, opt: str = "-O2", defines: tuple[str, ...] = ()
) -> Build:
    h = hashlib.sha256(json.dumps([opt, testbench, list(defines)]).encode())
    for d in hls_dirs:
        h.update(build_key(d).encode())
    key = h.hexdigest()
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    dest = root / key[:24]
    names = [LIB_NAME] + ([TB_NAME] if testbench else [])
    if cache.entry_is_valid(dest, names):
        return Build(dest, dest / LIB_NAME, dest / TB_NAME, 0.0, True, key)
    root.mkdir(parents=True, exist_ok=True)
    cache.clean_leftovers(root)
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f"{cache.WORK_PREFIX}{os.getpid()}-", dir=root))
    try:
        compile_design(hls_dirs, work, log=log, testbench=testbench, opt=opt, defines=defines, pch_root=root / "pch")
        cache.write_entry_manifest(work, names)
        cache.publish_entry(work, dest, names)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Build(dest, dest / LIB_NAME, dest / TB_NAME, time.perf_counter() - t0, False, key)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def compile_design(
    hls_dirs: list[Path],
    work: Path,
    *,
    log: Path | None = None,
    testbench: bool = True,
    opt: str = "-O2",
    defines: tuple[str, ...] = (),
    pch_root: Path | None = None,
) -> Path:
    """One g++ run for the library of one or more designs (one translation unit), one for
    the testbench of the first. Returns the library path. With ``pch_root`` (a cache
    directory) the kernel library and ap_types come precompiled (see :func:`precompiled_kernels`)."""
    cxx, ap = compiler(), ap_types_dir()
    unity = work / "unity.cpp"
    unity.write_text("".join(f'#include "{d.resolve() / name}"\n' for d in hls_dirs for name in ("top.cpp", "emu.cpp")))
    lib = work / LIB_NAME
    lib_dir = hls_dirs[0].resolve() / "lib"
    flags = [opt if f.startswith("-O") else f for f in LIB_FLAGS] + [f"-D{d}" for d in defines]
    # ap_int's width limit must be set before the first ap_int.h (the precompiled header, the first design of the
    # unity file): the widest any design's top.h asks for, on the command line
    wide = [int(m) for d in hls_dirs for m in re.findall(r"^#define AP_INT_MAX_W (\d+)$", _read(d / "top.h"), re.M)]
    if wide:
        flags.append(f"-DAP_INT_MAX_W={max(wide)}")
    includes = [f"-I{lib_dir}", f"-I{ap}"]
    pch = precompiled_kernels(cxx, flags, includes, lib_dir, pch_root) if pch_root is not None else []
    try:
        _run([cxx, *flags, *pch, *includes, str(unity), "-o", str(lib)], log)
    except InternalError:
        if not pch:
            raise
        shutil.rmtree(Path(pch[-1]).parent, ignore_errors=True)  # a bad precompiled header: drop it, compile plain
        _run([cxx, *flags, *includes, str(unity), "-o", str(lib)], log)
    if testbench:
        tb_cmd = [cxx, *TB_FLAGS, f"-I{lib_dir}", str(hls_dirs[0].resolve() / "tb.cpp"), f"-L{work}", "-laccel",
                  "-Wl,-rpath,$ORIGIN", "-o", str(work / TB_NAME)]  # fmt: skip
        _run(tb_cmd, log)
    return lib


#: what the precompiled header holds: the header-only kernel library and ap_types, plus the
#: standard headers the generated files use (a design's own files are never in it)
PCH_HEADER = """// accelgen: the kernel library and ap_types, precompiled once per content (accelgen.csim.builder)
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <thread>
#include <vector>
#include <accelgen/accelgen.h>
#include <accelgen/host.h>
"""
PCH_NAME = "accelgen_pch.h"


def precompiled_kernels(cxx: str, flags: list[str], includes: list[str], lib_dir: Path, root: Path) -> list[str]:
    """The flags that make g++ read the kernel library and ap_types precompiled.

    The header is built once per content key (compiler, flags, ap_types, every kernel
    header) into ``root`` and reused by every design: parsing those headers is about a
    third of a design's compile time. The generated code is the same object code with or
    without it (g++ checks the flags and falls back to the text headers otherwise). Returns
    [] when the header cannot be built (the design then compiles without it)."""
    h = hashlib.sha256(json.dumps([PCH_HEADER, [f for f in flags if f != "-shared"]]).encode())
    h.update(tool_fingerprint(cxx, includes[-1][2:]).encode())
    for f in sorted(lib_dir.rglob("*.h")):
        h.update(str(f.relative_to(lib_dir)).encode() + b"\0" + f.read_bytes() + b"\0")
    dest = root / h.hexdigest()[:24]
    names = [PCH_NAME, PCH_NAME + ".gch"]
    use = ["-Winvalid-pch", "-include", str(dest / PCH_NAME)]
    if cache.sizes_match(dest, names):
        return use
    root.mkdir(parents=True, exist_ok=True)
    cache.clean_leftovers(root)
    work = Path(tempfile.mkdtemp(prefix=f"{cache.WORK_PREFIX}{os.getpid()}-", dir=root))
    try:
        (work / PCH_NAME).write_text(PCH_HEADER)
        cmd = [cxx, *[f for f in flags if f != "-shared"], *includes, "-x", "c++-header", str(work / PCH_NAME),
               "-o", str(work / names[1])]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
        if proc.returncode != 0:
            return []
        sizes = {name: (work / name).stat().st_size for name in names}
        write_atomic(work / cache.ENTRY_MANIFEST, json.dumps(sizes, sort_keys=True))
        cache.publish_entry(work, dest, names, valid=cache.sizes_match)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return use if cache.sizes_match(dest, names) else []


def _run(cmd: list[str], log: Path | None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    if log is not None:
        with open(log, "a") as f:
            f.write("$ " + " ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise InternalError("g++ failed on the generated HLS code:\n" + "\n".join(lines[:40]))
