"""Cost of a generated unrolled design: LUT, FF, CARRY and logic levels from its netlist.

A pure function of the per-layer netlists (:mod:`accelgen.rtl.netlist`), read in their
shared view (a partial sum several neurons form alike counted once, as synthesis merges
it). The netlist is first reduced to structural *features*; each resource is then a linear function of them
whose coefficients were fitted to Yosys ``synth_xilinx -family xcup -nowidelut`` results
(``benchmarks/bench_rtl.py --calibrate`` refits them on the fixture MLPs and random
ternary / binary / 3- and 4-bit MLPs and prints the new table). The worst relative error
of the fit is stored beside the coefficients so the report can say how far to trust it.

The features follow what synthesis does with an adder tree: a chain of additions whose
intermediate sums feed nothing else is merged into one multi-operand sum (Yosys: a
``$macc`` built as a compressor tree, about 1.5 LUT per operand bit), while a sum that is
shared between neurons or registered stays a two-operand carry-chain adder (one LUT per
bit). So ``macc_bits`` counts operand bits of merged multi-operand sums (``macc_log``
weighs each by log2 of its operand count: bigger compressors cost more per bit,
``max_operands`` is the largest) and ``alu_bits`` the bits of plain adders; ``inv_bits``
counts complemented inputs (negative signed digits), which Yosys keeps as separate
inverters in front of the compressors.

Register stages inside a layer (a high ``--clock``: :func:`accelgen.rtl.generate.choose_pipeline`)
cut its merged sums into registered two-operand adders. The first fit had no LUT term for
those (its designs had at most two stages per layer, where they are nearly absent), so a
deep pipeline was priced at a third of its size (qonnx_mlp_w2a2 at 300 MHz: 3,404 LUT
estimated, Yosys 10,150). ``reg_alu_bits`` counts them; its coefficient was fitted to two
deep designs (``benchmarks/bench_rtl.py --deep``; each one's fit predicts the other within
2.3%), the other coefficients are unchanged (the feature is ~0 on the designs they were fitted to).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from accelgen.rtl.netlist import sources

#: structural features, in the order the coefficient vectors use
FEATURES = ("macc_bits", "macc_log", "max_operands", "alu_bits", "reg_alu_bits", "inv_bits", "cmp_bits", "count_terms",
            "clip_bits", "reg_bits", "path_cells", "one")  # fmt: skip

#: resource -> coefficient per feature (see module docstring); refitted by the benchmark
COEFFICIENTS: dict[str, dict[str, float]] = {
    "lut": {"macc_bits": 0.6015, "macc_log": 0.1841, "cmp_bits": 0.1371, "inv_bits": 3.0448, "reg_alu_bits": 0.615},
    "ff": {"reg_bits": 0.9517},
    "carry": {"macc_bits": 0.0621, "alu_bits": 0.1643, "cmp_bits": 0.0735, "reg_bits": 0.1766},
    "levels": {"path_cells": 0.551, "max_operands": 0.2204},
}
#: worst |estimate - yosys| / yosys over the calibration set, per resource
CALIBRATION_ERROR: dict[str, float] = {"lut": 0.093, "ff": 0.186, "carry": 0.155, "levels": 0.314}
CALIBRATION_SOURCE = "Yosys 0.23 synth_xilinx -family xcup -nowidelut, 11 designs (benchmarks/bench_rtl.py --calibrate)"

#: bits per carry cell of the calibration tool (Yosys 0.23 maps every carry chain to CARRY4)
CARRY_BITS = 4
SUMS = ("add", "offset")


def _sum_bits(s: dict[str, Any]) -> int:
    """Bits an adder spends logic on: the low bits of a shifted operand pass straight through."""
    if s["kind"] == "add":
        return s["width"] - max(o["shift"] for o in s["operands"])
    return s["width"] - s["src_shift"]  # offset: src << shift plus a constant


def merged_sums(layer: dict[str, Any]) -> dict[str, list[int]]:
    """Root sum -> widths of its operands after merging single-use, unregistered sums into
    the sum that reads them (what synthesis turns into one multi-operand adder)."""
    by_name = {s["name"]: s for s in layer["signals"]}
    fanout: dict[str, int] = {}
    for s in layer["signals"]:
        for n in sources(s):
            fanout[n] = fanout.get(n, 0) + 1
    for n in layer["outputs"]:
        fanout[n] = fanout.get(n, 0) + 1
    consumer_is_sum = {n for s in layer["signals"] if s["kind"] in SUMS for n in sources(s)}

    def merged(name: str) -> bool:
        s = by_name.get(name)
        return (s is not None and s["kind"] == "add" and not s["reg"] and fanout.get(name, 0) == 1
                and name in consumer_is_sum)  # fmt: skip

    def operands(s: dict[str, Any]) -> list[int]:
        if s["kind"] == "offset":
            inner = by_name.get(s["src"])
            return (operands(inner) if merged(s["src"]) else [s["src_width"]]) + [s["width"]]
        out = []
        for o in s["operands"]:
            out.extend(operands(by_name[o["name"]]) if merged(o["name"]) else [o["width"]])
        return out

    return {s["name"]: operands(s) for s in layer["signals"] if s["kind"] in SUMS and not merged(s["name"])}


def features(layers: list[dict[str, Any]], latency: int) -> dict[str, float]:
    """Structural counts of a whole design (all layers plus the valid/tlast pipeline)."""
    f = dict.fromkeys(FEATURES, 0.0)
    f["one"] = 1.0
    for layer in layers:
        by_name = {s["name"]: s for s in layer["signals"]}
        for root, widths in merged_sums(layer).items():
            if len(widths) > 2:
                f["macc_bits"] += sum(widths)
                f["macc_log"] += sum(widths) * math.log2(len(widths))
                f["max_operands"] = max(f["max_operands"], len(widths))
            else:
                f["alu_bits"] += _sum_bits(by_name[root])
                if by_name[root]["reg"]:  # a partial sum a register stage cut out of a merged sum
                    f["reg_alu_bits"] += _sum_bits(by_name[root])
        for s in layer["signals"]:
            kind = s["kind"]
            if kind == "cmp":
                f["cmp_bits"] += s["src_width"]
            elif kind == "not":
                f["inv_bits"] += s["width"]
            elif kind == "count":
                f["count_terms"] += sum(len(t) if isinstance(t, list) else 0 for t in s["terms"])
            elif kind == "clip":
                f["clip_bits"] += s["q_width"] * ((s["lo"] is not None) + (s["hi"] is not None))
            if s["reg"] and kind != "const":
                f["reg_bits"] += s["width"]
    f["reg_bits"] += 2 * latency
    f["path_cells"] = float(max(stage_paths(layers), default=0))
    return f


def _cells(s: dict[str, Any], operands: int) -> int:
    """Cells a path crosses through one signal: compressor levels, a LUT, the carry chain."""
    kind = s["kind"]
    if kind in SUMS:
        compress = math.ceil(math.log(operands / 2, 1.5)) if operands > 2 else 0
        return compress + 1 + math.ceil(_sum_bits(s) / CARRY_BITS)
    if kind == "cmp":
        return 1 + math.ceil(s["src_width"] / CARRY_BITS)
    if kind == "clip":
        return 2 + math.ceil(s["q_width"] / CARRY_BITS)
    if kind == "count":
        return 1
    return 0


def stage_paths(layers: list[dict[str, Any]]) -> list[int]:
    """Longest chain of cells between registers (or ports), per layer, in netlist order.

    A merged multi-operand sum counts once, at its root, with its compressor levels.
    """
    paths = []
    carried = 0  # a combinational layer's output path continues into the next layer
    for layer in layers:
        roots = merged_sums(layer)
        depth: dict[str, int] = {}
        longest = 0
        for s in layer["signals"]:
            if s["kind"] == "input":
                depth[s["name"]] = carried
                continue
            if s["kind"] in SUMS and s["name"] not in roots:
                depth[s["name"]] = max((depth.get(n, 0) for n in sources(s)), default=0)  # inside a merged sum
                continue
            operands = len(roots.get(s["name"], ()))
            d = max((depth.get(n, 0) for n in sources(s)), default=0) + _cells(s, operands)
            longest = max(longest, d)
            depth[s["name"]] = 0 if s["reg"] else d
        carried = max((depth.get(o, 0) for o in layer["outputs"]), default=0)
        paths.append(longest)
    return paths


def estimate(layers: list[dict[str, Any]], latency: int) -> dict[str, Any]:
    """LUT, FF, CARRY8 and logic levels of a design, with the features they came from."""
    f = features(layers, latency)
    out: dict[str, Any] = {}
    for resource, coeffs in COEFFICIENTS.items():
        out[resource] = max(0, int(round(sum(coeffs.get(k, 0.0) * f[k] for k in FEATURES))))
    out["dsp"] = 0  # constant weights never need a multiplier
    out["features"] = {k: int(v) for k, v in f.items() if k != "one"}
    out["calibration"] = {"source": CALIBRATION_SOURCE, "max_rel_error": dict(CALIBRATION_ERROR)}
    return out


def features_of(design: dict[str, Any]) -> dict[str, float]:
    """The features recorded in a generated design.json (for calibration)."""
    f = {k: float(design["estimate"]["features"].get(k, 0)) for k in FEATURES}
    f["one"] = 1.0
    return f


def fit(samples: list[tuple[dict[str, float], dict[str, int]]]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Least-squares coefficients per resource from (features, yosys figures) pairs.

    Each resource uses the features already listed for it in :data:`COEFFICIENTS`; the
    fit minimises relative error (rows weighted by 1/measured) so that small and large
    designs count alike, and coefficients are kept non-negative.
    """
    coeffs: dict[str, dict[str, float]] = {}
    errors: dict[str, float] = {}
    for resource, current in COEFFICIENTS.items():
        keys = list(current)
        A = np.array([[f[k] for k in keys] for f, _ in samples], dtype=np.float64)
        measured = np.array([float(m[resource]) for _, m in samples])
        scale = np.maximum(1.0, measured)  # relative error; a measured 0 counts as 1
        sol = _nonnegative_lstsq(A / scale[:, None], measured / scale)
        coeffs[resource] = {k: round(float(v), 4) for k, v in zip(keys, sol)}
        errors[resource] = round(float(np.max(np.abs(A @ sol - measured) / scale)), 3)
    return coeffs, errors


def _nonnegative_lstsq(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares with the negative coefficients dropped one at a time (active set)."""
    active = list(range(A.shape[1]))
    while True:
        sol = np.zeros(A.shape[1])
        sol[active] = np.linalg.lstsq(A[:, active], b, rcond=None)[0]
        negative = [i for i in active if sol[i] < 0]
        if not negative:
            return sol
        active.remove(min(negative, key=lambda i: sol[i]))


# -- register stages for a target clock ---------------------------------------------------------

#: Per-level delay model (ns) by device family: one logic level (a LUT or carry cell with its
#: local routing) and the fixed part of every register-to-register path (clock-to-out, setup,
#: clock uncertainty). Rule-of-thumb figures for the slowest speed grade the boards ship with
#: (Zynq-7000 -1: LUT6 about 0.1 ns plus 0.4-0.8 ns of net delay per level at moderate fanout;
#: Zynq UltraScale+ -1/-2: about half of that), *not* fitted to any implementation result: a
#: Vivado run can move a stage either way. Used only to choose how many register stages a
#: layer gets; the estimate of levels they multiply is the calibrated one above.
DELAY_MODELS: dict[str, dict[str, float]] = {
    "zynq-7000": {"ns_per_level": 0.9, "overhead_ns": 1.2},
    "zynq-ultrascale+": {"ns_per_level": 0.5, "overhead_ns": 0.7},
}
#: the model used for a part of no known family (the slower one: more registers, not fewer)
DEFAULT_FAMILY = "zynq-7000"


def family_of(part: str | None) -> str:
    """The delay model's family of an AMD part name (xc7z... -> zynq-7000, xczu / xck -> zynq-ultrascale+)."""
    p = (part or "").lower()
    if p.startswith(("xczu", "xck", "xcvu", "xcku")):
        return "zynq-ultrascale+"
    return DEFAULT_FAMILY


def layer_levels(layer: dict[str, Any]) -> int:
    """Estimated logic levels of a layer's longest register-to-register path (the calibrated
    ``levels`` model on that layer alone)."""
    return estimate([layer], 0)["levels"]


def stage_ns(levels: int, family: str) -> float:
    """Estimated delay of a register-to-register path of ``levels`` logic levels."""
    m = DELAY_MODELS[family]
    return round(m["overhead_ns"] + levels * m["ns_per_level"], 3)


def max_levels(clock_mhz: float, family: str) -> int:
    """The most logic levels one stage may hold at ``clock_mhz``."""
    m = DELAY_MODELS[family]
    return max(1, int((1e3 / clock_mhz - m["overhead_ns"]) // m["ns_per_level"]))
