"""User-facing errors and the exit codes the command line maps them to."""

from __future__ import annotations

import errno
import os

ISSUES_URL = "https://github.com/accelgen/accelgen/issues"


class AccelgenError(Exception):
    """Base of accelgen's errors. ``exit_code`` is what the command line returns."""

    exit_code = 1


class InputError(AccelgenError):
    """The model, a file or an argument is wrong or unsupported (exit code 2)."""

    exit_code = 2


class UnsupportedError(InputError):
    """The model uses something accelgen does not support; lists every offender."""

    def __init__(self, problems: list[str], hint: str = "") -> None:
        self.problems = list(problems)
        lines = [f"{len(problems)} unsupported node(s):"] + [f"  - {p}" for p in problems]
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


class FitError(AccelgenError):
    """The design does not fit the board (exit code 3)."""

    exit_code = 3


class InternalError(AccelgenError):
    """A bug in accelgen: an invariant did not hold (exit code 1)."""

    exit_code = 1

    def __str__(self) -> str:
        return f"internal error: {super().__str__()} (please report it at {ISSUES_URL})"


#: OS errors that describe the machine (permissions, space, names), not a bug of accelgen
ENVIRONMENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "ENAMETOOLONG", "ENOTDIR", "EEXIST", "EISDIR",
                 "ELOOP", "EMFILE", "ENFILE", "EFBIG")
    if hasattr(errno, name)
)  # fmt: skip


def is_environment_error(exc: BaseException) -> bool:
    """True for an OSError caused by the machine: read-only or full disk, a name too long,
    a path through a regular file, missing permission."""
    return isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS


def environment_error(exc: OSError, what: str = "") -> InputError:
    """An :class:`InputError` naming the path and the system's reason for ``exc``."""
    path = exc.filename if exc.filename is not None else what
    reason = exc.strerror or os.strerror(exc.errno or 0) or str(exc)
    where = f"{what}: " if what and what != path else ""
    return InputError(f"{where}cannot write {path}: {reason}; choose another location or free space, then rerun")
