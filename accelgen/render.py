"""How the command line shows its results: rich tables and progress lines on the console.

Reads only the plain data the commands produce (report.json content, the inspect
summary, board files); :mod:`accelgen.cli` parses arguments and calls these.
"""

from __future__ import annotations

import sys

from accelgen.config import AUTO_ARCH_RULE, AUTO_ARCH_SHORT


def make_console(stderr: bool = False):
    """A rich console: the terminal's width, or 200 columns when the output is not a terminal."""
    from rich.console import Console

    return Console(stderr=stderr, width=None if sys.stdout.isatty() else 200)


def print_inspect(info: dict) -> None:
    """`accelgen inspect`: the layer table, tensor-train layers, the host's ops."""
    from rich.table import Table

    console = make_console()
    table = Table(title=f"{info['model']}  ({info['dialect']} dialect)", title_justify="left")
    for col, just in (("layer", "left"), ("op", "left"), ("in", "right"), ("out", "right"),
                      ("weights", "left"), ("input", "left"), ("output", "left"), ("MACs", "right"),
                      ("weight bytes", "right"), ("requant", "left")):  # fmt: skip
        table.add_column(col, justify=just, no_wrap=True)
    for r in info["layers"]:
        table.add_row(
            r["source"], r["op"], "x".join(map(str, r["in_shape"])), "x".join(map(str, r["out_shape"])),
            r["w_type"] or "-", r["a_type"] or "-", r["out_type"], f"{r['macs']:,}",
            f"{r['weight_bytes']:,}", r["requant"],
        )  # fmt: skip
    t = info["totals"]
    table.add_section()
    table.add_row("total", f"{t['layers']} layers", "", "", "", "", "", f"{t['macs']:,}", f"{t['weight_bytes']:,}", "")
    console.print(table)
    for r in info["layers"]:
        if "tt" in r:
            tt = r["tt"]
            console.print(
                f"tensor-train layer {r['source']}: modes {'x'.join(map(str, tt['modes_in']))} -> "
                f"{'x'.join(map(str, tt['modes_out']))}, ranks {'-'.join(map(str, tt['ranks']))}, order "
                f"{tuple(tt['order'])}, cores {'/'.join(f'{b}b' for b in tt['core_bits'])}, states "
                f"{'/'.join(f'{b}b' for b in tt['state_bits']) or '-'}; {tt['params']:,} parameters vs "
                f"{tt['dense_params']:,} dense ({tt['compression']:.1f}x fewer)"
            )
    host = info["host"]
    console.print("host prologue: " + (", ".join(host["prologue"]) or "none"))
    console.print("host epilogue: " + (", ".join(host["epilogue"]) or "none (the hardware writes the outputs)"))


def print_dse(report: dict) -> None:
    """`accelgen dse`: the per-layer plan, bottleneck, bound and utilisation."""
    from rich.table import Table

    console = make_console()
    t, b, info = report["totals"], report["bound"], report["board_info"]
    table = Table(title=f"{report['model']} on {info['title']} at {report['clock_mhz']:g} MHz  (estimates)",
                  title_justify="left")  # fmt: skip
    cols = ("layer", "op", "in", "out", "W/A", "pe", "simd", "px", "rq", "cycles", "DSP", "BRAM18", "LUT", "FF")
    for col in cols:
        table.add_column(col, justify="left" if col in ("layer", "op") else "right", no_wrap=True)
    for la in report["layers"]:
        style = "bold red" if la["bottleneck"] else None
        table.add_row(
            la["source"] or la["name"], la["op"], "x".join(map(str, la["in_shape"] or [])),
            "x".join(map(str, la["out_shape"] or [])), f"{la['w_bits'] or '-'}/{la['a_bits'] or '-'}",
            str(la["pe"]), str(la["simd"]), str(la.get("pixels", 1)), la.get("requant_product", "-"),
            f"{la['cycles']:,}", f"{la['dsp']:,}", f"{la['bram18']:,}",
            f"{la['lut']:,}", f"{la['ff']:,}", style=style,
        )  # fmt: skip
    table.add_section()
    table.add_row("total", f"{len(report['layers'])} layers", "", "", "", "", "", "", "", f"II {t['ii_cycles']:,}",
                  f"{t['dsp']:,}", f"{t['bram18']:,}", f"{t['lut']:,}", f"{t['ff']:,}")  # fmt: skip
    console.print(table)
    bn = next(la for la in report["layers"] if la["bottleneck"])
    console.print(f"bottleneck: {bn['source'] or bn['name']} ({bn['op']}, {bn['cycles']:,} cycles)")
    console.print(f"estimate: II {t['ii_cycles']:,} cycles = {t['fps']:,.1f} frames/s; latency "
                  f"{t['latency_cycles']:,} cycles = {t['latency_us']:,.2f} us")  # fmt: skip
    if report["mode"] == "target-fps":
        limit = int(report["clock_mhz"] * 1e6 // report["target_fps"])
        console.print(f"target: {report['target_fps']:,.0f} frames/s = II <= {limit:,} cycles; the cheapest plan "
                      f"reaching it (the lower bound on the II is {b['ii_cycles']:,} cycles)")  # fmt: skip
    else:
        gap = f"gap {100 * b['gap']:.1f}%" if b["gap"] is not None else ""
        console.print(f"lower bound on the II: {b['ii_cycles']:,} cycles ({gap}"
                      + (", proven optimal)" if b["proven_optimal"] else ")"))  # fmt: skip
    whole = t.get("whole_design") or t  # the kernels (calibrated) plus the shell and plumbing line
    if t.get("shell"):
        shell = ", ".join(f"{k} {t['shell'][k]:,}" for k in ("lut", "ff", "dsp", "bram18"))
        console.print(f"shell + plumbing (estimate, accelgen.kernels.shell): {shell}")
    util = ", ".join(f"{k} {whole[k]:,}/{n:,} ({100 * whole[k] / n:.1f}%)" for k, n in t["available"].items() if n)
    console.print(f"utilisation of the whole design (estimate, budget {report['max_util']:.0%}): {util}")
    for note in report["notes"]:
        console.print(f"note: {note}")


def print_boards(boards: dict) -> None:
    """`accelgen boards`: one row per board file."""
    from rich.table import Table

    console = make_console()
    table = Table(title="boards", title_justify="left")
    for col in ("board", "aliases", "part", "PS", "clock MHz", "LUT", "FF", "DSP", "BRAM18", "URAM", "DDR GB/s"):
        table.add_column(col, justify="left" if col in ("board", "aliases", "part", "PS") else "right", no_wrap=True)
    for b in boards.values():
        r = b.resources
        table.add_row(b.name, ", ".join(b.aliases) or "-", b.part, b.processing_system, f"{b.default_clock_mhz:g}",
                      f"{r['lut']:,}", f"{r['ff']:,}", f"{r['dsp']:,}", f"{r['bram18']:,}", f"{r['uram']:,}",
                      f"{b.ddr_bandwidth_gbps:g}")  # fmt: skip
    console.print(table)


class BuildProgress:
    """One line per stage; a spinner while a stage runs (on a terminal)."""

    MARKS = {"done": "[green]done[/]", "reused": "[cyan]reused[/]", "skipped": "[yellow]skipped[/]"}

    def __init__(self, console) -> None:
        self.console = console
        self.status = None

    def __call__(self, stage: str, state: str, detail: str) -> None:
        if state == "start":
            self.status = self.console.status(f"[bold]{stage}[/]: {detail} ...")
            self.status.start()
            return
        self.stop()
        self.console.print(f"{stage:>9s}  {self.MARKS.get(state, state):<8s}  {detail}")

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def print_build_summary(console, design) -> None:
    """`accelgen build`: what was built, estimated, verified and written."""
    from rich.table import Table

    r = design.report
    if r.get("arch") == "rtl":
        _print_rtl_summary(console, design)
        return
    t = r["totals"]
    table = Table(title=f"{r['model']} on {r['board_info']['title']} at {r['clock_mhz']:g} MHz", title_justify="left",
                  show_header=False)  # fmt: skip
    table.add_column("", no_wrap=True)
    table.add_column("", no_wrap=True)
    if r.get("arch"):
        why = AUTO_ARCH_SHORT if r.get("arch_reason") == AUTO_ARCH_RULE else r.get("arch_reason")
        table.add_row("architecture", f"{r['arch']} ({why})")
    table.add_row("initiation interval", f"{t['ii_cycles']:,} cycles = {t['fps']:,.0f} frames/s (estimate)")
    table.add_row("latency", f"{t['latency_cycles']:,} cycles = {t['latency_us']:,.2f} us (estimate)")
    used = t.get("whole_design") or t  # the kernels with the stream plumbing and the shell, as `dse` prints
    util = ", ".join(
        f"{k} {used[k]:,} ({100 * used[k] / n:.1f}%)" for k, n in t["available"].items() if n and k in used
    )
    table.add_row("resources", util + (" (estimate, whole design)" if "whole_design" in t else " (estimate)"))
    csim = r.get("csim") or {}
    if csim.get("passed"):
        table.add_row("C-simulation", f"[green]passed[/]: {csim['vectors']} vectors bit-exact against the golden model")
    else:
        table.add_row("C-simulation", f"skipped: {csim['skipped']}" if csim.get("skipped") else "not run")
    synth = "Vitis figures beside the estimates in report.md" if r.get("synth") else None
    table.add_row("synthesis", synth or f"skipped: {r.get('synth_status', 'not run')}")
    out = design.outdir
    table.add_row(
        "output", f"{out}/: README.md (next steps), report.md, report.png, folding.json, hls/, scripts/, driver/, logs/"
    )
    console.print(table)


def _print_rtl_summary(console, design) -> None:
    """`accelgen build --arch rtl`: the core, its simulation, resources beside Yosys and the board."""
    from rich.table import Table

    r = design.report
    sim, rtl = r.get("csim") or {}, r.get("rtl") or {}
    info = r.get("board_info") or {"title": r.get("board"), "resources": {}}
    clock = float(r["clock_mhz"])
    table = Table(title=f"{r['model']} on {info['title']} at {clock:g} MHz", title_justify="left", show_header=False)
    table.add_column("", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_row("architecture", f"rtl: fully unrolled ({r.get('arch_reason') or '--arch rtl'})")
    latency, ii = rtl.get("latency_cycles"), rtl.get("ii_cycles")
    if latency is not None and ii:
        table.add_row("throughput", f"one sample every {ii:g} cycle(s) = {clock * 1e6 / ii:,.0f} samples/s")
        table.add_row("latency", f"{latency} cycles = {latency * 1e3 / clock:,.1f} ns")
    if sim.get("passed"):
        table.add_row("simulation", f"[green]passed[/] ({sim['simulator']}): {sim['vectors']} vectors bit-exact "
                      f"against the golden model; measured latency {sim['latency_cycles']} cycles")  # fmt: skip
    else:
        table.add_row("simulation", f"skipped: {sim['skipped']}" if sim.get("skipped") else "not run")
    for key, figures in _rtl_resources(rtl.get("resources") or {}, info.get("resources") or {}):
        table.add_row(key, figures)
    table.add_row("output", f"{design.outdir}/: README.md (next steps), report.md, report.png, rtl/ "
                  f"(run it: accelgen run {design.outdir} -i X.npy -o Y.npy)")  # fmt: skip
    console.print(table)
    for note in r.get("notes", []):
        console.print(f"note: {note}")


def _rtl_resources(resources: dict, available: dict) -> list[tuple[str, str]]:
    """One row per resource: Yosys' figure (when it ran) beside the estimate, and the share
    of the board (``lut``: ``17,288 (Yosys), 21,333 (estimate): 32.5% of 53,200``)."""
    rows = []
    for key, row in resources.items():
        yosys, estimate = row.get("yosys"), row.get("estimate")
        figures = [f"{v:,} ({who})" for v, who in ((yosys, "Yosys"), (estimate, "estimate")) if v is not None]
        have = available.get(key) if key != "levels" else None
        used = yosys if yosys is not None else estimate
        share = f": {100 * used / have:.1f}% of {have:,}" if have and used is not None else ""
        name = "logic levels" if key == "levels" else key
        rows.append((name, (", ".join(figures) or "-") + share))
    return rows


# -- accelgen sweep ---------------------------------------------------------------------------


def print_sweep(document: dict) -> None:
    """`accelgen sweep`: one row per point (reused ones marked), then each failure's error."""
    from rich.markup import escape
    from rich.table import Table

    console = make_console()
    table = Table(title=f"sweep: {len(document['rows'])} points (estimates)", title_justify="left")
    for col in ("model", "board", "MHz", "status", "frames/s", "II", "LUT", "DSP", "BRAM18", ""):
        table.add_column(col, justify="left" if col in ("model", "board", "status", "") else "right", no_wrap=True)
    for r in document["rows"]:
        ok = r["status"] == "ok"
        figures = (
            [f"{r['fps']:,.1f}", *(f"{r[k]:,}" for k in ("ii_cycles", "lut", "dsp", "bram18"))] if ok else ["-"] * 5
        )
        table.add_row(escape(r["model"]), escape(r["board"]), f"{r['clock_mhz']:g}", "ok" if ok else "[red]failed[/]", *figures,
                      "reused" if r.get("reused") else "")  # fmt: skip
    console.print(table)
    for r in document["rows"]:
        if r["status"] != "ok":
            where = escape(f"{r['model']} on {r['board']} at {r['clock_mhz']:g} MHz: {r['error']}")
            console.print(f"[red]failed[/] {where}", highlight=False)


class SweepProgress:
    """A progress bar of points done / total on stderr; a line per failed point."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = make_console(stderr=True)
        self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("points"),
                            TimeElapsedColumn(), console=self.console, transient=False)  # fmt: skip
        self.task = None

    def __call__(self, done: int, total: int, row: dict | None) -> None:
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("sweep", total=total, completed=done)
        self.bar.update(self.task, completed=done)
        if row is not None and row["status"] != "ok":
            where = f"{row['model']} on {row['board']} at {row['clock_mhz']:g} MHz"
            self.bar.console.print(f"failed: {where}", markup=False, highlight=False)

    def stop(self) -> None:
        if self.task is not None:
            self.bar.stop()


def sweep_figure(document: dict):
    """The Pareto plot of a sweep: one row of panels per board, frames/s against LUT and
    against DSP; every fitting point plotted, the front (sweep.json's ``pareto``) drawn as a
    line. A matplotlib Figure (Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    from accelgen.sweep import PARETO_RESOURCES

    rows, fronts = document["rows"], document["pareto"]
    boards = list(fronts) or ["(no point fits)"]
    fig = Figure(figsize=(5.0 * len(PARETO_RESOURCES), 3.6 * len(boards)), dpi=100)
    axes = fig.subplots(len(boards), len(PARETO_RESOURCES), squeeze=False)
    for axes_row, board in zip(axes, boards):
        for ax, res in zip(axes_row, PARETO_RESOURCES):
            _pareto_panel(ax, rows, board, res, fronts.get(board, {}).get(res, []))
    fig.tight_layout()
    return fig


def _pareto_panel(ax, rows: list[dict], board: str, res: str, front: list[int]) -> None:
    ok = [r for r in rows if r["board"] == board and r["status"] == "ok"]
    for model in dict.fromkeys(r["model"] for r in ok):
        mine = [r for r in ok if r["model"] == model]
        ax.scatter([r[res] for r in mine], [r["fps"] for r in mine], s=24, label=model)
    if front:
        ax.plot([rows[i][res] for i in front], [rows[i]["fps"] for i in front], color="#d62728", linestyle="--",
                marker="o", markerfacecolor="none", markersize=9, linewidth=1, label="Pareto front")  # fmt: skip
    ax.set_xlabel(f"{res.upper()} (whole design, estimate)")
    ax.set_ylabel("frames/s (estimate)")
    fps = [r["fps"] for r in ok if r["fps"] > 0]
    if fps and max(fps) > 20 * min(fps):  # models decades apart: each readable on a log axis
        ax.set_yscale("log")
    ax.set_title(f"{board}: frames/s against {res.upper()}", fontsize=10)
    if ok:
        ax.legend(fontsize=7, loc="best")


def render_sweep_png(document: dict) -> bytes:
    """sweep.png: :func:`sweep_figure` as PNG bytes."""
    import io

    buf = io.BytesIO()
    sweep_figure(document).savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
