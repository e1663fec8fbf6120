"""The build's output directory: written atomically, one log per stage, stage checkpoints.

A build writes into a hidden sibling directory and renames it onto OUTDIR only when every
stage has finished, so an interrupted or failed build never leaves an OUTDIR that looks
complete (an older complete OUTDIR stays untouched). ``.accelgen/checkpoints.json``
records each stage's input hash and result; a rebuild with unchanged inputs copies an
expensive stage's files from the previous OUTDIR instead of running it again.
``manifest.json``, written last, holds the hash of every file; the runtime checks it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from accelgen.errors import InputError, environment_error
from accelgen.runtime.manifest import write_manifest

CHECKPOINTS = ".accelgen/checkpoints.json"


def hash_paths(*paths: Path, extra: Any = None) -> str:
    """Content hash of files and directory trees (names and bytes), plus ``extra`` (JSON)."""
    h = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files:
            h.update(str(f.relative_to(root) if root.is_dir() else f.name).encode())
            h.update(b"\0")
            h.update(f.read_bytes())
            h.update(b"\0")
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()


class Workspace:
    """A build in progress: ``path`` is where stages write; ``commit()`` publishes it."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = Path(outdir).resolve()
        self.path = self.outdir.parent / f".{self.outdir.name}.partial-{os.getpid()}"
        try:  # before any stage runs: a build that cannot be published is refused now
            if self.outdir.exists() and not self._is_build(self.outdir):
                raise InputError(
                    f"-o {outdir}: the directory exists and is not an accelgen build; accelgen replaces its "
                    "output directory as a whole, so choose a new or empty directory"
                )
            self._check_writable(outdir)
            self.outdir.parent.mkdir(parents=True, exist_ok=True)
            self._clean_stale_partials()
            if self.path.exists():
                shutil.rmtree(self.path)
            self.path.mkdir()
            (self.path / "logs").mkdir()
        except OSError as exc:
            shutil.rmtree(self.path, ignore_errors=True)
            raise environment_error(exc, f"-o {outdir}") from None
        self.previous = self._read_checkpoints(self.outdir)
        self.checkpoints: dict[str, dict] = {}

    def _check_writable(self, given) -> None:
        """OUTDIR (when it exists) must be replaceable, its parent writable: else the OS's reason."""
        for directory in (self.outdir, self.outdir.parent):
            if directory.is_dir() and not os.access(directory, os.W_OK | os.X_OK):
                raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(directory))
            if directory.exists() and not directory.is_dir():
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(directory))
        name_max = os.pathconf(self.outdir.parent, "PC_NAME_MAX") if self.outdir.parent.is_dir() else 255
        if len(f".{self.outdir.name}.partial-{os.getpid()}".encode()) > name_max:
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), str(given))

    @staticmethod
    def _is_build(path: Path) -> bool:
        return path.is_dir() and ((path / CHECKPOINTS).is_file() or not any(path.iterdir()))

    def _clean_stale_partials(self) -> None:
        for stale in self.outdir.parent.glob(f".{self.outdir.name}.partial-*"):
            pid = stale.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)

    @staticmethod
    def _read_checkpoints(outdir: Path) -> dict[str, dict]:
        try:
            return json.loads((outdir / CHECKPOINTS).read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def log_path(self, stage: str) -> Path:
        return self.path / "logs" / f"{stage}.log"

    def reusable(self, stage: str, key: str) -> dict | None:
        """The previous build's record of ``stage`` if its key matches and every file the
        stage wrote then is still in the previous OUTDIR."""
        rec = self.previous.get(stage)
        if not rec or rec.get("key") != key or not isinstance(rec.get("files"), list):
            return None
        if not all((self.outdir / f).is_file() for f in rec["files"]):
            return None
        return rec

    def restore(self, files: list[str]) -> None:
        """Copy files (relative paths) from the previous OUTDIR into this build."""
        for rel in files:
            src, dst = self.outdir / rel, self.path / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)

    def record(self, stage: str, key: str, result: Any, files: list[str]) -> None:
        """Checkpoint ``stage``: its content key, its result and the files it wrote."""
        self.checkpoints[stage] = {"key": key, "result": result, "files": files}

    def commit(self) -> Path:
        """Publish: write the checkpoints, then swap the finished tree onto OUTDIR."""
        ck = self.path / CHECKPOINTS
        ck.parent.mkdir(parents=True, exist_ok=True)
        ck.write_text(json.dumps(self.checkpoints, indent=1, sort_keys=True, default=str) + "\n")
        write_manifest(self.path)  # last: what the runtime checks the directory against
        old = None
        if self.outdir.exists():
            old = self.outdir.parent / f".{self.outdir.name}.old-{os.getpid()}"
            os.replace(self.outdir, old)
        os.replace(self.path, self.outdir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.outdir

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def write_atomic(path: str | Path, data: bytes | str | Callable[[IO[bytes]], None]) -> Path:
    """Write one file atomically: into a sibling temporary file (created with the
    permissions a new file gets, 0666 less the umask), then renamed onto ``path``, so a
    reader never sees half a file. ``data``: the bytes, text (UTF-8), or a function writing
    to the open binary file. The one atomic file writer of the compiler (the standalone
    runtime keeps its own for its manifest)."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_tree(outdir: str | Path, files: dict[str, bytes], logs: dict[str, str] | None = None) -> Path:
    """Publish a whole OUTDIR of ``files`` (relative path -> bytes) at once, as a build is
    published (a hidden sibling renamed into place); ``logs``: {stage: text} for logs/."""
    ws = Workspace(Path(outdir))
    try:
        for rel, data in files.items():
            dst = ws.path / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
        for stage, text in (logs or {}).items():
            ws.log_path(stage).write_text(text)
        return ws.commit()
    except BaseException:
        ws.discard()
        raise


def process_alive(pid: int) -> bool:
    """Whether a process of this machine with that id still runs (leftovers of dead ones are cleaned)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
