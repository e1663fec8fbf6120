"""The C testbench of a generated design: run it on the design's golden vectors and read
its verdict (every layer, every element; the first mismatch named)."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from accelgen.csim import builder
from accelgen.csim.toolchain import RUN_TIMEOUT_S
from accelgen.errors import InputError
from accelgen.workspace import write_atomic

_PREFIX = "accelgen-csim:"
_FIRST = re.compile(
    r"FIRST MISMATCH (?P<kind>layer|output) (?P<ident>\S+) sample (?P<sample>\d+) index (?P<index>\d+)"
    r"(?: \((?P<position>[^)]*)\))? expected (?P<expected>-?\d+) got (?P<got>-?\d+)"
)
_TENSOR = re.compile(r"(?P<kind>layer|output) (?P<i>\d+) (?P<ident>\S+) elements (?P<n>\d+) mismatches (?P<m>\d+)")


def read_design(outdir: str | Path) -> dict[str, Any]:
    path = Path(outdir) / "hls" / "design.json"
    if not path.is_file():
        raise InputError(f"{outdir}: no hls/design.json; is this a generated design directory?")
    return json.loads(path.read_text())


def run_csim(outdir: str | Path, *, cache_dir: str | Path | None = None, keep_outputs: bool = False) -> dict:
    """Build (or reuse) and run the C testbench on the design's golden vectors.

    Returns ``passed``, ``vectors`` (samples), ``mismatches`` (elements that differ, over
    every layer and output), ``build_s``, ``run_s``, ``first_mismatch`` (None, or layer,
    name, sample, index, position, expected, got), ``layers`` (per-layer counts),
    ``cached`` and ``log``; with ``keep_outputs`` also ``outputs`` {tensor: codes}. The
    testbench's own output goes to OUTDIR/logs/csim.log.
    """
    outdir = Path(outdir)
    meta = read_design(outdir)
    logs = outdir / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / "csim.log"
    build_log = Path(tempfile.mkstemp(prefix=".csim-build-", suffix=".log", dir=logs)[1])
    try:
        b = builder.build(outdir, cache_dir=cache_dir, log=build_log)
        with tempfile.TemporaryDirectory(prefix="accelgen-csim-") as tmp:
            t0 = time.perf_counter()
            proc = subprocess.run([str(b.testbench), str(outdir / "hls" / "vectors"), tmp], capture_output=True,
                                  text=True, timeout=RUN_TIMEOUT_S, check=False)  # fmt: skip
            run_s = time.perf_counter() - t0
            outputs = _load_outputs(meta, Path(tmp)) if keep_outputs else None
        write_atomic(log, build_log.read_text() + proc.stdout + proc.stderr)
    finally:
        build_log.unlink(missing_ok=True)
    result = parse_testbench(proc.stdout, meta)
    result["passed"] = result["passed"] and proc.returncode == 0
    result.update(build_s=round(b.seconds, 3), run_s=round(run_s, 3), cached=b.cached, log=str(log.relative_to(outdir)))
    if proc.returncode not in (0, 1) or "RESULT" not in proc.stdout:
        result["passed"] = False
        result["error"] = f"the testbench exited with status {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}"
    if outputs is not None:
        result["outputs"] = outputs
    return result


def parse_testbench(stdout: str, meta: dict) -> dict:
    names = {layer["ident"]: layer["name"] for layer in meta["layers"]}
    names.update({p["name"]: p["tensor"] for p in meta["outputs"]})
    lines = [line[len(_PREFIX) :].strip() for line in stdout.splitlines() if line.startswith(_PREFIX)]
    samples, first, layers, status = 0, None, [], None
    passed, mismatches = False, 0
    for line in lines:
        if line.startswith("samples "):
            samples = int(line.split()[1])
        elif line.startswith("status "):
            status = int(line.split()[1])
        elif line.startswith("FIRST MISMATCH"):
            m = _FIRST.search(line)
            first = {"text": line}
            if m:
                first.update(
                    kind=m["kind"], layer=m["ident"], name=names.get(m["ident"], m["ident"]), sample=int(m["sample"]),
                    index=int(m["index"]), position=m["position"], expected=int(m["expected"]), got=int(m["got"]),
                )  # fmt: skip
        elif line.startswith("RESULT "):
            parts = line.split()
            passed, mismatches = parts[1] == "PASSED", int(parts[3])
        elif m := _TENSOR.match(line):
            layers.append({"kind": m["kind"], "ident": m["ident"], "name": names.get(m["ident"], m["ident"]),
                           "elements": int(m["n"]), "mismatches": int(m["m"])})  # fmt: skip
    stream_warnings = stdout.count("WARNING: Hls::stream")
    return {
        "passed": passed and stream_warnings == 0 and status == 0, "vectors": samples, "mismatches": mismatches,
        "first_mismatch": first, "layers": layers, "status": status, "stream_warnings": stream_warnings,
    }  # fmt: skip


def _load_outputs(meta: dict, directory: Path) -> dict[str, np.ndarray]:
    out = {}
    for p in meta["outputs"]:
        path = directory / f"{p['name']}.bin"
        if path.is_file():
            values = np.fromfile(path, dtype="<i8")
            out[p["tensor"]] = values.reshape(-1, *p["shape"])
    return out
