"""Shared fixtures and the per-model figures printed at the end of a test run."""

from __future__ import annotations

import pytest

FIGURES: list[str] = []


@pytest.fixture(scope="module")
def torch_one_thread():
    """torch on one thread for a module of tiny tensors: on a loaded 2-core machine the
    thread hand-off costs more than it saves."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if FIGURES:
        terminalreporter.section("accelgen figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
