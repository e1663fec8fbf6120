"""OUTDIR/driver: what a board needs to run the design, and nothing from the compiler.

* ``accelgen_runtime/`` a copy of :mod:`accelgen.runtime` (numpy + pynq only);
* ``program.json`` + ``program.npz`` the lowered graph (host prologue, the integer layers
  for the golden backend, host epilogue);
* ``accel.json`` interface metadata: shapes, quantization, packing, register map, and
  ``hardware.dma_max_transfer_bytes``, the longest DMA transfer the block design's length
  register allows (the driver splits a batch into transfers of at most that many bytes);
* ``vectors/`` test inputs, the golden outputs (and labels when given);
* ``notebook.ipynb`` and ``run_accelerator.py`` generated from templates/driver/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from accelgen import __version__, golden, ir, vendor
from accelgen.runtime import save_program
from accelgen.runtime.accelerator import Partition
from accelgen.templating import environment

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
LATENCY_RUNS = 1000


def percent_to_ipynb(source: str) -> dict[str, Any]:
    """A notebook from percent-format Python (``# %%`` code, ``# %% [markdown]`` cells)."""
    cells: list[dict[str, Any]] = []
    kind, lines = None, []

    def flush() -> None:
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
        src = [line + "\n" for line in body.splitlines()]
        if src:
            src[-1] = src[-1].rstrip("\n")
        cell: dict[str, Any] = {"cell_type": kind, "id": f"cell-{len(cells)}", "metadata": {}, "source": src}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)

    for line in source.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def interface(graph: ir.Graph) -> dict[str, Any]:
    """The hardware's input and output tensors: per-sample shape (stream order) and codes."""
    part = Partition(graph)

    def describe(name: str) -> dict[str, Any]:
        t = graph.tensors[name]
        q = t.qtype
        return {
            "name": name,
            "shape": [int(d) for d in t.shape[1:]],
            "layout": t.layout or "flat",
            "kind": t.kind,
            "bits": q.bits,
            "signed": q.signed,
            "bipolar": q.bipolar,
            "scale": list(q.scale),
            "zero_point": list(q.zero_point),
        }

    return {
        "inputs": [describe(n) for n in part.hw_inputs],
        "outputs": [describe(n) for n in part.hw_outputs],
        "host_prologue": [op.kind for op in part.prologue],
        "host_epilogue": [op.kind for op in part.epilogue],
    }


def package_driver(
    graph: ir.Graph,
    outdir: Path,
    *,
    context: dict[str, Any],
    hardware: dict[str, Any],
    vectors: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    backend: str = "pynq",
) -> dict[str, Any]:
    """Write OUTDIR/driver; returns a summary for the report."""
    driver = Path(outdir) / "driver"
    driver.mkdir(parents=True, exist_ok=True)
    runtime = driver / "accelgen_runtime"
    runtime.mkdir(exist_ok=True)
    for src in sorted(RUNTIME_DIR.glob("*.py")):
        shutil.copyfile(src, runtime / src.name)
    data, arrays = graph.to_program()
    save_program(data, arrays, driver / "program.json")
    io = interface(graph)
    accel = {
        "accelgen_version": __version__,
        "model": context["model_file"],
        "board": context["board"],
        "clock_mhz": context["clock_mhz"],
        "interface": io,
        "hardware": hardware,
    }
    if "bus_bits" in hardware:  # the block design's DMA length register: the driver chunks batches to fit
        dma = vendor.dma_settings(int(hardware["bus_bits"]))
        accel["hardware"] = {**hardware, "dma_max_transfer_bytes": dma["max_transfer_bytes"]}
    (driver / "accel.json").write_text(json.dumps(accel, indent=1, sort_keys=True) + "\n")
    if vectors is not None:
        vdir = driver / "vectors"
        vdir.mkdir(exist_ok=True)
        np.save(vdir / "x.npy", vectors)
        expected = golden.run(graph, vectors)
        np.save(vdir / "expected.npy", next(iter(expected.values())))
        if labels is not None:
            np.save(vdir / "labels.npy", labels)
    env = environment()  # the one Jinja environment (accelgen.templating)
    values = {
        **context,
        "version": __version__,
        "backend": backend,
        "epilogue": ", ".join(io["host_epilogue"]),
        "has_labels": labels is not None,
        "latency_runs": LATENCY_RUNS,
    }
    notebook = percent_to_ipynb(env.get_template("driver/notebook.py.j2").render(**values))
    (driver / "notebook.ipynb").write_text(json.dumps(notebook, indent=1) + "\n")
    (driver / "run_accelerator.py").write_text(env.get_template("driver/run_accelerator.py.j2").render(**values))
    return {"path": "driver", "files": sorted(str(p.relative_to(driver)) for p in driver.rglob("*") if p.is_file())}
