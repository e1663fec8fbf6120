"""C simulation of a generated HLS project with g++, and the emulator built from it.

One build per design, cached by content hash: the generated C++ (``OUTDIR/hls``, vectors
excluded), the kernel library, the ap_types headers, the compiler and its flags. The
build is a shared library (the top function plus the emulator entry points) and the C
testbench linked against it, so the testbench (:func:`run_csim`) and the emulator
(:class:`Emulator`, ctypes) run the very same object code.

ap_int.h / hls_stream.h come from ``$XILINX_HLS/include`` when Vitis HLS is installed,
else from the ap_types directory of the installed ``hls4ml`` distribution (found from
its file list, without importing it). They are never copied.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accelgen.errors import InputError, InternalError
from accelgen.workspace import process_alive

CXX_STD = "-std=c++14"
#: flags of the design library (the emulator's speed) and of the light testbench driver
LIB_FLAGS = (CXX_STD, "-O2", "-fPIC", "-shared", "-pthread", "-Wno-unknown-pragmas")
TB_FLAGS = (CXX_STD, "-O1")
BUILD_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 3600
LIB_NAME = "libaccel.so"
TB_NAME = "tb"
_PREFIX = "accelgen-csim:"
_FIRST = re.compile(
    r"FIRST MISMATCH (?P<kind>layer|output) (?P<ident>\S+) sample (?P<sample>\d+) index (?P<index>\d+)"
    r"(?: \((?P<position>[^)]*)\))? expected (?P<expected>-?\d+) got (?P<got>-?\d+)"
)
_TENSOR = re.compile(r"(?P<kind>layer|output) (?P<i>\d+) (?P<ident>\S+) elements (?P<n>\d+) mismatches (?P<m>\d+)")


# -- tools ----------------------------------------------------------------------------------------


def ap_types_dir() -> Path:
    """Directory holding ap_int.h and hls_stream.h."""
    xilinx = os.environ.get("XILINX_HLS")
    if xilinx and (Path(xilinx) / "include" / "ap_int.h").is_file():
        return Path(xilinx) / "include"
    spec = importlib.util.find_spec("hls4ml")  # locates the package without importing it
    for loc in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(loc) / "templates" / "vivado" / "ap_types"
        if (candidate / "ap_int.h").is_file():
            return candidate
    try:
        dist = importlib.metadata.distribution("hls4ml")
        for f in dist.files or []:
            if str(f).replace("\\", "/").endswith("ap_types/ap_int.h"):
                return Path(dist.locate_file(f)).parent
    except importlib.metadata.PackageNotFoundError:
        pass
    raise InputError(
        "C simulation needs ap_int.h and hls_stream.h: set XILINX_HLS to a Vitis HLS installation, or "
        "install the hls4ml Python package (pip install hls4ml==1.3.0), whose ap_types accelgen uses"
    )


def compiler() -> str:
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        raise InputError("C simulation needs a C++ compiler: install g++ (or set CXX), or build with --no-csim")
    return cxx


@functools.lru_cache(maxsize=4)
def _tool_fingerprint(cxx: str, ap_types: str) -> str:
    h = hashlib.sha256()
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    h.update(version.encode())
    for f in sorted(Path(ap_types).rglob("*.h")):
        h.update(str(f.relative_to(ap_types)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def cache_root() -> Path:
    """Where builds are cached: $ACCELGEN_CACHE_DIR, else $XDG_CACHE_HOME/accelgen, else
    ~/.cache/accelgen (optional overrides; nothing is required)."""
    base = os.environ.get("ACCELGEN_CACHE_DIR")
    if base:
        return Path(base) / "csim"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "accelgen" / "csim"


# -- building ---------------------------------------------------------------------------------------


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
    h.update(json.dumps([LIB_FLAGS, TB_FLAGS, _tool_fingerprint(cxx, ap)]).encode())
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
    if _entry_is_valid(dest, names):
        return Build(dest, dest / LIB_NAME, dest / TB_NAME, 0.0, True, key)
    root.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(root)
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f"{_WORK_PREFIX}{os.getpid()}-", dir=root))
    try:
        compile_design(hls_dirs, work, log=log, testbench=testbench, opt=opt, defines=defines, pch_root=root / "pch")
        _write_entry_manifest(work, names)
        _publish_entry(work, dest, names)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Build(dest, dest / LIB_NAME, dest / TB_NAME, time.perf_counter() - t0, False, key)


# A cache entry is valid when its manifest, written last, lists the sha256 of every file
# the entry must hold and the files still have those contents: a killed or truncated
# build, a garbage library or a deleted testbench is rebuilt instead of trusted.
ENTRY_MANIFEST = "entry.json"
_WORK_PREFIX = ".build-"
_STALE_PREFIX = ".stale-"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_entry_manifest(work: Path, names: list[str]) -> None:
    manifest = {name: _sha256(work / name) for name in names}
    tmp = work / f".{ENTRY_MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, sort_keys=True))
    os.replace(tmp, work / ENTRY_MANIFEST)


def _entry_is_valid(dest: Path, names: list[str]) -> bool:
    try:
        manifest = json.loads((dest / ENTRY_MANIFEST).read_text())
        return isinstance(manifest, dict) and all(
            isinstance(manifest.get(name), str) and _sha256(dest / name) == manifest[name] for name in names
        )
    except (OSError, ValueError):
        return False


def _publish_entry(work: Path, dest: Path, names: list[str], valid=None) -> None:
    """Rename the finished build onto ``dest``; a concurrent build may have published the
    same entry first (then it is kept), a damaged entry is moved aside and replaced."""
    for _ in range(3):
        try:
            os.rename(work, dest)
            return
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
        if (valid or _entry_is_valid)(dest, names):
            return  # another build of the same sources won the race
        stale = dest.with_name(f"{_STALE_PREFIX}{os.getpid()}-{dest.name}")
        try:
            os.rename(dest, stale)
        except FileNotFoundError:
            continue  # someone else moved it aside
        except OSError:
            shutil.rmtree(stale, ignore_errors=True)
            continue
        shutil.rmtree(stale, ignore_errors=True)
    raise InternalError(f"could not publish the C-simulation build into {dest}")


def _clean_leftovers(root: Path) -> None:
    """Remove the work directories of builds that were killed (their process is gone)."""
    for leftover in [*root.glob(f"{_WORK_PREFIX}*"), *root.glob(f"{_STALE_PREFIX}*")]:
        pid = leftover.name.split("-")[1] if leftover.name.count("-") >= 2 else ""
        if not pid.isdigit() or not process_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


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
PCH_HEADER = """// accelgen: the kernel library and ap_types, precompiled once per content (see csim.py)
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
    h.update(_tool_fingerprint(cxx, includes[-1][2:]).encode())
    for f in sorted(lib_dir.rglob("*.h")):
        h.update(str(f.relative_to(lib_dir)).encode() + b"\0" + f.read_bytes() + b"\0")
    dest = root / h.hexdigest()[:24]
    names = [PCH_NAME, PCH_NAME + ".gch"]
    use = ["-Winvalid-pch", "-include", str(dest / PCH_NAME)]
    if _sizes_match(dest, names):
        return use
    root.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(root)
    work = Path(tempfile.mkdtemp(prefix=f"{_WORK_PREFIX}{os.getpid()}-", dir=root))
    try:
        (work / PCH_NAME).write_text(PCH_HEADER)
        cmd = [cxx, *[f for f in flags if f != "-shared"], *includes, "-x", "c++-header", str(work / PCH_NAME),
               "-o", str(work / names[1])]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
        if proc.returncode != 0:
            return []
        sizes = {name: (work / name).stat().st_size for name in names}
        (work / ENTRY_MANIFEST).write_text(json.dumps(sizes, sort_keys=True))
        _publish_entry(work, dest, names, valid=_sizes_match)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return use if _sizes_match(dest, names) else []


def _sizes_match(dest: Path, names: list[str]) -> bool:
    """A precompiled-header entry is whole when its files have the sizes its manifest
    records (hashing the ~90 MB header on every compile would cost more than it checks)."""
    try:
        manifest = json.loads((dest / ENTRY_MANIFEST).read_text())
        return all(manifest.get(name) == (dest / name).stat().st_size for name in names)
    except (OSError, ValueError, AttributeError):
        return False


def _run(cmd: list[str], log: Path | None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    if log is not None:
        with open(log, "a") as f:
            f.write("$ " + " ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise InternalError("g++ failed on the generated HLS code:\n" + "\n".join(lines[:40]))


# -- the testbench ----------------------------------------------------------------------------------


def read_design(outdir: str | Path) -> dict[str, Any]:
    path = Path(outdir) / "hls" / "design.json"
    if not path.is_file():
        raise InputError(f"{outdir}: no hls/design.json; is this a generated design directory?")
    return json.loads(path.read_text())


def run_csim(outdir: str | Path, *, cache_dir: str | Path | None = None, keep_outputs: bool = False) -> dict:
    """Build (or reuse) and run the C testbench on the design's golden vectors.

    Returns ``passed``, ``vectors`` (samples), ``mismatches`` (elements that differ, over
    every layer and output), ``build_s``, ``run_s``, ``first_mismatch`` (None, or layer,
    name, sample, index, position, expected, got), ``layers`` (per-layer counts),
    ``cached`` and ``log``; with ``keep_outputs`` also ``outputs`` {tensor: codes}. The
    testbench's own output goes to OUTDIR/logs/csim.log.
    """
    outdir = Path(outdir)
    meta = read_design(outdir)
    logs = outdir / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / "csim.log"
    build_log = Path(tempfile.mkstemp(prefix=".csim-build-", suffix=".log", dir=logs)[1])
    try:
        b = build(outdir, cache_dir=cache_dir, log=build_log)
        with tempfile.TemporaryDirectory(prefix="accelgen-csim-") as tmp:
            t0 = time.perf_counter()
            proc = subprocess.run([str(b.testbench), str(outdir / "hls" / "vectors"), tmp], capture_output=True,
                                  text=True, timeout=RUN_TIMEOUT_S, check=False)  # fmt: skip
            run_s = time.perf_counter() - t0
            outputs = _load_outputs(meta, Path(tmp)) if keep_outputs else None
        text = build_log.read_text() + proc.stdout + proc.stderr
        fd, tmp_log = tempfile.mkstemp(dir=logs, prefix=".csim.log.")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp_log, log)
    finally:
        build_log.unlink(missing_ok=True)
    result = parse_testbench(proc.stdout, meta)
    result["passed"] = result["passed"] and proc.returncode == 0
    result.update(build_s=round(b.seconds, 3), run_s=round(run_s, 3), cached=b.cached, log=str(log.relative_to(outdir)))
    if proc.returncode not in (0, 1) or "RESULT" not in proc.stdout:
        result["passed"] = False
        result["error"] = f"the testbench exited with status {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}"
    if outputs is not None:
        result["outputs"] = outputs
    return result


def parse_testbench(stdout: str, meta: dict) -> dict:
    names = {layer["ident"]: layer["name"] for layer in meta["layers"]}
    names.update({p["name"]: p["tensor"] for p in meta["outputs"]})
    lines = [line[len(_PREFIX) :].strip() for line in stdout.splitlines() if line.startswith(_PREFIX)]
    samples, first, layers, status = 0, None, [], None
    passed, mismatches = False, 0
    for line in lines:
        if line.startswith("samples "):
            samples = int(line.split()[1])
        elif line.startswith("status "):
            status = int(line.split()[1])
        elif line.startswith("FIRST MISMATCH"):
            m = _FIRST.search(line)
            first = {"text": line}
            if m:
                first.update(
                    kind=m["kind"], layer=m["ident"], name=names.get(m["ident"], m["ident"]), sample=int(m["sample"]),
                    index=int(m["index"]), position=m["position"], expected=int(m["expected"]), got=int(m["got"]),
                )  # fmt: skip
        elif line.startswith("RESULT "):
            parts = line.split()
            passed, mismatches = parts[1] == "PASSED", int(parts[3])
        elif m := _TENSOR.match(line):
            layers.append({"kind": m["kind"], "ident": m["ident"], "name": names.get(m["ident"], m["ident"]),
                           "elements": int(m["n"]), "mismatches": int(m["m"])})  # fmt: skip
    stream_warnings = stdout.count("WARNING: Hls::stream")
    return {
        "passed": passed and stream_warnings == 0 and status == 0, "vectors": samples, "mismatches": mismatches,
        "first_mismatch": first, "layers": layers, "status": status, "stream_warnings": stream_warnings,
    }  # fmt: skip


def _load_outputs(meta: dict, directory: Path) -> dict[str, np.ndarray]:
    out = {}
    for p in meta["outputs"]:
        path = directory / f"{p['name']}.bin"
        if path.is_file():
            values = np.fromfile(path, dtype="<i8")
            out[p["tensor"]] = values.reshape(-1, *p["shape"])
    return out


# -- the emulator -----------------------------------------------------------------------------------

_I64P = ctypes.POINTER(ctypes.c_int64)


class Emulator:
    """The design's C-simulation model as a shared library, called through ctypes.

    ``run(codes)`` takes the hardware inputs (integer codes, batch first, channels-last
    per sample: one array, or {tensor name: array}) and returns the hardware outputs in
    the same form. ``run_float(x)`` runs the model end to end: the host prologue
    (quantizing the float input), the emulated hardware, the host epilogue. A batch is
    split over ``threads`` threads (default: every CPU).
    """

    def __init__(
        self,
        outdir: str | Path,
        *,
        cache_dir: str | Path | None = None,
        library: str | Path | None = None,
        threads: int | None = None,
    ) -> None:
        self.outdir = Path(outdir)
        self.meta = read_design(self.outdir)
        self.library = Path(library) if library is not None else build(self.outdir, cache_dir=cache_dir).library
        self._lib = ctypes.CDLL(str(self.library))
        top = self.meta["top"]
        self._emulate = getattr(self._lib, f"{top}_emulate_parallel")
        self._emulate.argtypes = [ctypes.POINTER(_I64P), ctypes.POINTER(_I64P), ctypes.c_uint, ctypes.c_uint]
        self._emulate.restype = ctypes.c_int
        self.threads = max(1, int(threads if threads is not None else (os.cpu_count() or 1)))
        self._layers = getattr(self._lib, f"{top}_emulate_layers")
        self._layers.argtypes = [ctypes.POINTER(_I64P), ctypes.POINTER(_I64P), ctypes.c_uint, ctypes.POINTER(_I64P),
                                 ctypes.POINTER(ctypes.c_uint64)]  # fmt: skip
        self._layers.restype = ctypes.c_int
        self._program = None

    @property
    def inputs(self) -> list[str]:
        return [p["tensor"] for p in self.meta["inputs"]]

    @property
    def outputs(self) -> list[str]:
        return [p["tensor"] for p in self.meta["outputs"]]

    def _prepare(self, codes) -> tuple[list[np.ndarray], int]:
        ports = self.meta["inputs"]
        if not isinstance(codes, dict):
            if len(ports) != 1:
                raise InputError(f"the design has inputs {', '.join(self.inputs)}: pass a dict")
            codes = {ports[0]["tensor"]: codes}
        arrays, batch = [], None
        for p in ports:
            if p["tensor"] not in codes:
                raise InputError(f"missing hardware input '{p['tensor']}'")
            a = np.asarray(codes[p["tensor"]])
            if a.dtype.kind not in "iu" or tuple(a.shape[1:]) != tuple(p["shape"]):
                raise InputError(f"input '{p['tensor']}': expected integer codes of shape (batch, "
                                 f"{', '.join(map(str, p['shape']))}), got {a.dtype} {a.shape}")  # fmt: skip
            code = p["code"]
            lo, hi = _code_range(code)
            if a.size and (a.min() < lo or a.max() > hi or (code["bipolar"] and np.any(a == 0))):
                raise InputError(f"input '{p['tensor']}' has codes outside its range [{lo}, {hi}]")
            batch = a.shape[0] if batch is None else batch
            if a.shape[0] != batch:
                raise InputError("all inputs need the same batch size")
            arrays.append(np.ascontiguousarray(a.reshape(a.shape[0], -1), dtype=np.int64))
        return arrays, int(batch or 0)

    @staticmethod
    def _pointers(arrays: list[np.ndarray]):
        return (_I64P * len(arrays))(*[a.ctypes.data_as(_I64P) for a in arrays])

    def run(self, codes):
        """Hardware inputs -> hardware outputs (integer codes, raw accumulators where the
        host dequantizes them)."""
        arrays, batch = self._prepare(codes)
        outs = [np.zeros((batch, p["elements"]), dtype=np.int64) for p in self.meta["outputs"]]
        status = self._emulate(self._pointers(arrays), self._pointers(outs), batch, self.threads) if batch else 0
        _check_status(status)
        result = {p["tensor"]: o.reshape(batch, *p["shape"]) for p, o in zip(self.meta["outputs"], outs)}
        return next(iter(result.values())) if len(result) == 1 and not isinstance(codes, dict) else result

    def run_layers(self, codes) -> dict[str, np.ndarray]:
        """Every layer's output (keyed by IR op name) and the hardware outputs (by tensor)."""
        arrays, batch = self._prepare(codes)
        outs = [np.zeros((batch, p["elements"]), dtype=np.int64) for p in self.meta["outputs"]]
        layers = [np.zeros((batch, layer["elements"]), dtype=np.int64) for layer in self.meta["layers"]]
        counts = (ctypes.c_uint64 * len(layers))()
        status = self._layers(self._pointers(arrays), self._pointers(outs), batch, self._pointers(layers), counts)
        _check_status(status)
        result = {layer["name"]: a.reshape(batch, *layer["shape"]) for layer, a in zip(self.meta["layers"], layers)}
        result.update({p["tensor"]: o.reshape(batch, *p["shape"]) for p, o in zip(self.meta["outputs"], outs)})
        return result

    def run_float(self, x, *, as_dict: bool = False):
        """The model's own inputs (float, its layout) -> its outputs: host prologue,
        emulated hardware, host epilogue, by the runtime's Accelerator on this library."""
        from accelgen.runtime import Accelerator, InputValidationError

        try:
            with Accelerator(self.outdir, backend="csim", library=self.library) as accel:
                return accel.run(x, as_dict=as_dict)
        except InputValidationError as exc:
            raise InputError(str(exc)) from None


def load_host_program(outdir: str | Path):
    """The lowered graph saved with a design (hls/program.json, else driver/program.json),
    with its host/hardware ``partition``: what runs around the emulated hardware."""
    from accelgen.runtime.accelerator import Partition
    from accelgen.runtime.program import load_program

    for candidate in (Path(outdir) / "hls" / "program.json", Path(outdir) / "driver" / "program.json"):
        if candidate.is_file():
            program = load_program(candidate)
            program.partition = Partition(program)
            return program
    raise InputError(f"{outdir}: no hls/program.json or driver/program.json; is this a generated design?")


def host_epilogue(outdir: str | Path, hw_outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's outputs from the hardware's (e.g. run_csim(..., keep_outputs=True)):
    the host epilogue (dequantization, float tail) as the runtime runs it."""
    from accelgen.runtime.interpreter import evaluate_ops, to_output

    program = load_host_program(outdir)
    env = dict(hw_outputs)
    evaluate_ops(program, program.partition.epilogue, env)
    return {n: to_output(program, n, env[n]) for n in program.outputs}


def _code_range(code: dict) -> tuple[int, int]:
    if code["bipolar"]:
        return -1, 1
    bits = code["bits"]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if code["signed"] else (0, (1 << bits) - 1)


_STATUS = {
    2: "an output stream ran short or its TLAST was misplaced",
    3: "the design left input unread",
    4: "the design wrote more output than expected",
}


def _check_status(status: int) -> None:
    if status != 0:
        raise InternalError(f"the emulated design failed: {_STATUS.get(status, f'status {status}')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m accelgen.csim", description="C simulation helpers")
    parser.add_argument("--ap-types", action="store_true", help="print the ap_types include directory")
    parser.add_argument("outdir", nargs="?", help="run the C testbench of this generated design")
    args = parser.parse_args(argv)
    if args.ap_types:
        print(ap_types_dir())
        return 0
    if args.outdir:
        result = run_csim(args.outdir)
        print(json.dumps(result, indent=1))
        return 0 if result["passed"] else 1
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
