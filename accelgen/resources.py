"""Where the data directories (templates/, hls/, boards/) are, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

from accelgen.errors import InternalError

DATA_DIRS = ("templates", "hls", "boards")
_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The directory ``name``: accelgen/_data/<name> in a wheel, <repo>/<name> in a checkout."""
    if name not in DATA_DIRS:
        raise InternalError(f"unknown data directory '{name}'")
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise InternalError(f"data directory '{name}' is missing from this installation of accelgen")
