"""User-facing errors and the exit codes the command line maps them to."""

from __future__ import annotations

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
