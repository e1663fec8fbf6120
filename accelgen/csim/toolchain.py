"""The C-simulation toolchain: the compiler, its flags, the ap_types headers and where
compiled designs are cached. ap_int.h / hls_stream.h come from ``$XILINX_HLS/include`` when
Vitis HLS is installed, else from the ap_types directory of the installed ``hls4ml``
distribution (found from its file list, without importing it). They are never copied."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from accelgen.errors import InputError

CXX_STD = "-std=c++14"
#: flags of the design library (the emulator's speed) and of the light testbench driver
LIB_FLAGS = (CXX_STD, "-O2", "-fPIC", "-shared", "-pthread", "-Wno-unknown-pragmas")
TB_FLAGS = (CXX_STD, "-O1")
BUILD_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 3600
LIB_NAME = "libaccel.so"
TB_NAME = "tb"


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
def tool_fingerprint(cxx: str, ap_types: str) -> str:
    """Content hash of the compiler version and every ap_types header."""
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
