"""The Trainer's pynq backend against a stand-in board: AXI-Lite registers at Vitis HLS's
offsets (written here), 64-bit buffer addresses, buffers from ``pynq.allocate``; the stand-in
IP runs the top function of the C-simulation library on the buffers the registers point at."""

from __future__ import annotations

import ctypes
import shutil
import sys
import types

import numpy as np
import pytest

from accelgen.codegen import train as train_build
from accelgen.errors import InputError
from accelgen.runtime.training.trainer import Trainer
from tests.test_tt_train_csim import CLASSES, MODES_IN, MODES_OUT, RANKS, _data

pytestmark = pytest.mark.csim

#: Vitis HLS s_axilite map of (mode, samples, eta, x, labels, params, results): 32-bit scalars
#: from 0x10 in 8-byte slots, pointers as two 32-bit words in 12-byte slots
SCALARS = {"mode": 0x10, "samples": 0x18, "eta": 0x20}
POINTERS = {"x": 0x28, "labels": 0x34, "params": 0x40, "results": 0x4C}
I32P = ctypes.POINTER(ctypes.c_int32)


class FakeBuffer(np.ndarray):
    def flush(self):
        pass

    def invalidate(self):
        pass


class FakeBoard:
    """``pynq`` as the backend sees it: ``allocate``, ``Overlay(path).tt_train_top_0``."""

    def __init__(self, library, hang=False):
        self.library, self.hang, self.memory, self.starts = library, hang, {}, 0

    def module(self):
        board = self
        mod = types.ModuleType("pynq")
        mod.allocate = board.allocate
        mod.Overlay = lambda path: types.SimpleNamespace(tt_train_top_0=FakeIP(board))
        return mod

    def allocate(self, shape, dtype):
        buf = np.zeros(shape, dtype=dtype).view(FakeBuffer)
        buf.physical_address = (1 << 33) + 0x10000 * len(self.memory)  # above 4 GiB: both address words matter
        self.memory[buf.physical_address] = buf
        return buf


class FakeIP:
    def __init__(self, board):
        self.board, self.regs, self.done = board, {}, False
        self.top = ctypes.CDLL(str(board.library)).tt_train_top_call
        self.top.argtypes = [ctypes.c_uint] * 3 + [I32P] * 4

    def write(self, offset, value):
        self.regs[offset] = value
        if offset == 0 and value & 1:
            self.board.starts += 1
            self.done = False
            if not self.board.hang:
                self._run()

    def read(self, offset):
        return 0x2 if offset == 0 and self.done else 0

    def _run(self):
        buffers = [self.board.memory[self.regs[o] | self.regs[o + 4] << 32] for o in POINTERS.values()]
        scalars = [self.regs[o] for o in SCALARS.values()]
        assert self.top(*scalars, *[b.ctypes.data_as(I32P) for b in buffers]) == 0
        self.done = True


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    """The network of test_tt_train_csim (same sources: its C-simulation build is reused from the cache)."""
    x, y = _data(64)
    config, state = train_build.design_from_data(MODES_IN, MODES_OUT, RANKS, CLASSES, x, y, max_batch=16)
    built = train_build.generate(config, state, tmp_path_factory.mktemp("pynq") / "build", lanes=4)
    return built, *_data(64, 4)


def _board(design, tmp_path, monkeypatch, hang=False):
    library = tmp_path / "board.so"  # its own copy: its own on-chip state
    shutil.copyfile(design.outdir / "csim" / "libaccel.so", library)
    board = FakeBoard(library, hang)
    monkeypatch.setitem(sys.modules, "pynq", board.module())
    return board


def test_pynq_backend_trains_like_the_spec(design, tmp_path, monkeypatch):
    design, x, y = design
    board = _board(design, tmp_path, monkeypatch)
    device = Trainer(design.outdir, "pynq", bitstream=str(tmp_path / "design.bit"))
    reference = Trainer(design.outdir, "golden")
    for i in range(0, 48, 16):
        assert device.step(x[i : i + 16], y[i : i + 16], lr=0.1) == reference.step(x[i : i + 16], y[i : i + 16], 0.1)
        assert device.state().equals(reference.state())
    assert np.array_equal(device.logits(x[48:]), reference.logits(x[48:]))
    assert board.starts == 1 + 3 * 2 + 1  # load, (train, store) per step, logits


def test_pynq_backend_times_out_clearly(design, tmp_path, monkeypatch):
    design, x, y = design
    _board(design, tmp_path, monkeypatch, hang=True)
    from accelgen.runtime.training import trainer as trainer_module

    monkeypatch.setattr(trainer_module._Pynq.__init__, "__defaults__", ("tt_train_top_0", 0.2))
    with pytest.raises(InputError, match="did not finish within 0.2 s"):
        Trainer(design.outdir, "pynq", bitstream=str(tmp_path / "design.bit"))
