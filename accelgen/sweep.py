"""`accelgen sweep`: the explorer (or whole builds) over a grid of models x boards x clocks,
each point a Ray task.

A point's result is content-keyed (:func:`point_key`: the model file's bytes, the board's
figures, the clock, the options and accelgen's version) and kept in ``OUTDIR/points/``
as soon as it arrives, so a rerun (or a sweep resumed after an interruption) reuses every
finished point and computes only the rest. Failed points are not kept: a rerun tries them
again. Ray is an optional dependency (``accelgen[sweep]``); it is imported only here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from accelgen import __version__
from accelgen.errors import AccelgenError, InputError

#: the columns of every row, in the order sweep.csv and the table show them
COLUMNS = ("model", "board", "clock_mhz", "status", "fps", "ii_cycles", "lut", "dsp", "bram18", "latency_us",
           "csim", "synth", "outdir", "reused", "seconds", "error")  # fmt: skip
#: resources the Pareto plot sets frames/s against
PARETO_RESOURCES = ("lut", "dsp")
POINTS_DIR = "points"
INSTALL_HINT = (
    "accelgen sweep runs its points on Ray, which is not installed: pip install 'accelgen[sweep]' "
    "(in a checkout: pip install -e '.[sweep]')"
)


@dataclass(frozen=True)
class SweepOptions:
    """What every point of a sweep is asked for (None: the default)."""

    max_util: float | None = None
    build: bool = False  # whole builds (C-simulation, vendor tools when installed) instead of the explorer
    requant: str = "auto"
    arithmetic: str = "reference"


@dataclass(frozen=True)
class Point:
    """One point of the grid: a model (by content), a board, a clock; ``key`` names its result."""

    model: str  # the name rows show (the file's stem)
    model_path: str
    model_sha256: str
    board: str  # the board's canonical name, or the .toml path given
    clock_mhz: float
    key: str


# ---------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------


def parse_list(text: str, what: str) -> list[str]:
    """'a,b, c' -> ['a', 'b', 'c'] (duplicates dropped); InputError for an empty list."""
    items = list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not items:
        raise InputError(f"{what}: give at least one value, comma-separated")
    return items


def parse_clocks(text: str) -> list[float]:
    """'100,150' -> [100.0, 150.0]; InputError naming the value that is not a positive MHz figure."""
    clocks = []
    for item in parse_list(text, "--clocks"):
        try:
            mhz = float(item)
        except ValueError:
            raise InputError(f"--clocks: '{item}' is not a clock in MHz (e.g. --clocks 100,150)") from None
        if not 0 < mhz < float("inf"):
            raise InputError(f"--clocks: {item} MHz is not a positive clock")
        clocks.append(mhz)
    return list(dict.fromkeys(clocks))


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def point_key(model_sha256: str, board: Any, clock_mhz: float, options: SweepOptions) -> str:
    """The content key of one point's result: the model's bytes, the board's figures, the
    clock, the options and accelgen's version (any change computes the point anew)."""
    from accelgen.config import resolve_plan_options

    _, clock, _, max_util, _ = resolve_plan_options(board, clock_mhz, options.max_util)
    what = {
        "model_sha256": model_sha256,
        "board": board.to_json(),
        "clock_mhz": clock,
        "options": {**asdict(options), "max_util": max_util},
        "accelgen_version": __version__,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def make_grid(models: Iterable[str], boards: Iterable[str], clocks: Iterable[float],
              options: SweepOptions) -> list[Point]:  # fmt: skip
    """Every (model, board, clock) point, in that order; InputError for a missing model file,
    an unknown board, two models of the same name or a bad --max-util."""
    from accelgen.boards import check_max_util, get_board

    if options.max_util is not None:
        check_max_util(options.max_util)
    files = [_model_file(m) for m in models]
    boards = list(boards)
    names = [Path(m).stem for m in files]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"two models named {', '.join(dup)}: rows name models by file name; rename one")
    resolved = {}  # label -> Board: an alias and its board's name are one board
    for given in boards:
        board = get_board(given)
        resolved.setdefault(given if given.endswith(".toml") else board.name, board)
    grid = []
    for path, name in zip(files, names):
        digest = _file_sha256(Path(path))
        for label, board in resolved.items():
            for clock in clocks:
                key = point_key(digest, board, clock, options)
                grid.append(Point(name, str(Path(path).resolve()), digest, label, float(clock), key))
    return grid


def _model_file(model: str) -> str:
    """The model's path, once it reads as an ONNX model (InputError naming the file otherwise)."""
    from accelgen.frontend import load_model

    if not Path(model).is_file():
        raise InputError(f"{model}: no such model file")
    load_model(model)
    return model


# ---------------------------------------------------------------------------------------
# One point (runs in a Ray worker: plain data in, plain data out)
# ---------------------------------------------------------------------------------------


def row_from_report(report: dict[str, Any]) -> dict[str, Any]:
    """A row's figures from a report.json document (`accelgen dse` and `accelgen build` write
    the same totals): resources are the whole design's (kernels plus shell), estimates."""
    t = report["totals"]
    whole = t.get("whole_design") or t
    return {
        "fps": t["fps"],
        "ii_cycles": t["ii_cycles"],
        "latency_us": t["latency_us"],
        "lut": whole["lut"],
        "dsp": whole["dsp"],
        "bram18": whole["bram18"],
    }


def evaluate_point(point: dict[str, Any], model_bytes: bytes, options: dict[str, Any], build_root: str | None) -> dict:
    """Explore (or build) one point; a row with ``status`` "ok", or "failed" and its error.

    ``model_bytes`` travel with the task, so the workers of a cluster need not see the
    driver's files. Never raises for a point that fails: the rest of the sweep goes on.
    """
    t0 = time.perf_counter()
    row = {"model": point["model"], "board": point["board"], "clock_mhz": point["clock_mhz"]}
    try:
        opts = SweepOptions(**options)
        with tempfile.TemporaryDirectory(prefix="accelgen-sweep-") as tmp:
            model = Path(tmp) / f"{point['model']}.onnx"  # reports and builds are named after the stem
            model.write_bytes(model_bytes)
            if opts.build:
                row.update(_build_point(point, model, opts, build_root))
            else:
                row.update(row_from_report(_explore_point(point, model, opts)))
        row.update(status="ok", error=None)
    except AccelgenError as exc:
        row.update(status="failed", error=str(exc))
    except Exception as exc:  # a bug in one point must not lose the others; say what it was
        row.update(status="failed", error=f"internal error: {type(exc).__name__}: {exc}")
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return row


def _explore_point(point: dict, model: Path, opts: SweepOptions) -> dict:
    """What `accelgen dse MODEL --board B --clock C [--max-util F]` computes, as report.json."""
    from accelgen.config import CompileConfig, resolve_plan_options
    from accelgen.dse import explore
    from accelgen.pipeline import compile_model
    from accelgen.report import build_report

    board, clock, _, max_util, _ = resolve_plan_options(point["board"], point["clock_mhz"], opts.max_util)
    compiled = compile_model(model, CompileConfig(requant=opts.requant, arithmetic=opts.arithmetic))
    estimate = explore(compiled.graph, board, max_util=max_util, clock_mhz=clock, model=model.stem)
    return build_report(estimate)


def _build_point(point: dict, model: Path, opts: SweepOptions, build_root: str | None) -> dict:
    """What `accelgen build` makes of the point (C-simulation; Vitis/Vivado when on PATH),
    into ``build_root/<model>_<board>_<clock>MHz``: the row's figures from its report.json,
    what C-simulation and synthesis did, and the build's directory."""
    from accelgen.config import BuildOptions
    from accelgen.pipeline import build

    name = f"{model.stem}_{Path(point['board']).stem}_{point['clock_mhz']:g}MHz"
    outdir = Path(build_root or tempfile.gettempdir()) / name
    options = BuildOptions(board=point["board"], clock_mhz=point["clock_mhz"], max_util=opts.max_util,
                           requant=opts.requant, arithmetic=opts.arithmetic)  # fmt: skip
    report = build(model, outdir, options).report
    csim = report.get("csim") or {}
    passed = f"passed, {csim.get('vectors')} vectors bit-exact" if csim.get("passed") else None
    return {
        **row_from_report(report),
        "csim": passed or csim.get("skipped", "not run"),
        "synth": "done (Vitis figures in report.md)" if report.get("synth") else report.get("synth_status", "not run"),
        "outdir": str(outdir),
    }


# ---------------------------------------------------------------------------------------
# The sweep: cached points reused, the rest as Ray tasks
# ---------------------------------------------------------------------------------------


def import_ray():
    """The ray module, or InputError (exit 2) saying how to install the extra."""
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return ray


def _local_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def start_ray(ray, address: str | None) -> bool:
    """Connect to ``address``, or start a local Ray sized to this machine; quiet (no
    dashboard, no worker output or Ray logging on the terminal). Returns whether this call
    started it (then the caller shuts it down); an already initialised Ray is used as is."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage-statistics banner on the terminal
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if not address:
        ray.init(num_cpus=_local_cpus(), include_dashboard=False, **quiet)
        return True
    _check_reachable(address)
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError(f"--address {address}: cannot connect to a Ray cluster there ({exc})") from None
    return True


def _check_reachable(address: str) -> None:
    """InputError at once when a HOST:PORT address refuses connections (Ray itself retries
    for minutes); ``auto`` and ``ray://`` addresses are left to Ray."""
    import socket

    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as exc:
        raise InputError(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
                         "start one (ray start --head) or give its address") from None  # fmt: skip


def _cached(outdir: Path, key: str) -> dict | None:
    try:
        row = json.loads((outdir / POINTS_DIR / f"{key}.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return row if isinstance(row, dict) and row.get("status") == "ok" and row.get("key") == key else None


def _keep(outdir: Path, row: dict) -> None:
    from accelgen.workspace import write_atomic

    write_atomic(outdir / POINTS_DIR / f"{row['key']}.json", json.dumps(row, indent=1, sort_keys=True) + "\n")


Progress = Callable[[int, int, dict | None], None]


def run_sweep(grid: list[Point], outdir: str | Path, options: SweepOptions, *, address: str | None = None,
              progress: Progress | None = None, evaluate: Callable[..., dict] = evaluate_point) -> list[dict]:  # fmt: skip
    """Every point's row, in grid order: reused from ``outdir/points/`` when its key is
    there, else computed by ``evaluate`` as a Ray task (kept as soon as it arrives).
    ``progress(done, total, row)`` after each point (row None at the start)."""
    ray = import_ray()
    outdir = Path(outdir)
    (outdir / POINTS_DIR).mkdir(parents=True, exist_ok=True)
    rows: list[dict | None] = [_reused(outdir, p) for p in grid]
    todo = [i for i, r in enumerate(rows) if r is None]
    done = len(grid) - len(todo)
    if progress:
        progress(done, len(grid), None)
    if not todo:
        return rows  # type: ignore[return-value]
    started = start_ray(ray, address)
    try:
        pending = _submit(ray, grid, todo, options, outdir, evaluate)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ready[0])
            rows[i] = _collect(ray, ready[0], grid[i])
            if rows[i]["status"] == "ok":
                _keep(outdir, rows[i])
            done += 1
            if progress:
                progress(done, len(grid), rows[i])
    finally:
        if started:
            ray.shutdown()
    return rows  # type: ignore[return-value]


def _reused(outdir: Path, point: Point) -> dict | None:
    row = _cached(outdir, point.key)
    return None if row is None else {**row, "reused": True}


def _submit(ray, grid: list[Point], todo: list[int], options: SweepOptions, outdir: Path, evaluate) -> dict:
    """One Ray task per point to compute; each model's bytes put in the object store once."""
    task = ray.remote(num_cpus=1, max_retries=0)(_in_worker)
    blobs = {}
    pending = {}
    build_root = str((outdir / "builds").resolve())
    for i in todo:
        p = grid[i]
        if p.model_sha256 not in blobs:
            blobs[p.model_sha256] = ray.put(Path(p.model_path).read_bytes())
        ref = task.remote(evaluate, asdict(p), blobs[p.model_sha256], asdict(options), build_root)
        pending[ref] = i
    return pending


def _in_worker(evaluate: Callable[..., dict], *args) -> dict:
    """The Ray task: ``evaluate`` (any picklable callable, e.g. a partial) on one point."""
    return evaluate(*args)


def _collect(ray, ref, point: Point) -> dict:
    """The task's row, or a failed row when the task itself died (a crashed worker)."""
    try:
        row = ray.get(ref)
    except ray.exceptions.RayError as exc:
        row = {"model": point.model, "board": point.board, "clock_mhz": point.clock_mhz, "status": "failed",
               "error": f"the Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}  # fmt: skip
    return {**{c: None for c in COLUMNS}, **row, "key": point.key, "reused": False}


# ---------------------------------------------------------------------------------------
# Results: the document, the CSV, the Pareto fronts
# ---------------------------------------------------------------------------------------


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, fps) no other point beats: none costs at most as much and
    runs at least as fast, better in one of the two. Cheapest first."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front, best = [], -float("inf")
    for i in order:
        if points[i][1] > best:  # faster than everything at most as cheap
            front.append(i)
            best = points[i][1]
    return front


def fronts(rows: list[dict]) -> dict[str, dict[str, list[int]]]:
    """Per board and per resource of :data:`PARETO_RESOURCES`: the row indices on the front."""
    out: dict[str, dict[str, list[int]]] = {}
    for board in dict.fromkeys(r["board"] for r in rows):
        ok = [i for i, r in enumerate(rows) if r["board"] == board and r["status"] == "ok"]
        if not ok:
            continue
        out[board] = {}
        for res in PARETO_RESOURCES:
            front = pareto_front([(rows[i][res], rows[i]["fps"]) for i in ok])
            out[board][res] = [ok[j] for j in front]
    return out


def sweep_document(rows: list[dict], grid: list[Point], options: SweepOptions) -> dict[str, Any]:
    """sweep.json (and what --json prints): the rows, the grid's options, the Pareto fronts."""
    return {
        "accelgen_version": __version__,
        "options": asdict(options),
        "models": list(dict.fromkeys(p.model for p in grid)),
        "boards": list(dict.fromkeys(p.board for p in grid)),
        "clocks_mhz": list(dict.fromkeys(p.clock_mhz for p in grid)),
        "rows": [{c: r.get(c) for c in (*COLUMNS, "key")} for r in rows],
        "failed": sum(r["status"] != "ok" for r in rows),
        "pareto": fronts(rows),
        "resources": "whole design (kernels plus shell), accelgen's estimates",
    }


def render_csv(rows: list[dict]) -> str:
    """sweep.csv: one line per point, :data:`COLUMNS` (empty cells for a failed point's figures)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: "" if r.get(c) is None else r[c] for c in COLUMNS})
    return buf.getvalue()


def write_results(outdir: str | Path, document: dict[str, Any]) -> list[str]:
    """sweep.json, sweep.csv and sweep.png in ``outdir``, each written atomically."""
    from accelgen.render import render_sweep_png
    from accelgen.workspace import write_atomic

    outdir = Path(outdir)
    write_atomic(outdir / "sweep.json", json.dumps(document, indent=2) + "\n")
    write_atomic(outdir / "sweep.csv", render_csv(document["rows"]))
    write_atomic(outdir / "sweep.png", render_sweep_png(document))
    return ["sweep.json", "sweep.csv", "sweep.png"]
