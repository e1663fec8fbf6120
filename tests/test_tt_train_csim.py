"""The generated training hardware in C simulation equals the numpy spec bit for bit, on the
fast path and on the ap_types arithmetic that synthesis compiles; the trained network exports
to a model ``accelgen build`` takes, whose golden outputs are the trainer's."""

from __future__ import annotations

import numpy as np
import pytest

from accelgen import golden
from accelgen.codegen import train as train_build
from accelgen.csim import build_group
from accelgen.errors import InputError
from accelgen.pipeline import build, compile_model
from accelgen.runtime.training import spec
from accelgen.runtime.training.trainer import Trainer

pytestmark = pytest.mark.csim

MODES_IN, MODES_OUT, RANKS, CLASSES = (3, 4, 2), (2, 3, 2), (1, 2, 3, 1), 4


def _data(n, seed=0):
    """Noisy copies of one fixed prototype image per class (a learnable task)."""
    prototypes = np.random.default_rng(99).uniform(0, 1, (CLASSES, int(np.prod(MODES_IN))))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    return 0.6 * prototypes[y] + 0.4 * rng.uniform(0, 1, (n, prototypes.shape[1])), y


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    x, y = _data(64)
    config, state = train_build.design_from_data(MODES_IN, MODES_OUT, RANKS, CLASSES, x, y, max_batch=16)
    return train_build.generate(config, state, tmp_path_factory.mktemp("train") / "build", lanes=4)


def _lockstep(device: Trainer, reference: Trainer, steps: int, seed: int) -> int:
    """Train both on the same batches; returns the steps after which every code matched."""
    x, y = _data(16 * steps, seed)
    rng = np.random.default_rng(seed)
    matched = 0
    for _ in range(steps):
        n = int(rng.integers(1, 17))
        idx = rng.choice(len(x), n, replace=False)
        lr = float(rng.choice([0.2, 0.05, 0.01]))
        got, want = device.step(x[idx], y[idx], lr), reference.step(x[idx], y[idx], lr)
        same = got == want and device.state().equals(reference.state())
        if not same:
            break
        matched += 1
    return matched


def test_csim_equals_the_spec_after_every_step(design):
    device, reference = Trainer(design.outdir, "csim"), Trainer(design.outdir, "golden")
    assert _lockstep(device, reference, 40, seed=1) == 40
    x, _ = _data(20, 7)
    assert np.array_equal(device.logits(x), reference.logits(x))
    assert not device.state().equals(spec.TrainState.from_flat(design.config, design.state.flat()))  # it trained


def test_training_learns(tmp_path):
    """Not only exact but useful: a 28 -> TT 32 -> 4 network learns a prototype task from chance
    to >= 90% held-out accuracy in two epochs (golden: the C simulation equals it, above)."""

    def data(n, seed):
        prototypes = np.random.default_rng(99).uniform(0, 1, (4, 28))
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 4, n)
        return 0.6 * prototypes[y] + 0.4 * rng.uniform(0, 1, (n, 28)), y

    x, y = data(600, 3)
    config, state = train_build.design_from_data((4, 7), (4, 8), (1, 4, 1), 4, x[:64], y[:64], max_batch=16)
    trainer = Trainer(train_build.generate(config, state, tmp_path / "b", csim=False).outdir, "golden")
    before = trainer.evaluate(x[500:], y[500:])
    for _ in range(2):
        for i in range(0, 500, 16):
            trainer.step(x[i : i + 16], y[i : i + 16], lr=0.05)
    assert before < 0.5 and trainer.evaluate(x[500:], y[500:]) >= 0.9


def test_synthesis_arithmetic_equals_the_spec(design):
    """The ap_types model (what synthesis compiles, no native fast paths) is bit-exact too."""
    library = build_group([design.outdir], ap_model=True, opt="-O0")  # compiles faster; the arithmetic is the same
    device = Trainer(design.outdir, "csim", library=library)
    assert _lockstep(device, Trainer(design.outdir, "golden"), 4, seed=2) == 4


def test_each_trainer_owns_its_device(design):
    a, b = Trainer(design.outdir, "csim"), Trainer(design.outdir, "csim")
    x, y = _data(8)
    a.step(x, y, lr=0.2)
    assert not a.state().equals(b.state())
    assert b.state().equals(Trainer(design.outdir, "golden").state())


def test_batch_too_large_for_the_chip(design):
    x, y = _data(17)
    with pytest.raises(InputError, match="max_batch 16"):
        Trainer(design.outdir, "csim").step(x, y, lr=0.01)


def test_export_builds_and_golden_equals_the_trainer(design, tmp_path, torch_one_thread):
    trainer = Trainer(design.outdir, "csim")
    x, y = _data(48, 5)
    for i in range(0, 48, 16):
        trainer.step(x[i : i + 16], y[i : i + 16], lr=0.05)
    path = trainer.export(tmp_path / "trained.onnx")
    built = build(path, tmp_path / "inference", board="ultra96", csim=False, synth="off")
    assert (built.outdir / "hls" / "top.cpp").is_file()
    (out,) = golden.run(compile_model(path).graph, x).values()
    expected = trainer.logits(x) * 2.0 ** -design.config.logit_frac
    assert np.array_equal(out, expected)
