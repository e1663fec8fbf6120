"""The stage runner of `accelgen build`: timing, per-stage logs, reuse and progress.

A :class:`Stage` is a name, a function of the :class:`BuildContext`, the files it writes
and, for expensive stages, a content key: when the previous build of the same OUTDIR
recorded the same key, its files are copied and its recorded result restored instead of
running the stage again. The list of stages itself lives in :mod:`accelgen.pipeline`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelgen.workspace import Workspace


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[BuildContext], Any]
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
    for stage in stages:
        notify = progress or (lambda *a: None)
        notify(stage.name, "start", stage.title)
        key = stage.key(ctx) if stage.key is not None else None
        record = ctx.ws.reusable(stage.name, key, list(stage.outputs)) if key is not None else None
        t0 = time.perf_counter()
        ctx.log = _stage_logger(ctx.ws.log_path(stage.name), stage.name)
        try:
            if record is not None:
                ctx.ws.restore(stage.name, list(stage.outputs))
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
        finally:
            _close(ctx.log)
        ctx.timings[stage.name] = time.perf_counter() - t0
        ctx.results[stage.name] = result
        ctx.status[stage.name] = state
        if key is not None:
            ctx.ws.record(stage.name, key, result)
        notify(stage.name, state, _detail(result, ctx.timings[stage.name]))


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
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    return logger


def _close(logger: logging.Logger | None) -> None:
    if logger is None:
        return
    for h in list(logger.handlers):
        h.close()
        logger.removeHandler(h)
