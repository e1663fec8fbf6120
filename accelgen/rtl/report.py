"""The ``rtl`` section of report.json: Yosys figures beside the estimate, and the simulations."""

from __future__ import annotations

from typing import Any

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
    }
