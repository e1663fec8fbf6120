"""Shared fixtures and the per-model figures printed at the end of a test run."""

from __future__ import annotations

FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if FIGURES:
        terminalreporter.section("accelgen figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
