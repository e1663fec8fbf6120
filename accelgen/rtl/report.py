"""The ``rtl`` section of report.json: Yosys figures beside the estimate, and the simulations."""

from __future__ import annotations

from typing import Any

LAYER_KEYS = ("label", "in_size", "out_size", "in_bits", "out_bits", "requant", "units", "tree_depth", "registers",
              "stage_cells", "estimate")  # fmt: skip
SIM_KEYS = ("simulator", "passed", "samples", "mismatches", "latency_cycles", "ii_cycles", "seconds")


def rtl_report(design: dict[str, Any], yosys: dict[str, Any] | None, sims: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``rtl`` section of report.json: Yosys figures beside the estimate, simulations."""
    est = design["estimate"]
    side = {}
    for key in ("lut", "ff", "carry", "levels"):
        side[key] = {"estimate": est[key], "yosys": None if yosys is None else yosys[key]}
    return {
        "top": design["top"],
        "latency_cycles": design["latency_cycles"],
        "ii_cycles": design["ii_cycles"],
        "pipeline_levels": design["pipeline_levels"],
        "resources": side,
        "estimate": {k: v for k, v in est.items() if k != "features"},
        "yosys": None if yosys is None else {k: v for k, v in yosys.items() if k != "cells"},
        "cocotb": [{k: s.get(k) for k in SIM_KEYS} for s in sims],
        "layers": [{k: layer.get(k) for k in LAYER_KEYS} for layer in design["layers"]],
        "timing": design.get("timing"),
    }


#: what report.json says about a design built with --arch rtl
RTL_NOTES = [
    "--arch rtl: rtl/ holds the Verilog, its cocotb testbench (make sim) and Yosys script (make synth); "
    "scripts/bd.tcl the Vivado block design (PS + AXI DMA + the core's AXI wrapper as a module reference; "
    "make bitstream in scripts/, not run by accelgen build); driver/ the PYNQ driver, the dataflow path's"
]


def build_rtl_report(model: str, board: str, clock_mhz: float, design: dict[str, Any], sim: dict[str, Any],
                     yosys: dict[str, Any], arch_reason: str = "--arch rtl",
                     board_info: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """report.json of an ``--arch rtl`` build from the stages' results: ``sim`` the
    simulation's (or ``{"skipped": why}``), ``yosys`` Yosys' (or ``{"skipped": why}``)."""
    simulated = "passed" in sim
    section = rtl_report(design, None if "skipped" in yosys else yosys, [sim] if simulated else [])
    if design.get("board"):  # the AXI wrapper the block design and driver use: the bus sets the rate
        from accelgen.rtl.board import throughput

        ports = design["board"]
        section["board_interface"] = {"top": ports["top"], "bus_bits": ports["bus_bits"],
                                      "words_in": ports["inputs"][0]["words_per_sample"],
                                      "words_out": ports["outputs"][0]["words_per_sample"],
                                      **throughput(design, clock_mhz)}  # fmt: skip
    return {
        "model": model,
        "arch": "rtl",
        "arch_reason": arch_reason,
        "board": board,
        "board_info": board_info or {"name": board, "title": board, "resources": {}},
        "clock_mhz": clock_mhz,
        "csim": sim if simulated else {"passed": None, "vectors": 0, "mismatches": None, **sim},
        "synth": None,
        "synth_status": yosys.get("skipped"),
        "rtl": section,
        "notes": list(RTL_NOTES) + _timing_notes(design.get("timing"), design["pipeline_levels"]),
    }


#: said when a layer has more than one register stage (see estimate.py: the term for the
#: registered partial sums those stages create is fitted to two deep designs only)
DEEP_PIPELINE_NOTE = (
    "more than one register stage per layer: the LUT estimate's term for the registered partial sums was "
    "fitted to two deep pipelines only (within 2.3% of Yosys on each other's fit); Yosys' figure is the measurement"
)


def _timing_notes(timing: dict[str, Any] | None, stages: list[int]) -> list[str]:
    notes = [DEEP_PIPELINE_NOTE] if any(n > 1 for n in stages) else []
    if not timing or timing["meets_clock"]:
        return notes
    slow = max(timing["stage_ns"])
    return notes + [
        f"the slowest register stage is estimated at {slow:g} ns, over the {timing['period_ns']:g} ns period of "
        f"{timing['clock_mhz']:g} MHz even with a register after every stage unit; build with a lower --clock "
        f"(about {1e3 / slow:.0f} MHz by the delay model)"
    ]
