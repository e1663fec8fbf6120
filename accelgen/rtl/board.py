"""The Vivado block design of an ``--arch rtl`` build: OUTDIR/scripts/bd.tcl and a Makefile.

The same templates as the dataflow path (``templates/scripts/bd_<ps>.tcl.j2``): the board's
project and board-file check, the processing system and its clock, one AXI DMA per stream
port sized for the bus (:func:`accelgen.vendor.dma_settings`), the address map, implementation
and the timing check. Only the accelerator cell differs: the unrolled core's Verilog and its
wrapper (:mod:`accelgen.rtl.axi`) are added as sources and instantiated as a module reference,
with the HLS IP's port names, so the driver and the DMA wiring are the dataflow path's.
"""

from __future__ import annotations

from typing import Any

from accelgen import __version__, vendor
from accelgen.rtl.names import identifier
from accelgen.templating import environment


def render_scripts(design: dict[str, Any], board: Any, clock_mhz: float, model_name: str) -> dict[str, str]:
    """scripts/bd.tcl and scripts/Makefile for the RTL design ``design`` (design.json) on ``board``."""
    ports = design["board"]
    rtl = {"top": ports["top"], "files": ports["files"], "bus_bits": ports["bus_bits"]}
    facts = {"name": board.name, "part": board.part, "board_part": board.board_part,
             "processing_system": board.processing_system}  # fmt: skip
    values = {
        "version": __version__,
        "board": facts,
        "clock_mhz": clock_mhz,
        "model": identifier(model_name, prefix="model"),
        "top": ports["top"],
        "ip_name": ports["top"],
        "dma": vendor.dma_settings(int(ports["bus_bits"])),
        "inputs": ports["inputs"],
        "outputs": ports["outputs"],
        "rtl": rtl,
    }
    env = environment()
    return {
        "scripts/bd.tcl": env.get_template(f"scripts/bd_{board.processing_system}.tcl.j2").render(**values),
        "scripts/Makefile": env.get_template("scripts/Makefile_rtl.j2").render(**values),
    }
