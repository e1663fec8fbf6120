"""Reading the vendor tools' reports back: Vitis HLS ``csynth.xml`` and Vivado's
``report_utilization`` and ``report_timing_summary`` text. Pure parsing; the tools themselves run in :mod:`accelgen.vendor`."""

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


# -- achieved initiation intervals of the pipelined loops, per layer ---------------------------------

#: every loop the kernels pipeline asks for II=1 (hls/accelgen/*.h); the plan's cycle counts assume it
PLANNED_LOOP_II = 1


def _loop_number(node: ET.Element, tag: str) -> int | None:
    el = node.find(tag)
    if el is None:
        return None
    top = el.find("range/max")  # a trip count Vitis only bounds: <range><min/><max/></range>
    text = (top.text if top is not None else el.text) or ""
    try:
        return int(float(text.strip().split()[0]))
    except (ValueError, IndexError):
        return None  # "undef", "-": not pipelined, or not static


def csynth_loops(path: str | Path) -> list[dict[str, Any]]:
    """The pipelined loops of one Vitis HLS report: ``csynth.xml`` (every module under
    ``ModuleInformation``) or a per-module ``<module>_csynth.xml``. Each loop: module, loop
    name, achieved ``ii`` and ``trip_count`` (None when not static)."""
    try:
        root = ET.fromstring(Path(path).read_bytes())
    except (OSError, ET.ParseError) as exc:
        raise InputError(f"Vitis HLS report {path}: cannot read it ({exc})") from None
    modules = root.findall("ModuleInformation/Module")
    if not modules:
        user = root.find("UserAssignments")
        modules = [root]
        names = [user.findtext("TopModelName") if user is not None else Path(path).stem.removesuffix("_csynth")]
    else:
        names = [m.findtext("Name") or "?" for m in modules]
    loops = []
    for module, name in zip(modules, names):

        def walk(node: ET.Element, module: str = name) -> None:
            for loop in node:
                if loop.find("PipelineII") is None:
                    continue
                ii = _loop_number(loop, "PipelineII")
                if ii is not None:
                    loops.append({"module": module, "loop": loop.findtext("Name") or loop.tag, "ii": ii,
                                  "trip_count": _loop_number(loop, "TripCount")})  # fmt: skip
                walk(loop)  # nested loops are children of their parent's element

        summary = module.find("PerformanceEstimates/SummaryOfLoopLatency")
        if summary is not None:
            walk(summary)
    return loops


def check_loop_ii(reports: list[str | Path], layers: dict[str, str], planned: int = PLANNED_LOOP_II) -> dict[str, Any]:
    """Achieved II of every pipelined loop against the plan's, per layer.

    ``reports``: csynth.xml files (the top's and/or per-module ones); ``layers``: the
    generated layer idents (hls/design.json) -> layer names. A module belongs to the layer
    whose ident it contains (Vitis names a kernel's module after its configuration,
    ``mvau_L3_conv_conv2_Conv_mvau_cfg_s``); loops of no layer's module (the AXI-Stream
    adapters, the plumbing) are checked under ``layer: None``. A loop is slower than
    planned when its II exceeds ``planned``: that kernel then takes ii / planned times the
    planned cycles (an ARRAY_PARTITION Vitis ignored, a RAM dependence it could not break)."""
    seen, loops = set(), []
    for report in reports:
        for loop in csynth_loops(report):
            key = (loop["module"], loop["loop"])
            if key not in seen:  # the top's report repeats its modules' loops
                seen.add(key)
                loops.append(loop)
    by_length = sorted(layers, key=len, reverse=True)

    def layer_of(module: str) -> str | None:
        for ident in by_length:
            if re.search(rf"(^|_){re.escape(ident)}(_|$)", module):
                return layers[ident]
        return None

    slower = [
        {**loop, "layer": layer_of(loop["module"]), "planned_ii": planned, "slowdown": round(loop["ii"] / planned, 2)}
        for loop in loops
        if loop["ii"] > planned
    ]
    return {"planned_ii": planned, "loops_checked": len(loops), "slower": slower, "ok": not slower}


#: the Design Timing Summary's columns, as Vivado's report_timing_summary heads them
_TIMING_COLUMNS = {
    "WNS(ns)": "wns_ns",
    "TNS(ns)": "tns_ns",
    "TNS Failing Endpoints": "tns_failing_endpoints",
    "TNS Total Endpoints": "tns_total_endpoints",
    "WHS(ns)": "whs_ns",
    "THS(ns)": "ths_ns",
    "THS Failing Endpoints": "ths_failing_endpoints",
    "THS Total Endpoints": "ths_total_endpoints",
    "WPWS(ns)": "wpws_ns",
    "TPWS(ns)": "tpws_ns",
}


def _timing_value(text: str) -> int | float | None:
    try:
        value = float(text)  # "inf" when nothing is constrained
    except ValueError:
        return None  # "NA"
    return int(value) if value.is_integer() and "." not in text else value


def parse_vivado_timing(text: str, source: str = "timing report") -> dict[str, Any]:
    """WNS/TNS/WHS/THS from a Vivado ``report_timing_summary`` text report.

    The Design Timing Summary is a header row of column names separated by two or more
    spaces, a row of dashes under each name, and one row of values; the values are read
    by the dashes' columns. ``met`` is Vivado's own verdict line when present.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "Design Timing Summary" in line), None)
    if start is None:
        raise InputError(f"{source}: no 'Design Timing Summary' (not a report_timing_summary report?)")
    for i in range(start, len(lines) - 2):
        if "WNS(ns)" not in lines[i]:
            continue
        names = [" ".join(lines[i][lo:hi].split()) for lo, hi in (m.span() for m in re.finditer(r"-+", lines[i + 1]))]
        values = next((v for v in lines[i + 2 :] if v.strip()), "").split()  # no value holds a space
        if len(values) != len(names):
            raise InputError(f"{source}: the Design Timing Summary has {len(names)} columns but {len(values)} values")
        found: dict[str, Any] = {
            _TIMING_COLUMNS[name]: _timing_value(value) for name, value in zip(names, values) if name in _TIMING_COLUMNS
        }
        if "wns_ns" not in found:
            break
        verdict = None
        for line in lines[i:]:
            if "All user specified timing constraints are met" in line:
                verdict = True
                break
            if "Timing constraints are not met" in line:
                verdict = False
                break
        found["met"] = verdict
        return found
    raise InputError(f"{source}: the Design Timing Summary has no WNS(ns) column")
