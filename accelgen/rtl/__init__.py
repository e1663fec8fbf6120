"""The fully unrolled RTL path: tiny ultra-low-bit MLPs as constant-weight logic.

    check_fits(graph)                        None, or InputError saying why and what to use
    generate(graph, outdir, pipeline_levels=1, combinational=False) -> Path
    simulate(outdir, x_codes, simulator="verilator"|"icarus") -> dict
    synth_yosys(outdir) -> dict(lut, ff, carry, dsp, levels, ...)
    rtl_report(design, yosys, sims) -> the ``rtl`` section of report.json

``generate`` writes Verilog-2005 (AXI-Stream top, one module per layer), the design's own
cocotb testbench and Makefile, a Yosys script, and design.json (ports, latency, estimate).
"""

from accelgen.rtl.generate import check_fits, describe, generate, load_design
from accelgen.rtl.report import rtl_report
from accelgen.rtl.sim import simulate, simulator_available
from accelgen.rtl.synthetic import random_mlp
from accelgen.rtl.yosys import synth_yosys, yosys_available

__all__ = [
    "check_fits",
    "describe",
    "generate",
    "load_design",
    "random_mlp",
    "rtl_report",
    "simulate",
    "simulator_available",
    "synth_yosys",
    "yosys_available",
]
