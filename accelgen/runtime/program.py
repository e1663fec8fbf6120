"""Loading a lowered graph saved by the compiler (program.json + program.npz).

The JSON holds the graph's structure (the compiler's ``Graph.to_program()``); arrays are
``{"$array": key}`` references into the .npz. Loaded objects expose the same attribute
names as the compiler's IR, so :mod:`.interpreter` runs either.

Part of the standalone runtime: numpy only, Python >= 3.8, no import from the compiler.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .manifest import DamagedBuildError, verify_file

FORMAT = "accelgen-program"
SUPPORTED_VERSIONS = (1,)


class Node(dict):
    """A dict whose keys read as attributes (``op.weights``), like the compiler's dataclasses."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Program:
    """A lowered graph: ``inputs``, ``outputs``, ``io_dtypes``, ``tensors``, ``ops``."""

    def __init__(self, data: dict, arrays) -> None:
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") not in SUPPORTED_VERSIONS:
            found = (
                data if not isinstance(data, dict) else {"format": data.get("format"), "version": data.get("version")}
            )
            raise DamagedBuildError(
                f"not an accelgen program of a supported version ({found!r}); rebuild it with this accelgen"
            )
        self.name = data["name"]
        self.inputs = list(data["inputs"])
        self.outputs = list(data["outputs"])
        self.io_dtypes = dict(data["io_dtypes"])
        self.meta = data.get("meta", {})
        self.tensors = {n: _node(t, arrays) for n, t in data["tensors"].items()}
        self.ops = []
        for op in data["ops"]:
            node = _node(op, arrays)
            node["kind"] = op["type"]
            self.ops.append(node)


def _node(value, arrays):
    if isinstance(value, dict):
        if set(value) == {"$array"}:
            return np.asarray(arrays[value["$array"]])
        return Node((k, _node(v, arrays)) for k, v in value.items())
    if isinstance(value, list):
        return [_node(v, arrays) for v in value]
    return value


def load_program(json_path) -> Program:
    """Read ``program.json`` and the ``.npz`` beside it (same stem)."""
    json_path = Path(json_path)
    npz_path = json_path.with_suffix(".npz")
    verify_file(json_path)
    verify_file(npz_path)
    try:
        data = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        raise DamagedBuildError(f"{json_path} is not readable JSON ({exc})") from None
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DamagedBuildError(f"{npz_path} is not a readable .npz ({exc})") from None
    try:
        return Program(data, arrays)
    except (KeyError, TypeError, AttributeError) as exc:
        raise DamagedBuildError(f"{json_path} lacks {exc} or has it of the wrong type") from None


def save_program(data: dict, arrays: dict, json_path) -> None:
    """Write a program produced by the compiler (``Graph.to_program()``), byte-reproducibly
    (numpy's own savez stamps the zip entries with the current time)."""
    json_path = Path(json_path)
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    with zipfile.ZipFile(json_path.with_suffix(".npz"), "w", zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())
