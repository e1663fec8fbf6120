"""The stage runner of `accelgen build`: timing, per-stage logs, reuse and progress.

A :class:`Stage` is a name, a function of the :class:`BuildContext`, the paths it may
write (``outputs``: files or directories under OUTDIR) and, for expensive stages, a content
key. The runner records the files each stage actually created or changed; a stage that
writes outside its declared outputs is an internal error. When the previous build of the
same OUTDIR recorded the same key, the files that stage wrote then are copied back and its
recorded result restored instead of running it again, so a reused stage leaves exactly
what a fresh run would. The list of stages itself lives in :mod:`accelgen.pipeline`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelgen.errors import InternalError
from accelgen.workspace import Workspace


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[BuildContext], Any]
    #: the paths (files or directories, relative to OUTDIR) the stage may write; its own
    #: log (logs/<name>.log) is always allowed
    outputs: tuple[str, ...] = ()
    #: content hash of everything the stage depends on; None: always run (cheap stages)
    key: Callable[[BuildContext], str] | None = None
    #: put a recorded result back into the context when the stage is reused
    restore: Callable[[BuildContext, Any], None] | None = None
    #: a line for the progress display
    title: str = ""


@dataclass
class BuildContext:
    """Everything a build knows, filled in stage by stage."""

    model_path: Path
    options: Any
    ws: Workspace
    results: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    log: logging.Logger | None = None
    # what the stages produce, in order
    compiled: Any = None
    board: Any = None
    estimate: Any = None
    plan: Any = None
    vectors: Any = None
    labels: Any = None
    report: dict[str, Any] | None = None
    rtl_codes: Any = None

    @property
    def path(self) -> Path:
        """Where stages write (the build's temporary directory until it is committed)."""
        return self.ws.path


#: progress callback: (stage, state, detail); state is "start", "done", "reused" or "skipped"
Progress = Callable[[str, str, str], None]


def run_stages(ctx: BuildContext, stages: list[Stage], progress: Progress | None = None) -> None:
    """Run (or reuse) every stage in order; a failure propagates after its log is closed."""
    notify = progress or (lambda *a: None)
    for stage in stages:
        notify(stage.name, "start", stage.title)
        key = stage.key(ctx) if stage.key is not None else None
        record = ctx.ws.reusable(stage.name, key) if key is not None else None
        t0 = time.perf_counter()
        before = snapshot(ctx.path)
        ctx.log = _stage_logger(ctx.ws.log_path(stage.name), stage.name)
        try:
            if record is not None:
                ctx.ws.restore(record["files"])
                result = record["result"]
                if stage.restore is not None:
                    stage.restore(ctx, result)
                ctx.log.info("reused from the previous build (inputs unchanged, key %s)", key[:12])
                state = "reused"
            else:
                result = stage.run(ctx)
                state = "skipped" if isinstance(result, Skipped) else "done"
                if isinstance(result, Skipped):
                    ctx.log.info("skipped: %s", result.reason)
                    result = {"skipped": result.reason}
            ctx.log.info("%s in %.2f s", state, time.perf_counter() - t0)
        finally:
            _close(ctx.log)
        written = written_files(before, snapshot(ctx.path))
        check_outputs(stage, written)
        ctx.timings[stage.name] = time.perf_counter() - t0
        ctx.results[stage.name] = result
        ctx.status[stage.name] = state
        if key is not None:
            ctx.ws.record(stage.name, key, result, [f for f in written if f != _log_rel(stage.name)])
        notify(stage.name, state, _detail(result, ctx.timings[stage.name]))


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (relative path -> size, modification time in ns)."""
    found = {}
    for p in root.rglob("*"):
        if p.is_file() or p.is_symlink():
            st = p.lstat()
            found[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return found


def written_files(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """The files created or changed between two snapshots, sorted."""
    return sorted(rel for rel, stat in after.items() if before.get(rel) != stat)


def check_outputs(stage: Stage, written: list[str]) -> None:
    """A stage writes only its declared outputs (and its own log): anything else is a bug,
    since a reused stage would not restore it."""
    allowed = (*stage.outputs, _log_rel(stage.name))
    stray = [f for f in written if not any(f == o or f.startswith(o.rstrip("/") + "/") for o in allowed)]
    if stray:
        raise InternalError(
            f"build stage '{stage.name}' wrote {', '.join(stray[:5])}{' ...' if len(stray) > 5 else ''} outside its "
            f"declared outputs ({', '.join(stage.outputs) or 'none'}); declare them in accelgen/pipeline.py"
        )


def _log_rel(stage: str) -> str:
    return f"logs/{stage}.log"


@dataclass(frozen=True)
class Skipped:
    """A stage's result when it did not apply (no vendor tools, --no-csim, ...)."""

    reason: str


def _detail(result: Any, seconds: float) -> str:
    if isinstance(result, dict) and "skipped" in result:
        return result["skipped"]
    return f"{seconds:.1f} s"


def _stage_logger(path: Path, name: str) -> logging.Logger:
    logger = logging.getLogger(f"accelgen.build.{name}.{id(path)}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # opened at the first message: a stage may replace its log file before it logs (csim does)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    return logger


def _close(logger: logging.Logger | None) -> None:
    if logger is None:
        return
    for h in list(logger.handlers):
        h.close()
        logger.removeHandler(h)
