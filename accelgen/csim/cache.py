"""The content-keyed cache of compiled designs and precompiled headers: entries written in
a work directory, published by one rename, checked against their manifest before use, the
leftovers of killed builds cleaned."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

from accelgen.errors import InternalError
from accelgen.workspace import process_alive, write_atomic

# A cache entry is valid when its manifest, written last, lists the sha256 of every file
# the entry must hold and the files still have those contents: a killed or truncated
# build, a garbage library or a deleted testbench is rebuilt instead of trusted.
ENTRY_MANIFEST = "entry.json"
WORK_PREFIX = ".build-"
STALE_PREFIX = ".stale-"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_entry_manifest(work: Path, names: list[str]) -> None:
    manifest = {name: sha256_file(work / name) for name in names}
    write_atomic(work / ENTRY_MANIFEST, json.dumps(manifest, sort_keys=True))


def entry_is_valid(dest: Path, names: list[str]) -> bool:
    try:
        manifest = json.loads((dest / ENTRY_MANIFEST).read_text())
        return isinstance(manifest, dict) and all(
            isinstance(manifest.get(name), str) and sha256_file(dest / name) == manifest[name] for name in names
        )
    except (OSError, ValueError):
        return False


def publish_entry(work: Path, dest: Path, names: list[str], valid=None) -> None:
    """Rename the finished build onto ``dest``; a concurrent build may have published the
    same entry first (then it is kept), a damaged entry is moved aside and replaced."""
    for _ in range(3):
        try:
            os.rename(work, dest)
            return
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
        if (valid or entry_is_valid)(dest, names):
            return  # another build of the same sources won the race
        stale = dest.with_name(f"{STALE_PREFIX}{os.getpid()}-{dest.name}")
        try:
            os.rename(dest, stale)
        except FileNotFoundError:
            continue  # someone else moved it aside
        except OSError:
            shutil.rmtree(stale, ignore_errors=True)
            continue
        shutil.rmtree(stale, ignore_errors=True)
    raise InternalError(f"could not publish the C-simulation build into {dest}")


def clean_leftovers(root: Path) -> None:
    """Remove the work directories of builds that were killed (their process is gone)."""
    for leftover in [*root.glob(f"{WORK_PREFIX}*"), *root.glob(f"{STALE_PREFIX}*")]:
        pid = leftover.name.split("-")[1] if leftover.name.count("-") >= 2 else ""
        if not pid.isdigit() or not process_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def sizes_match(dest: Path, names: list[str]) -> bool:
    """A precompiled-header entry is whole when its files have the sizes its manifest
    records (hashing the ~90 MB header on every compile would cost more than it checks)."""
    try:
        manifest = json.loads((dest / ENTRY_MANIFEST).read_text())
        return all(manifest.get(name) == (dest / name).stat().st_size for name in names)
    except (OSError, ValueError, AttributeError):
        return False
