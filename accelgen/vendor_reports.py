"""Reading the vendor tools' reports back: Vitis HLS ``csynth.xml`` and Vivado's
``report_utilization`` text. Pure parsing; the tools themselves run in :mod:`accelgen.vendor`."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from accelgen.errors import InputError

#: the resources compared with a Vitis HLS report, as csynth.xml names them
CSYNTH_RESOURCES = {
    "bram18": ("BRAM_18K",),
    "dsp": ("DSP", "DSP48E"),
    "ff": ("FF",),
    "lut": ("LUT",),
    "uram": ("URAM",),
}


def _xml_number(node: ET.Element | None, path: str) -> float | None:
    if node is None:
        return None
    el = node.find(path)
    if el is None or el.text is None:
        return None
    text = el.text.strip().split()[0] if el.text.strip() else ""
    try:
        value = float(text)
    except ValueError:
        return None  # "undef" when the latency is not static
    return int(value) if value.is_integer() else value


def parse_csynth(path: str | Path) -> dict[str, Any]:
    """The figures of a Vitis HLS synthesis report (``csynth.xml``) that the report shows."""
    p = Path(path)
    try:
        root = ET.fromstring(p.read_bytes())
    except (OSError, ET.ParseError) as exc:
        raise InputError(f"Vitis HLS report {path}: cannot read it ({exc})") from None
    user = root.find("UserAssignments")
    perf = root.find("PerformanceEstimates")
    area = root.find("AreaEstimates")
    if perf is None and area is None:
        raise InputError(f"Vitis HLS report {path}: no PerformanceEstimates or AreaEstimates (not a csynth.xml?)")
    latency = perf.find("SummaryOfOverallLatency") if perf is not None else None

    def resources(section: str) -> dict[str, int | float | None]:
        node = area.find(section) if area is not None else None
        out = {}
        for key, names in CSYNTH_RESOURCES.items():
            out[key] = next((v for v in (_xml_number(node, n) for n in names) if v is not None), None)
        return out

    return {
        "source": str(path),
        "tool": "Vitis HLS csynth",
        "top": (user.findtext("TopModelName") if user is not None else None),
        "part": (user.findtext("Part") if user is not None else None),
        "target_clock_ns": _xml_number(user, "TargetClockPeriod"),
        "estimated_clock_ns": _xml_number(perf, "SummaryOfTimingAnalysis/EstimatedClockPeriod"),
        "latency_cycles": {
            "best": _xml_number(latency, "Best-caseLatency"),
            "worst": _xml_number(latency, "Worst-caseLatency"),
        },  # fmt: skip
        "ii_cycles": {"min": _xml_number(latency, "Interval-min"), "max": _xml_number(latency, "Interval-max")},
        "resources": resources("Resources"),
        "available": resources("AvailableResources"),
    }


_UTIL_ROWS = {
    "CLB LUTs": "lut",
    "Slice LUTs": "lut",
    "CLB Registers": "ff",
    "Slice Registers": "ff",
    "Block RAM Tile": "bram_tile",
    "URAM": "uram",
    "DSPs": "dsp",
}


def parse_vivado_utilization(text: str) -> dict[str, float]:
    """Used resources from a Vivado ``report_utilization`` text report.

    BRAM is reported in 36 Kb tiles; ``bram18`` is twice that.
    """
    found: dict[str, float] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        name = re.sub(r"\*+$", "", cells[0]).strip()
        key = _UTIL_ROWS.get(name)
        if key and key not in found:
            try:
                found[key] = float(cells[1])
            except ValueError:
                continue
    if "bram_tile" in found:
        found["bram18"] = 2 * found.pop("bram_tile")
    return found
