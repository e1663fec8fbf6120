"""The manifest of a build directory: the sha256 of every file, written last, checked on load.

``accelgen build`` writes ``OUTDIR/manifest.json`` just before publishing OUTDIR, and
``OUTDIR/driver/manifest.json`` so that a driver directory copied to a board checks
itself. Before the runtime reads a file of a build (the program, the C-simulation
library, the interface metadata) it finds the nearest manifest (the file's directory or
its parent) and compares hashes: a changed, truncated or missing file is reported as
:class:`DamagedBuildError` instead of a traceback or silently wrong outputs. A directory
with no manifest (written by the compiler's API without ``accelgen build``) is not checked.

Part of the standalone runtime: the standard library only, Python >= 3.8.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

MANIFEST = "manifest.json"
FORMAT = "accelgen-manifest"
VERSION = 1
#: not covered: logs and checkpoints change with every build, the manifest is itself
UNCHECKED = ("logs", ".accelgen")


class DamagedBuildError(ValueError):
    """A build directory's file differs from what the build wrote."""

    def __init__(self, what: str) -> None:
        super().__init__(f"build directory damaged: {what}, rebuild it")


def file_hash(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(root) -> Path:
    """Hash every file under ``root`` (but logs/ and .accelgen/) into root/manifest.json."""
    root = Path(root)
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(root)
        if rel.parts[0] in UNCHECKED or rel.as_posix() == MANIFEST:
            continue
        files[rel.as_posix()] = file_hash(path)
    target = root / MANIFEST
    tmp = root / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"format": FORMAT, "version": VERSION, "files": files}, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, target)
    return target


def _read(path: Path):
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise DamagedBuildError(f"{path} is not a readable manifest") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None  # some other file of that name: not ours
    if data.get("version") != VERSION or not isinstance(data.get("files"), dict):
        raise DamagedBuildError(f"{path} has an unknown manifest version {data.get('version')!r}")
    return data["files"]


def verify_file(path) -> None:
    """Check ``path`` against the nearest manifest (its directory, then the parent's)."""
    path = Path(path)
    for root in (path.parent, path.parent.parent):
        manifest = root / MANIFEST
        if not manifest.is_file():
            continue
        files = _read(manifest)
        if files is None:
            continue
        rel = path.resolve().relative_to(root.resolve()).as_posix()
        if rel not in files:
            raise DamagedBuildError(f"{path} is not one of the files the build wrote ({manifest})")
        if not path.is_file():
            raise DamagedBuildError(f"{path} is missing")
        if file_hash(path) != files[rel]:
            raise DamagedBuildError(f"{path} was changed or truncated after the build")
        return
