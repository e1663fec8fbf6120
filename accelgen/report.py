"""The design report: report.json (DESIGN.md section 7), report.md and report.png.

:func:`build_report` turns an explorer :class:`~accelgen.dse.Estimate` into the JSON
document; later stages add their sections (``csim`` from the C simulation, ``synth``
from a Vitis HLS ``csynth.xml``, shown beside the estimates). :func:`render_markdown` and
:func:`render_png` read only that document, so a report can be re-rendered after a stage
fills in its section. Every figure from the cost models is labelled as an estimate.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

from accelgen import __version__
from accelgen.dse import Estimate
from accelgen.kernels import kernel_name
from accelgen.kernels.base import RESOURCE_KEYS
from accelgen.vendor_reports import CSYNTH_RESOURCES, check_loop_ii, parse_csynth

REPORT_VERSION = 1
ESTIMATE_SOURCE = "accelgen cost models (accelgen.kernels): estimates, not synthesis results"
CSIM_KEYS = ("passed", "vectors", "mismatches")


# ---------------------------------------------------------------------------------------
# report.json
# ---------------------------------------------------------------------------------------


def build_report(estimate: Estimate, *, csim: dict[str, Any] | None = None,
                 synth: dict[str, Any] | str | Path | None = None) -> dict[str, Any]:  # fmt: skip
    """The report document. ``csim``: {passed, vectors, mismatches, ...} from the C
    simulation; ``synth``: a csynth.xml path (or its :func:`parse_csynth` result)."""
    rows = {r["name"]: r for r in estimate.table}
    bottleneck = estimate.bottleneck.name
    layers = []
    for lp in estimate.layers:
        row = rows.get(lp.name, {})
        res = lp.cost.resources.as_dict()
        layers.append(
            {
                "name": lp.name,
                "source": lp.layer.op.source,
                "op": lp.layer.op.kind,
                "kernel": kernel_name(lp.layer.kernel),
                "in_shape": row.get("in_shape"),
                "out_shape": row.get("out_shape"),
                "w_bits": row.get("w_bits"),
                "a_bits": row.get("a_bits"),
                "out_bits": lp.layer.spec.out_bits,
                "macs": lp.layer.kernel.multiplier(lp.layer.spec).macs,
                "requant": row.get("requant"),
                "pe": lp.fold.pe,
                "simd": lp.fold.simd,
                **({"steps": list(lp.fold.steps)} if lp.fold.steps else {}),
                **({"pixels": lp.fold.pixels} if lp.fold.pixels > 1 else {}),
                # where a multiply-shift requantizer's product is built (layers that have one)
                **({"requant_product": lp.fold.requant} if "requant" in lp.layer.legal else {}),
                "cycles": lp.cost.cycles,
                "depth": lp.cost.depth,
                "multipliers": lp.cost.multipliers,
                **res,
                "bottleneck": lp.name == bottleneck,
            }
        )
    used = estimate.resources.as_dict()
    totals: dict[str, Any] = {
        "ii_cycles": estimate.ii_cycles,
        "latency_cycles": estimate.latency_cycles,
        "fps": round(estimate.fps, 3),
        "latency_us": round(estimate.latency_us, 3),
        **{k: used[k] for k in RESOURCE_KEYS},
        "macs": estimate.total_macs,
        "multipliers": estimate.multipliers,
        "multiplier_efficiency": round(estimate.multiplier_efficiency(), 4),
        "utilisation": {k: _round(v) for k, v in estimate.utilisation().items()},
        "budget": dict(estimate.budget),
        "available": dict(estimate.board.resources),
        # the kernels' figures above; the shell (DMA, interconnect, port adapters) its own line;
        # utilisation and the budget are of the whole design (the budget is the kernels' share)
        "shell": estimate.overhead.as_dict(),
        "whole_design": estimate.whole_design.as_dict(),
        "interface": estimate.interface.to_json() if estimate.interface else None,
    }
    bound = estimate.bound
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "accelgen_version": __version__,
        "estimate": True,
        "estimate_source": ESTIMATE_SOURCE,
        "model": estimate.model,
        "board": estimate.board.name,
        "board_info": estimate.board.to_json(),
        "clock_mhz": estimate.clock_mhz,
        "max_util": estimate.max_util,
        "mode": estimate.mode,
        "target_fps": estimate.target_fps,
        "layers": layers,
        "bottleneck": bottleneck,
        "totals": totals,
        "bound": {
            "ii_cycles": bound.ii_cycles,
            "macs_per_multiplier": bound.macs_per_multiplier,
            "fully_unrolled": bound.fully_unrolled,
            "relaxation": bound.relaxation,
            "gap": _round(bound.gap(estimate.ii_cycles)),
            "proven_optimal": bound.proven_optimal,
            "cost_optimal": estimate.cost_optimal,
        },
        "notes": list(estimate.notes),
        "csim": None,
        "synth": None,
    }
    if csim is not None:
        add_csim(report, csim)
    if synth is not None:
        add_synth(report, synth)
    return report


def _round(x: float) -> float | None:
    return None if not math.isfinite(x) else round(x, 4)


def add_csim(report: dict[str, Any], csim: dict[str, Any]) -> dict[str, Any]:
    """Fill the ``csim`` section: at least ``passed``, ``vectors``, ``mismatches``."""
    missing = [k for k in CSIM_KEYS if k not in csim]
    if missing:
        raise ValueError(f"csim section needs {', '.join(missing)}")
    report["csim"] = dict(sorted(csim.items()))  # the same order whether run or restored from a checkpoint
    return report


def add_synth(report: dict[str, Any], synth: dict[str, Any] | str | Path) -> dict[str, Any]:
    """Fill the ``synth`` section from a csynth.xml (path or parsed) with the estimates beside."""
    figures = parse_csynth(synth) if isinstance(synth, (str, Path)) else dict(synth)
    t = report["totals"]
    compare = {
        "ii_cycles": {"estimate": t["ii_cycles"], "synthesis": (figures.get("ii_cycles") or {}).get("max")},
        "latency_cycles": {
            "estimate": t["latency_cycles"],
            "synthesis": (figures.get("latency_cycles") or {}).get("worst"),
        },
    }
    for key in CSYNTH_RESOURCES:
        compare[key] = {"estimate": t.get(key), "synthesis": (figures.get("resources") or {}).get(key)}
    figures["compare"] = compare
    report["synth"] = figures
    return report


def add_loop_ii(report: dict[str, Any], csynth: Path, design: dict[str, Any]) -> dict[str, Any]:
    """``synth.loop_ii``: every pipelined loop's achieved II (csynth.xml and the per-module
    ``*_csynth.xml`` beside it) against the plan's, per layer of ``design`` (hls/design.json)."""
    reports = [csynth, *sorted(p for p in Path(csynth).parent.glob("*_csynth.xml") if p != Path(csynth))]
    layers = {layer["ident"]: layer["name"] for layer in design.get("layers", [])}
    report["synth"]["loop_ii"] = check_loop_ii(reports, layers)
    return report


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2) + "\n"


# ---------------------------------------------------------------------------------------
# report.md
# ---------------------------------------------------------------------------------------


def _n(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.2f}"
    return f"{int(x):,}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _shape(s: list[int] | None) -> str:
    return "x".join(map(str, s)) if s else "-"


SHELL_SOURCE = "accelgen.kernels.shell, constants in accelgen.kernels.calibration"


def render_markdown(report: dict[str, Any]) -> str:
    """report.md: summary, utilisation, per-layer table, synthesis and C-sim when present."""
    t, b, info = report["totals"], report["bound"], report["board_info"]
    bottleneck = next(la for la in report["layers"] if la["bottleneck"])
    lines = [
        f"# {report['model']} on {info['title']}",
        "",
        f"All performance and resource figures below are **estimates** from {report['estimate_source'].split(':')[0]}"
        ", not synthesis results" + (" (synthesis figures are shown beside them)." if report.get("synth") else "."),
        "",
        "| | |",
        "|---|---|",
        f"| board | {info['title']} (`{info['part']}`) |",
        f"| clock | {_n(report['clock_mhz'])} MHz |",
        f"| plan | {_mode_text(report)} |",
        f"| initiation interval | {_n(t['ii_cycles'])} cycles = {_n(t['fps'])} frames/s (estimate) |",
        f"| latency | {_n(t['latency_cycles'])} cycles = {t['latency_us']:,.2f} us (estimate) |",
        f"| bottleneck | `{bottleneck['name']}` ({bottleneck['op']}, {_n(bottleneck['cycles'])} cycles) |",
        f"| lower bound on the II | {_n(b['ii_cycles'])} cycles; gap {_pct(b['gap'])}"
        + ("; proven optimal" if b["proven_optimal"] else "")
        + " |",
        f"| multipliers | {_n(t['multipliers'])}, busy {_pct(t['multiplier_efficiency'])} of cycles "
        f"({_n(t['macs'])} MACs per frame) |",
        "",
        "The lower bound is the largest of: total MACs over the multipliers the budget affords "
        f"({_n(b['macs_per_multiplier'])}), the slowest layer fully unrolled ({_n(b['fully_unrolled'])}) and the "
        f"smallest II whose per-resource relaxation fits ({_n(b['relaxation'])}).",
        "",
        "## Utilisation (estimate)",
        "",
        f"| resource | used | budget ({report['max_util']:.0%}) | available | utilisation |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, avail in t["available"].items():
        if not avail:
            continue
        lines.append(f"| {key} | {_n(t.get(key))} | {_n(t['budget'].get(key))} | {_n(avail)} | "
                     f"{_pct(t['utilisation'].get(key))} |")  # fmt: skip
    if t.get("shell"):
        sh, whole = t["shell"], t["whole_design"]
        lines += ["", "The kernels above are the cost models' figures. The whole design is the kernels times the "
                  f"calibrated scale plus the shell and stream plumbing ({SHELL_SOURCE}); the budget above is the "
                  "kernels' share of it:", "",
                  "| resource | kernels | shell + plumbing | whole design (calibrated) |", "|---|---:|---:|---:|"]  # fmt: skip
        lines += [f"| {k} | {_n(t.get(k))} | {_n(sh[k])} | {_n(whole[k])} |" for k in ("lut", "ff", "dsp", "bram18")]
    if t.get("interface"):
        i = t["interface"]
        lines += ["", f"AXI-Stream interface: {i['bus_bits']}-bit bus, {_n(i['beats'])} beats per frame on the busiest "
                  "port (the II is at least that)."]  # fmt: skip
    lines += [
        "",
        "## Layers (estimate)",
        "",
        "| layer | op | in | out | W/A bits | pe | simd | pixels | requant product | cycles | DSP | BRAM18 | LUT | FF |",
        "|---|---|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for la in report["layers"]:
        name = f"**{la['name']}** (bottleneck)" if la["bottleneck"] else la["name"]
        bits = f"{la['w_bits'] or '-'}/{la['a_bits'] or '-'}"
        pe, simd = (la["pe"], la["simd"]) if not la.get("steps") else ("steps", "/".join(map(str, la["steps"])))
        lines.append(
            f"| {name} | {la['op']} | {_shape(la['in_shape'])} | {_shape(la['out_shape'])} | {bits} | {pe} | "
            f"{simd} | {la.get('pixels', 1)} | {la.get('requant_product', '-')} | {_n(la['cycles'])} | {_n(la['dsp'])} | {_n(la['bram18'])} | {_n(la['lut'])} | "
            f"{_n(la['ff'])} |"
        )
    lines.append(
        f"| **total** | {len(report['layers'])} layers | | | | | | | | II {_n(t['ii_cycles'])} | {_n(t['dsp'])} | "
        f"{_n(t['bram18'])} | {_n(t['lut'])} | {_n(t['ff'])} |"
    )
    if report.get("synth"):
        lines += _synth_markdown(report["synth"])
    if report.get("implementation"):
        lines += _implementation_markdown(report["implementation"])
    if report.get("csim"):
        c = report["csim"]
        lines += ["", "## C simulation", "",
                  f"{'passed' if c['passed'] else 'FAILED'}: {_n(c['vectors'])} vectors, {_n(c['mismatches'])} "
                  "mismatching elements against the golden model."]  # fmt: skip
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"* {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def _implementation_markdown(impl: dict[str, Any]) -> list[str]:
    t = impl.get("timing") or {}
    return ["", "## Vivado implementation", "",
            f"Timing {impl['timing_status']}: WNS {_n(t.get('wns_ns'))} ns, TNS {_n(t.get('tns_ns'))} ns "
            f"({_n(t.get('tns_failing_endpoints'))} failing endpoints), WHS {_n(t.get('whs_ns'))} ns."]  # fmt: skip


def _mode_text(report: dict[str, Any]) -> str:
    if report["mode"] == "target-fps":
        return f"cheapest plan reaching {report['target_fps']:g} frames/s"
    if report["mode"] == "given":
        return "the folding plan given with --folding"
    return f"smallest II within {report['max_util']:.0%} of every resource, then the fewest resources"


def _synth_markdown(s: dict[str, Any]) -> list[str]:
    lines = ["", "## Estimate and synthesis", "",
             f"Vitis HLS report `{s['source']}` (top `{s.get('top') or '?'}`, part `{s.get('part') or '?'}`, "
             f"estimated clock {_n(s.get('estimated_clock_ns'))} ns for a {_n(s.get('target_clock_ns'))} ns target).",
             "", "| | estimate | synthesis | synthesis / estimate |", "|---|---:|---:|---:|"]  # fmt: skip
    for key, pair in s["compare"].items():
        est, syn = pair["estimate"], pair["synthesis"]
        ratio = f"{syn / est:.2f}" if est and syn is not None else "-"
        lines.append(f"| {key} | {_n(est)} | {_n(syn)} | {ratio} |")
    ii = s.get("loop_ii")
    if ii:
        lines += ["", f"Pipelined loops: {ii['loops_checked']} checked against the planned II={ii['planned_ii']}"
                  + (", all at it." if ii["ok"] else f"; {len(ii['slower'])} slower (those kernels take that many "
                     "times the planned cycles):")]  # fmt: skip
        for loop in ii["slower"]:
            lines.append(f"- `{loop['module']}` loop `{loop['loop']}` (layer {loop['layer'] or '-'}): "
                         f"II {loop['ii']}, {loop['slowdown']:g}x the plan")  # fmt: skip
    return lines


# ---------------------------------------------------------------------------------------
# report.png
# ---------------------------------------------------------------------------------------


def _label(layer: dict[str, Any], width: int = 28) -> str:
    text = layer["source"] or layer["name"]
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def render_png(report: dict[str, Any]) -> bytes:
    """report.png (:func:`report_figure`). Deterministic bytes for the same report."""
    buf = io.BytesIO()
    report_figure(report).savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def report_figure(report: dict[str, Any]):
    """The figure of report.png: per-layer cycles against the II and its lower bound;
    per-layer share of the board; totals against the board and the budget. Both resource
    panels are percentages of the board's resources, so their bars compare."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    layers = report["layers"]
    t, b = report["totals"], report["bound"]
    n = len(layers)
    fig = Figure(figsize=(max(8.0, 0.42 * n + 3.0), 11.0), dpi=100)
    ax1, ax2, ax3 = fig.subplots(3, 1, gridspec_kw={"height_ratios": [3, 3, 2]})
    x = list(range(n))
    labels = [_label(la) for la in layers]
    colours = ["#d62728" if la["bottleneck"] else "#1f77b4" for la in layers]
    ax1.bar(x, [la["cycles"] for la in layers], color=colours)
    # the bound is often the II itself (a proven optimum): a thin dark line drawn over a wide pale one keeps both visible
    ax1.axhline(t["ii_cycles"], color="#f4a6a6", linestyle="-", linewidth=4, zorder=3,
                label=f"II {t['ii_cycles']:,} cycles")  # fmt: skip
    ax1.axhline(b["ii_cycles"], color="#1a7a1a", linestyle="--", linewidth=1.2, zorder=4,
                label=f"lower bound {b['ii_cycles']:,}")  # fmt: skip
    ax1.set_ylabel("cycles per frame")
    ax1.set_title(f"{report['model']} on {report['board_info']['title']} at {report['clock_mhz']:g} MHz: "
                  f"{t['fps']:,.0f} frames/s, {t['latency_us']:,.1f} us (estimates)", fontsize=10)  # fmt: skip
    ax1.set_ylim(0, 1.2 * max([la["cycles"] for la in layers] + [t["ii_cycles"], 1]))
    ax1.legend(fontsize=8, loc="upper right", ncol=2)
    ax1.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)

    avail = t["available"]
    of_board = f"% of {report['board_info']['title']} (estimate)"
    keys = [k for k in ("lut", "ff", "dsp", "bram18", "lutram") if avail.get(k)]
    width = 0.8 / max(len(keys), 1)
    top = 1.0
    for j, key in enumerate(keys):
        share = [100.0 * la[key] / avail[key] for la in layers]
        top = max([top, *share])
        ax2.bar([i + (j - (len(keys) - 1) / 2) * width for i in x], share, width=width, label=key)
    ax2.set_ylim(0, 1.3 * top)
    ax2.set_ylabel(of_board)
    ax2.set_title(f"per-layer share of the board (the budget is {report['max_util']:.0%} of it)", fontsize=10)
    ax2.legend(fontsize=8, ncol=len(keys), loc="upper right")
    ax2.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)

    shown = [k for k in avail if avail[k]]
    util = [100.0 * t.get(k, 0) / avail[k] for k in shown]
    ax3.barh(shown, util, color=["#d62728" if u > 100 * report["max_util"] else "#1f77b4" for u in util])
    ax3.axvline(100 * report["max_util"], color="#ff7f0e", linestyle="--", linewidth=1,
                label=f"budget {report['max_util']:.0%}")  # fmt: skip
    for i, u in enumerate(util):
        ax3.text(u + 0.5, i, f"{u:.1f}%", va="center", fontsize=8)
    ax3.set_xlim(0, max(105.0, max(util, default=0) + 10))
    ax3.set_xlabel(of_board)
    ax3.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# OUTDIR
# ---------------------------------------------------------------------------------------


def build_report_json(estimate: Estimate, outdir: Path, *, csim: dict[str, Any] | None, synth: dict[str, Any] | None,
                      arch: str, arch_reason: str) -> dict[str, Any]:  # fmt: skip
    """report.json of an `accelgen build` from its stages' results: ``csim`` and ``synth``
    as those stages returned them (``{"skipped": why}`` when they did not run; synth's
    ``csynth`` path is relative to ``outdir``)."""
    synth = synth or {}
    csynth = outdir / synth["csynth"] if synth.get("csynth") else None
    report = build_report(estimate, csim=csim if csim and "passed" in csim else None, synth=csynth)
    if csynth is not None and report.get("synth") and (outdir / "hls" / "design.json").is_file():
        add_loop_ii(report, csynth, json.loads((outdir / "hls" / "design.json").read_text()))
    if csim and "skipped" in csim:
        report["csim"] = {"passed": None, "vectors": 0, "mismatches": None, "skipped": csim["skipped"]}
    if synth.get("skipped"):
        report["synth_status"] = synth["skipped"]
    if synth.get("timing_status"):  # Vivado's implementation: timing summary and utilisation
        report["implementation"] = {
            k: synth.get(k) for k in ("timing", "timing_status", "utilization", "bitstream", "board_repo", "cosim")
        }
    report["arch"], report["arch_reason"] = arch, arch_reason
    report["outputs"] = {"hls": "hls/", "scripts": "scripts/", "driver": "driver/", "logs": "logs/"}
    return report


def report_files(report: dict[str, Any], plan_json: dict[str, Any]) -> dict[str, bytes]:
    """The files `accelgen dse -o` writes: folding.json, report.json, report.md, report.png."""
    return {
        "folding.json": (json.dumps(plan_json, indent=2) + "\n").encode(),
        "report.json": dumps(report).encode(),
        "report.md": render_markdown(report).encode(),
        "report.png": render_png(report),
    }


# ---------------------------------------------------------------------------------------
# --arch rtl: report.md and report.png of the fully unrolled core
# ---------------------------------------------------------------------------------------


def render_rtl_markdown(report: dict[str, Any]) -> str:
    """report.md of an ``--arch rtl`` build: summary, resources (estimate beside Yosys and
    the board), one row per layer, the simulation, notes."""
    rtl, sim = report["rtl"], report.get("csim") or {}
    info = report.get("board_info") or {"title": report["board"], "resources": {}}
    clock = float(report["clock_mhz"])
    latency, ii = rtl["latency_cycles"], rtl["ii_cycles"]
    lines = [
        f"# {report['model']} on {info['title']}: fully unrolled RTL",
        "",
        "Resource and logic-level figures marked *estimate* come from accelgen's netlist cost model "
        "(accelgen/rtl/estimate.py, fitted to Yosys); Yosys figures are shown beside them when Yosys ran.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | rtl ({report.get('arch_reason', '--arch rtl')}) |",
        f"| top module | `{rtl['top']}` (AXI-Stream, one sample per beat) |",
        f"| clock | {clock:g} MHz |",
        f"| initiation interval | {ii} cycle(s) = {clock * 1e6 / max(ii, 1):,.0f} samples/s |",
        f"| latency | {latency} cycle(s) = {latency * 1e3 / clock:,.1f} ns |",
        f"| register stages per layer | {', '.join(str(v) for v in rtl['pipeline_levels'])} |",
    ]
    timing = rtl.get("timing")
    if timing:
        stages = ", ".join(f"{v:g}" for v in timing["stage_ns"])
        verdict = "fits" if timing["meets_clock"] else "**does not fit**"
        model = timing["delay_model"]
        lines.append(f"| slowest stage per layer (estimate) | {stages} ns against the {timing['period_ns']:g} ns "
                     f"period: {verdict} ({timing['family']}: {model['ns_per_level']:g} ns per logic level + "
                     f"{model['overhead_ns']:g} ns) |")  # fmt: skip
    lines += [
        "",
        "## Resources",
        "",
        "| resource | estimate | Yosys | available |",
        "|---|---:|---:|---:|",
    ]
    avail = info.get("resources") or {}
    for key, row in rtl["resources"].items():
        have = avail.get(key) if key != "levels" else None
        lines.append(f"| {key} | {_n(row['estimate'])} | {_n(row['yosys'])} | {_n(have)} |")
    yosys = rtl.get("yosys")
    lines += ["", f"Yosys: {yosys['tool']}, `{yosys['command']}`, {yosys['seconds']} s." if yosys else
              f"Yosys: not run ({report.get('synth_status') or 'skipped'}).", ""]  # fmt: skip
    lines += [
        "## Layers",
        "",
        "| # | layer | in | out | bits in/out | requant | registers | stage path (cells) | LUT (estimate) |",
        "|---:|---|---:|---:|---|---|---:|---:|---:|",
    ]
    for i, la in enumerate(rtl.get("layers") or []):
        est = la.get("estimate") or {}
        lines.append(f"| {i} | {la['label']} | {la['in_size']} | {la['out_size']} | {la['in_bits']}/{la['out_bits']} | "
                     f"{la['requant']} | {la['registers']} | {_n(la.get('stage_cells'))} | {_n(est.get('lut'))} |")  # fmt: skip
    lines += ["", "## Simulation", ""]
    if sim.get("passed"):
        lines.append(f"{sim['simulator']}: passed, {sim['vectors']} vectors bit-exact against the golden model; "
                     f"measured latency {sim['latency_cycles']} cycles, II {sim['ii_cycles']}.")  # fmt: skip
    else:
        lines.append(f"not run ({sim.get('skipped') or 'skipped'}).")
    lines += ["", "Run it: `accelgen run OUTDIR -i X.npy -o Y.npy` (Verilator or Icarus, --backend rtl)."]
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def render_rtl_png(report: dict[str, Any]) -> bytes:
    """report.png of an ``--arch rtl`` build: per-layer LUT estimate and register-to-register
    path; estimate beside Yosys. Deterministic bytes for the same report."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    rtl = report["rtl"]
    layers = rtl.get("layers") or []
    n = len(layers)
    fig = Figure(figsize=(max(8.0, 0.6 * n + 4.0), 9.0), dpi=100)
    ax1, ax2, ax3 = fig.subplots(3, 1)
    x = list(range(n))
    labels = [la["label"] if len(la["label"]) <= 28 else "..." + la["label"][-25:] for la in layers]
    ax1.bar(x, [(la.get("estimate") or {}).get("lut", 0) for la in layers], color="#1f77b4")
    ax1.set_ylabel("LUT (estimate)")
    ax1.set_title(f"{report['model']}: fully unrolled RTL at {float(report['clock_mhz']):g} MHz, latency "
                  f"{rtl['latency_cycles']} cycles, II {rtl['ii_cycles']}", fontsize=10)  # fmt: skip
    ax1.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax2.bar(x, [la.get("stage_cells") or 0 for la in layers], color="#ff7f0e")
    ax2.set_ylabel("longest stage path (cells)")
    ax2.set_title("per-layer register-to-register path, estimate", fontsize=10)
    ax2.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    keys = list(rtl["resources"])
    est = [float(rtl["resources"][k]["estimate"] or 0) for k in keys]
    ys = [float(rtl["resources"][k]["yosys"] or 0) for k in keys]
    pos = list(range(len(keys)))
    ax3.barh([p + 0.2 for p in pos], est, height=0.4, label="estimate", color="#1f77b4")
    if any(ys):
        ax3.barh([p - 0.2 for p in pos], ys, height=0.4, label="Yosys", color="#2ca02c")
    ax3.set_yticks(pos, keys)
    ax3.set_xscale("symlog")
    ax3.legend(fontsize=8, loc="lower right")
    ax3.set_title("whole design", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def rtl_report_files(report: dict[str, Any]) -> dict[str, bytes]:
    """report.json, report.md and report.png of an ``--arch rtl`` build."""
    return {
        "report.json": (json.dumps(report, indent=2, default=str) + "\n").encode(),
        "report.md": render_rtl_markdown(report).encode(),
        "report.png": render_rtl_png(report),
    }
