"""Code generation: plan + lowered graph -> per-layer dicts -> Jinja templates -> HLS project.

``generate(compiled, plan, outdir, board=..., vectors=...)`` writes OUTDIR/hls (the Vitis
HLS sources, testbench, golden vectors) and OUTDIR/scripts (Vitis HLS and Vivado tcl, a
Makefile). See :mod:`accelgen.codegen.project` for the file layout.
"""

from accelgen.codegen.connect import Design, build_design
from accelgen.codegen.project import generate

__all__ = ["Design", "build_design", "generate"]
