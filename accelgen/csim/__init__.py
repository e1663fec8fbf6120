"""C simulation of a generated HLS project with g++, and the emulator built from it.

One job per module:

    toolchain   the compiler, flags, ap_types headers, the cache's location
    cache       content-keyed cache entries: publish by rename, check, heal
    builder     g++ builds of designs (cached; kernel library precompiled once)
    testbench   run the C testbench on the golden vectors and read its verdict
    emulator    the library as a Python object (on the runtime's ctypes binding)
    host        the host prologue / epilogue around the emulated hardware
    __main__    ``python -m accelgen.csim``
"""

from accelgen.csim.builder import (
    PCH_NAME,
    Build,
    build,
    build_group,
    build_key,
    compile_design,
    precompiled_kernels,
)
from accelgen.csim.cache import ENTRY_MANIFEST
from accelgen.csim.emulator import Emulator
from accelgen.csim.host import host_epilogue, load_host_program
from accelgen.csim.testbench import parse_testbench, read_design, run_csim
from accelgen.csim.toolchain import (
    LIB_FLAGS,
    LIB_NAME,
    TB_FLAGS,
    TB_NAME,
    ap_types_dir,
    cache_root,
    compiler,
)

__all__ = [
    "ENTRY_MANIFEST",
    "LIB_FLAGS",
    "LIB_NAME",
    "PCH_NAME",
    "TB_FLAGS",
    "TB_NAME",
    "Build",
    "Emulator",
    "ap_types_dir",
    "build",
    "build_group",
    "build_key",
    "cache_root",
    "compile_design",
    "compiler",
    "host_epilogue",
    "load_host_program",
    "parse_testbench",
    "precompiled_kernels",
    "read_design",
    "run_csim",
]
