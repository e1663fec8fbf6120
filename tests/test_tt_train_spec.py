"""The fixed-point training spec (accelgen.runtime.training.spec): LFSR, stochastic rounding,
gradients against torch autograd, configuration proofs, the Trainer's input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from accelgen.cli import main
from accelgen.codegen import train as train_build
from accelgen.errors import InputError
from accelgen.runtime.training import lfsr, spec
from accelgen.runtime.training.trainer import Trainer

# -- the LFSR, from its definition written here -----------------------------------------------------

POLY_TAPS = 0x80200003  # x^32 + x^22 + x^2 + x + 1, Galois form shifting right


def ref_step(s: int) -> int:
    lsb = s & 1
    s >>= 1
    return s ^ POLY_TAPS if lsb else s


def ref_draws(s: int, n: int) -> list[int]:
    out = []
    for _ in range(n):
        for _ in range(32):
            s = ref_step(s)
        out.append(s)
    return out


def gf2_matrix_of(step) -> list[int]:
    """Columns (as ints) of the 32x32 GF(2) matrix of a linear map on 32-bit words."""
    return [step(1 << b) for b in range(32)]


def gf2_mul(a: list[int], b: list[int]) -> list[int]:
    """(a o b) as columns: column j of a*b is a applied to column j of b."""

    def apply(m, v):
        out = 0
        for bit in range(32):
            if (v >> bit) & 1:
                out ^= m[bit]
        return out

    return [apply(a, col) for col in b]


def gf2_pow(m: list[int], e: int) -> list[int]:
    result = [1 << b for b in range(32)]
    while e:
        if e & 1:
            result = gf2_mul(result, m)
        m = gf2_mul(m, m)
        e >>= 1
    return result


def test_lfsr_draws_follow_the_stepped_definition():
    for seed in (1, 0xACE1, 0xDEADBEEF, 0x80000000):
        expected = ref_draws(seed, 300)
        assert [lfsr.draw(s) for s in [seed, *expected[:-1]]] == expected
        assert lfsr.DrawTable(7).draws(seed, 300).tolist() == expected  # vectorised, grown past 7


def test_lfsr_has_the_full_period():
    """Order of the step matrix is 2^32 - 1: A^(2^32-1) = I and A^((2^32-1)/p) != I for every prime p."""
    a = gf2_matrix_of(ref_step)
    identity = [1 << b for b in range(32)]
    period = (1 << 32) - 1
    assert gf2_pow(a, period) == identity
    for p in (3, 5, 17, 257, 65537):
        assert period % p == 0
        assert gf2_pow(a, period // p) != identity
    assert math.gcd(32, period) == 1  # leaping 32 steps per draw keeps the period


def test_zero_state_is_refused():
    with pytest.raises(ValueError, match="nonzero"):
        lfsr.DrawTable(4).draws(0, 4)


# -- stochastic rounding ---------------------------------------------------------------------------------


SR_DRAWS = 100_000


@pytest.fixture(scope="module")
def sr_draws():
    return lfsr.DrawTable(SR_DRAWS).draws(0x1234567, SR_DRAWS)


@pytest.mark.parametrize("value, shift", [(5, 3), (-5, 3), (1234567, 20), (-77, 7), (3, 40), (2**41 + 12345, 36)])
def test_stochastic_rounding_is_unbiased(value, shift, sr_draws):
    """Mean of SR(v, s) over 100k LFSR draws equals v / 2^s within 6 standard errors of a
    rounding whose error is in [0, 1) (sigma <= 0.5 / sqrt(n)): 0.0095."""
    n, draws = SR_DRAWS, sr_draws
    rounded = spec.shift_stochastic(np.full(n, value, dtype=np.int64), shift, draws)
    exact = value / 2.0**shift
    assert set(np.unique(rounded)) <= {math.floor(exact), math.floor(exact) + 1}
    assert abs(rounded.mean() - exact) < 6 * 0.5 / math.sqrt(n)


def test_nearest_rounding_ties_to_even():
    acc = np.array([5, 6, 7, -5, -6, -7, 12, -12, 20, 28], dtype=np.int64)  # /4: 1.25 1.5 1.75 ... 3 -3 5 7
    assert spec.shift_rne(acc, 2).tolist() == [round(v / 4) for v in acc.tolist()]  # Python rounds ties to even


# -- gradients against torch autograd -----------------------------------------------------------------

MODES_IN, MODES_OUT, RANKS, CLASSES = (4, 7, 4), (2, 4, 4), (1, 3, 3, 1), 5
FINE = spec.Widths(input_bits=16, core_bits=20, head_bits=20, act_bits=20, error_bits=20, bias_bits=24,
                   bias_int_bits=3, acc_bits=56, lr_bits=4, lr_frac=6, prob_frac=20, lut_frac=16,
                   lut_size=1 << 20)  # fmt: skip


def _fine_network(seed=0):
    rng = np.random.default_rng(seed)
    n_in = math.prod(MODES_IN)
    params = spec.initial_parameters(MODES_IN, MODES_OUT, RANKS, CLASSES, seed)
    params["tt_bias"] = rng.uniform(-0.1, 0.1, math.prod(MODES_OUT))
    params["head_bias"] = rng.uniform(-0.1, 0.1, CLASSES)
    x = rng.uniform(0, 1, (16, n_in))
    y = rng.integers(0, CLASSES, 16)
    config = spec.calibrate(MODES_IN, MODES_OUT, RANKS, CLASSES, params["cores"], params["head"], x, y, FINE,
                            max_batch=64)
    state = spec.quantize_state(config, params["cores"], params["tt_bias"], params["head"], params["head_bias"], 1)
    return config, state, x, y


def _torch_gradients(values: dict, x: np.ndarray, label: int) -> list[np.ndarray]:
    """Autograd of cross-entropy through the TT-matrix product written here from its
    definition (the full weight W[(i..), (j..)] = prod of core slices), ReLU and the head."""
    import torch

    cores = [torch.tensor(c, requires_grad=True) for c in values["cores"]]
    b1 = torch.tensor(values["tt_bias"], requires_grad=True)
    w2 = torch.tensor(values["head"], requires_grad=True)
    b2 = torch.tensor(values["head_bias"], requires_grad=True)
    weight = cores[0]  # (1, I, J, r)
    for core in cores[1:]:
        i, j = weight.shape[1] * core.shape[1], weight.shape[2] * core.shape[2]
        weight = torch.einsum("aijr,rmns->aimjns", weight, core).reshape(1, i, j, core.shape[3])
    weight = weight.reshape(math.prod(MODES_IN), math.prod(MODES_OUT))
    hidden = torch.relu(torch.tensor(x) @ weight + b1)
    logits = hidden @ w2 + b2
    loss = torch.nn.functional.cross_entropy(logits[None], torch.tensor([label]))
    loss.backward()
    return [w2.grad.numpy(), b2.grad.numpy(), b1.grad.numpy(), *[c.grad.numpy() for c in reversed(cores)]]


def test_gradients_equal_torch_autograd_at_high_precision(torch_one_thread):
    """At 20-bit codes (16-bit input) the spec's integer gradients, scaled by their fractions,
    are torch's float64 gradients of the same (dequantized) network: relative error < 1e-4."""
    config, state, x, y = _fine_network()
    table = spec.exp_table(config.widths)
    values = spec.dequantize_state(config, state)
    codes = spec.quantize_input(config, x)
    for sample in range(4):
        grads = spec.gradients(config, state, codes[sample], int(y[sample]), table)
        x_float = codes[sample] * 2.0**-config.widths.input_bits
        reference = _torch_gradients(values, x_float, int(y[sample]))
        for got, frac, want in zip(grads.values, grads.fracs, reference):
            got = got.reshape(want.shape) * 2.0**-frac
            assert np.linalg.norm(got - want) <= 1e-4 * np.linalg.norm(want)


def test_update_is_sgd_on_the_grid():
    """One step moves every parameter by -lr * gradient up to less than one grid step
    (stochastic rounding never rounds further than the neighbouring codes)."""
    config, state, x, y = _fine_network(1)
    table = spec.exp_table(config.widths)
    before = state.copy()
    grads = spec.gradients(config, before, spec.quantize_input(config, x[0]), int(y[0]), table)
    eta = 3  # lr = 3 / 2^lr_frac
    spec.train_sample(config, state, spec.quantize_input(config, x[0]), int(y[0]), eta, table, lfsr.DrawTable(1))
    lr = eta / 2.0**config.widths.lr_frac
    old = before.flat()[:-1]
    new = state.flat()[:-1]
    fracs = np.concatenate([np.full(g.size, f) for g, f in zip(grads.values, grads.fracs)])
    grad = np.concatenate([g.ravel() for g in grads.values]) * 2.0**-fracs
    grid = np.concatenate([np.full(n, f) for n, f in zip(config.parameter_counts, _param_fracs(config))])
    moved = (old - new) * 2.0**-grid
    assert np.all(np.abs(moved - lr * grad) < 2.0**-grid)
    assert state.lfsr == lfsr.DrawTable(1).draws(before.lfsr, config.draws_per_sample)[-1]


def _param_fracs(config):
    f = config.fracs
    bias1, bias2 = config.bias_frac(config.tt_acc_frac), config.bias_frac(config.logit_frac)
    return [f.head, bias2, bias1, *[f.cores[k] for k in reversed(range(config.d))]]


def test_softmax_error_is_the_cross_entropy_gradient():
    """p from the exp table equals softmax within its grids (default widths)."""
    config, state, x, y = _fine_network(2)
    config8 = config.with_(widths=spec.Widths())
    logits = np.array([3, -1, 0, 7, 2], dtype=np.int64) << np.int64(config8.logit_frac - 2)  # values /4
    p = spec.softmax_codes(config8, logits, spec.exp_table(config8.widths)) / 2.0**14
    z = np.array([3, -1, 0, 7, 2]) / 4
    ref = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert np.abs(p - ref).max() < 0.02  # gaps floored to 1/16: exp off by at most 1 - e^-1/16


# -- configuration proofs ------------------------------------------------------------------------------


def test_an_accumulator_that_could_overflow_is_refused():
    config, *_ = _fine_network()
    with pytest.raises(spec.TrainingError, match="gradient of core 0 needs"):
        config.with_(widths=spec.Widths(**{**FINE.__dict__, "acc_bits": 40})).check()


def test_configuration_round_trips_through_json():
    config, *_ = _fine_network()
    assert spec.TrainConfig.from_dict(config.to_dict()) == config


# -- the Trainer's inputs (golden backend, no compiler needed) -----------------------------------------


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (32, 12)), rng.integers(0, 3, 32)
    config, state = train_build.design_from_data((3, 4), (2, 4), (1, 2, 1), 3, x, y, max_batch=16)
    out = tmp_path_factory.mktemp("tt_train") / "build"
    train_build.generate(config, state, out, csim=False)
    return out, x, y


def test_trainer_refuses_a_wrong_label(small_build):
    out, x, y = small_build
    trainer = Trainer(out, "golden")
    with pytest.raises(InputError, match=r"labels \[3\].*outside 0\.\.2"):
        trainer.step(x[:4], np.array([0, 1, 3, 2]), lr=0.01)
    with pytest.raises(InputError, match="labels"):
        trainer.step(x[:2], np.array([0, -1]), lr=0.01)


def test_trainer_refuses_nan_and_a_batch_the_chip_cannot_count(small_build):
    out, x, y = small_build
    trainer = Trainer(out, "golden")
    bad = x[:4].copy()
    bad[2, 5] = np.nan
    with pytest.raises(InputError, match=r"samples \[2\] hold NaN"):
        trainer.step(bad, y[:4], lr=0.01)
    with pytest.raises(InputError, match="larger than the design's max_batch 16"):
        trainer.step(x[:17], y[:17], lr=0.01)
    with pytest.raises(InputError, match="lr"):
        trainer.step(x[:4], y[:4], lr=-1.0)
    assert trainer.steps == 0 and trainer.state().equals(Trainer(out, "golden").state())  # nothing ran


def test_trainer_without_a_build_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="train-build"):
        Trainer(tmp_path, "golden")
    with pytest.raises(InputError, match="backend"):
        Trainer(tmp_path, "gpu")


def test_cli_train_build_bad_data_exits_2(tmp_path, capsys):
    data = tmp_path / "d.npz"
    np.savez(data, X=np.full((8, 12), np.nan), y=np.zeros(8, dtype=np.int64))
    argv = ["train-build", "--data", str(data), "--modes-in", "3,4", "--modes-out", "2,4", "--rank", "2",
            "--classes", "3", "--no-csim", "-o", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 2
    assert "NaN" in capsys.readouterr().err
    np.savez(data, X=np.zeros((8, 12)), y=np.full(8, 7))
    assert main(argv) == 2
    assert "outside 0..2" in capsys.readouterr().err
    np.savez(data, X=np.zeros((8, 12)), y=np.zeros(8, dtype=np.int64))
    assert main([*argv[:-2], "--acc-bits", "20", "-o", str(tmp_path / "o")]) == 2
    assert "acc_bits=20" in capsys.readouterr().err
