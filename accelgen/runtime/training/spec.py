"""The fixed-point training arithmetic of a tensorized MLP: THE definition the HLS equals bit for bit.

Network: ``x (in_features) -> TT layer (d cores) + bias -> ReLU -> dense head + bias -> softmax``.
Core ``k`` has shape ``(r_k, m_k, n_k, r_{k+1})`` (``r_0 = r_d = 1``) and ``W[(i_1..i_d),
(j_1..j_d)]`` is the product of the cores' slices (row-major indices), as in
``accelgen.ir.TTDense``. The forward contracts the cores left to right; the state before
core ``k`` is ``Z_k`` of shape ``(P_k, m_k, Q_k, r_k)`` with ``P_k = n_0..n_{k-1}`` (output
modes done) and ``Q_k = m_{k+1}..m_{d-1}`` (input modes to go)::

    Z_{k+1}[p, j, q, s] = sum_{m, r} Z_k[p, m, q, r] G_k[r, m, j, s]

Numbers. Every tensor is an integer code ``c`` with a power-of-two scale: value ``c * 2^-f``,
``f`` its fractional bits (:class:`Fracs`, fixed for a training run, chosen once by
:func:`calibrate`). Widths (:class:`Widths`): input codes unsigned ``input_bits`` (pixels in
[0, 1), ``f = input_bits``); cores, head weights signed narrow ``core_bits`` /
``head_bits``; states ``Z_k`` signed ``act_bits``; the hidden activation unsigned
``act_bits``; errors signed ``error_bits``; biases signed ``bias_bits``. Every sum is exact:
:meth:`TrainConfig.check` proves each accumulator within ``acc_bits`` (and within the
2^53 that makes numpy's float64 products of these integers exact) or raises.

Rounding. Requantization (forward states, errors) rounds to nearest, ties to even (the
QONNX ``Quant`` rounding, so an exported model computes the same codes) and saturates.
Weight updates round stochastically: ``theta -= SR(g * eta, s)`` with ``g`` the exact
integer gradient, ``eta`` the learning-rate code (``lr * 2^lr_frac``) and ``s`` the shift to
the parameter's grid; ``SR(v, s) = floor((v + o) / 2^s)`` with ``o = floor(u 2^s / 2^32)``
and ``u`` the next 32-bit LFSR draw (:mod:`.lfsr`), which is unbiased up to ``2^(s-32)``.
Every parameter consumes one draw per sample, whether its gradient is zero or not, in
the order: head weights ``W2[h, c]`` row-major, head bias, TT bias, then the cores
``G_{d-1} .. G_0`` each row-major over ``(r, m, n, r')``: the order the hardware updates
them in.

Loss and softmax: on the fabric. The logits are exact accumulators; ``z_max - z_c`` is
floored to ``lut_frac`` fractional bits and indexes an exp table (``lut_size`` entries of
``round(2^prob_frac exp(-i / 2^lut_frac))``, computed here once and emitted into the HLS
as constants); ``p_c = floor(e_c 2^prob_frac / sum e)``; the output error is ``p_c -
[c == y] 2^prob_frac``, the exact cross-entropy gradient on that grid. So a training
step needs no host round trip per sample: the host streams a batch and reads two
counters (samples predicted right, sum of ``p_y``).

Optimizer: SGD applied per sample (online). A parameter's gradient is consumed by its
update as soon as it is computed (the cores' after the error they propagate, which
uses the old core), so no gradient buffer exists on chip: mini-batch accumulators
would hold one wide word per parameter (about half again the training state), which is
what keeps the on-chip state >= 100x below dense training. ``batch`` in
:meth:`Trainer.step` is the number of samples per call (one learning rate); it is
bounded by the counters' widths (``max_batch``).

Backward (straight-through for the rounding and saturation of states; ReLU passes where
``h > 0``)::

    delta_c = p_c - [c == y] 2^prob_frac                      (frac prob_frac)
    E_d[h]  = RNE((h > 0) sum_c W2[h, c] delta_c)             (error_bits)
    gW2 = h delta^T, gb2 = delta, gb1 = E_d
    E_k  = RNE(sum_{j,s} G_k[r, m, j, s] E_{k+1}[p, j, q, s])  (k = d-1 .. 1)
    gG_k = sum_{p,q} Z_k[p, m, q, r] E_{k+1}[p, j, q, s]

This module needs numpy only (it runs on the board's Python too).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import lfsr

#: float64 holds every integer below 2^53 exactly: the bound under which numpy's matmuls
#: of integer codes (the fast way to contract them) are exact
FLOAT64_EXACT_BITS = 53


class TrainingError(ValueError):
    """A training configuration or batch the arithmetic cannot take (see ``accelgen.errors``)."""


@dataclass(frozen=True)
class Widths:
    """Bit widths of the training arithmetic (see the module docstring)."""

    input_bits: int = 8
    core_bits: int = 8
    head_bits: int = 8
    act_bits: int = 8
    error_bits: int = 16
    bias_bits: int = 16
    bias_int_bits: int = 3
    acc_bits: int = 56
    lr_bits: int = 16
    lr_frac: int = 16
    prob_frac: int = 14
    lut_frac: int = 4
    lut_size: int = 256


@dataclass(frozen=True)
class Fracs:
    """Fractional bits: ``cores[k]``; ``states[k]`` of ``Z_{k+1}`` (k < d-1); ``hidden``;
    ``head``; ``errors[k]`` of ``E_{k+1}`` (``errors[d-1]`` the hidden error)."""

    cores: tuple[int, ...]
    states: tuple[int, ...]
    hidden: int
    head: int
    errors: tuple[int, ...]


@dataclass(frozen=True)
class TrainConfig:
    """Shapes, widths and scales of one trainable TT network."""

    modes_in: tuple[int, ...]
    modes_out: tuple[int, ...]
    ranks: tuple[int, ...]  # r_0 .. r_d, boundary ranks 1
    classes: int
    fracs: Fracs
    widths: Widths = field(default_factory=Widths)
    max_batch: int = 4096

    # -- shapes --------------------------------------------------------------------------------------
    @property
    def d(self) -> int:
        return len(self.modes_in)

    @property
    def in_features(self) -> int:
        return math.prod(self.modes_in)

    @property
    def hidden(self) -> int:
        return math.prod(self.modes_out)

    def core_shape(self, k: int) -> tuple[int, int, int, int]:
        return (self.ranks[k], self.modes_in[k], self.modes_out[k], self.ranks[k + 1])

    def state_shape(self, k: int) -> tuple[int, int, int, int]:
        """``Z_k`` as ``(P_k, m_k, Q_k, r_k)``; ``k = d`` is the TT output ``(hidden, 1, 1, 1)``."""
        p = math.prod(self.modes_out[:k])
        if k == self.d:
            return (p, 1, 1, 1)
        return (p, self.modes_in[k], math.prod(self.modes_in[k + 1 :]), self.ranks[k])

    def state_size(self, k: int) -> int:
        return math.prod(self.state_shape(k))

    @property
    def parameter_counts(self) -> tuple[int, ...]:
        """Elements per parameter tensor in update (draw) order: W2, b2, b1, G_{d-1} .. G_0."""
        cores = [math.prod(self.core_shape(k)) for k in reversed(range(self.d))]
        return (self.hidden * self.classes, self.classes, self.hidden, *cores)

    @property
    def draws_per_sample(self) -> int:
        return sum(self.parameter_counts)

    # -- scales ---------------------------------------------------------------------------------------
    def state_frac(self, k: int) -> int:
        """Fractional bits of ``Z_k`` (``Z_0`` is the input)."""
        return self.widths.input_bits if k == 0 else self.fracs.states[k - 1]

    def bias_frac(self, acc_frac: int) -> int:
        """A bias keeps ``bias_int_bits`` integer bits, at most the accumulator's fraction."""
        w = self.widths
        return min(acc_frac, w.bias_bits - 1 - w.bias_int_bits)

    @property
    def tt_acc_frac(self) -> int:
        return self.state_frac(self.d - 1) + self.fracs.cores[self.d - 1]

    @property
    def logit_frac(self) -> int:
        return self.fracs.hidden + self.fracs.head

    def with_(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(data: dict) -> TrainConfig:
        """The inverse of :meth:`to_dict` (a build's ``hls/train.json``), checked."""
        try:
            f = data["fracs"]
            fracs = Fracs(tuple(f["cores"]), tuple(f["states"]), int(f["hidden"]), int(f["head"]), tuple(f["errors"]))
            config = TrainConfig(tuple(data["modes_in"]), tuple(data["modes_out"]), tuple(data["ranks"]),
                                 int(data["classes"]), fracs, Widths(**data["widths"]), int(data["max_batch"]))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise TrainingError(f"not a training configuration ({exc!r})") from None
        config.check()
        return config

    # -- proofs -------------------------------------------------------------------------------------
    def accumulators(self) -> list[tuple[str, int]]:
        """Every sum the step computes, with the bits its exact value needs (sign included)."""
        w = self.widths
        state_bits = [w.input_bits + 1] + [w.act_bits] * (self.d - 1)  # the unsigned input as a signed term
        out = []
        for k in range(self.d):
            r, m, n, s = self.core_shape(k)
            p, _, q, _ = self.state_shape(k)
            out.append((f"forward core {k}", acc_bits(state_bits[k], w.core_bits, m * r)))
            out.append((f"error through core {k}", acc_bits(w.core_bits, w.error_bits, n * s)))
            grad = acc_bits(state_bits[k], w.error_bits, p * q)
            out.append((f"gradient of core {k}", grad))
            out.append((f"update of core {k}", grad + w.lr_bits + 1))
        out.append(("head logits", acc_bits(w.act_bits + 1, w.head_bits, self.hidden) + 1))
        out.append(("hidden error", acc_bits(w.head_bits, w.prob_frac + 2, self.classes)))
        out.append(("update of the head", w.act_bits + 1 + w.prob_frac + 2 + w.lr_bits + 1))
        out.append(("update of the TT bias", w.error_bits + w.lr_bits + 1))
        out.append(("softmax numerator", w.prob_frac * 2 + 2))
        return out

    def check(self) -> None:
        """Raise :class:`TrainingError` if any sum could overflow its accumulator, a scale is
        out of its range, or the widths are outside what the hardware implements."""
        w = self.widths
        problems = []
        for name, value in dataclasses.asdict(w).items():
            if not isinstance(value, int) or value < 1:
                problems.append(f"width {name} = {value!r} must be a positive integer")
        limits = {"input_bits": 24, "core_bits": 24, "head_bits": 24, "act_bits": 24, "error_bits": 24,
                  "bias_bits": 32, "acc_bits": 64, "lr_bits": 31, "prob_frac": 24, "lut_size": 1 << 20}  # fmt: skip
        problems += [f"width {k} = {getattr(w, k)} exceeds {v}" for k, v in limits.items() if getattr(w, k) > v]
        # the contractions run as float64 matmuls (exact below 2^53), the updates in int64
        problems += [
            f"the {name} needs {bits} bits, more than acc_bits={w.acc_bits}"
            + ("" if name.startswith("update") else f" or the {FLOAT64_EXACT_BITS} of exact float64")
            for name, bits in self.accumulators()
            if bits > (w.acc_bits if name.startswith("update") else min(w.acc_bits, FLOAT64_EXACT_BITS))
        ]
        if self.max_batch < 1 or (self.max_batch << w.prob_frac) >= 1 << 31:
            problems.append(
                f"max_batch = {self.max_batch} must be >= 1 and its sum of p_label below 2^31 (the 32-bit counter)"
            )
        if len(self.ranks) != self.d + 1 or self.ranks[0] != 1 or self.ranks[-1] != 1:
            problems.append(f"ranks {self.ranks} must be r_0..r_d with r_0 = r_d = 1")
        if len(self.fracs.cores) != self.d or len(self.fracs.states) != self.d - 1 or len(self.fracs.errors) != self.d:
            problems.append("fracs must hold d core, d-1 state and d error fractions")
        for name, shift in self.shifts().items():
            if not -24 <= shift <= 62:
                problems.append(f"shift {name} = {shift} is outside -24..62; the scales do not fit together")
        if problems:
            raise TrainingError("training configuration cannot be built:\n  - " + "\n  - ".join(problems))

    def shifts(self) -> dict:
        """Every requantization and stochastic-rounding shift, by name (the HLS constants)."""
        w, f = self.widths, self.fracs
        out = {}
        for k in range(self.d - 1):
            out[f"state{k + 1}"] = self.state_frac(k) + f.cores[k] - self.state_frac(k + 1)
        out["tt_bias"] = self.tt_acc_frac - self.bias_frac(self.tt_acc_frac)
        out["hidden"] = self.tt_acc_frac - f.hidden
        out["head_bias"] = self.logit_frac - self.bias_frac(self.logit_frac)
        out["lut"] = self.logit_frac - w.lut_frac
        out["hidden_error"] = f.head + w.prob_frac - f.errors[self.d - 1]
        for k in range(1, self.d):
            out[f"error{k}"] = f.cores[k] + f.errors[k] - f.errors[k - 1]
        out["update_head"] = f.hidden + w.prob_frac + w.lr_frac - f.head
        out["update_head_bias"] = w.prob_frac + w.lr_frac - self.bias_frac(self.logit_frac)
        out["update_tt_bias"] = f.errors[self.d - 1] + w.lr_frac - self.bias_frac(self.tt_acc_frac)
        for k in range(self.d):
            out[f"update_core{k}"] = self.state_frac(k) + f.errors[k] + w.lr_frac - f.cores[k]
        return out


def acc_bits(a_bits: int, b_bits: int, terms: int) -> int:
    """Signed bits that hold any sum of ``terms`` products of signed ``a_bits`` x ``b_bits`` codes."""
    return a_bits + b_bits - 1 + max(terms - 1, 0).bit_length()


# -- integer primitives (the HLS implements exactly these) ---------------------------------------------


def shift_rne(acc: np.ndarray, shift: int) -> np.ndarray:
    """``acc / 2^shift`` rounded to nearest, ties to even (a left shift when ``shift <= 0``)."""
    acc = np.asarray(acc, dtype=np.int64)
    if shift <= 0:
        return acc << np.int64(-shift)
    half = np.int64(1) << np.int64(shift - 1)
    return (acc + half - 1 + ((acc >> np.int64(shift)) & 1)) >> np.int64(shift)


def saturate(v: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(v, lo, hi)


def signed_range(bits: int, narrow: bool = False) -> tuple[int, int]:
    hi = (1 << (bits - 1)) - 1
    return (-hi if narrow else -hi - 1), hi


def shift_stochastic(v: np.ndarray, shift: int, draws: np.ndarray) -> np.ndarray:
    """``floor((v + o) / 2^shift)``, ``o = floor(u 2^shift / 2^32)`` for the draws ``u``."""
    v = np.asarray(v, dtype=np.int64)
    if shift <= 0:
        return v << np.int64(-shift)
    u = draws.astype(np.int64)
    offset = u >> np.int64(32 - shift) if shift <= 32 else u << np.int64(shift - 32)
    return (v + offset) >> np.int64(shift)


def exp_table(widths: Widths) -> np.ndarray:
    """The softmax's exp lookup: ``round(2^prob_frac * exp(-i / 2^lut_frac))``, i < lut_size."""
    i = np.arange(widths.lut_size, dtype=np.float64)
    return np.rint(np.exp(-i / (1 << widths.lut_frac)) * (1 << widths.prob_frac)).astype(np.int64)


def _exact(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _int(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.int64)


# -- the contractions (shared by the integer spec and the float calibration) -----------------------


def _rows(t: np.ndarray) -> np.ndarray:
    """``(p, a, q, b)`` -> the matrix ``(p q, a b)``: the contractions as matmuls."""
    p, a, q, b = t.shape
    return t.transpose(0, 2, 1, 3).reshape(p * q, a * b)


def _core_matrix(core: np.ndarray) -> np.ndarray:
    r, m, n, s = core.shape
    return core.transpose(1, 0, 2, 3).reshape(m * r, n * s)


def contract_forward(z: np.ndarray, core: np.ndarray, next_shape: Sequence[int]) -> np.ndarray:
    """``Z_{k+1}[p, j, q, s] = sum Z_k[p, m, q, r] G_k[r, m, j, s]``, reshaped to ``next_shape``."""
    p, _, q, _ = z.shape
    _, _, n, s = core.shape
    out = (_rows(z) @ _core_matrix(core)).reshape(p, q, n, s).transpose(0, 2, 1, 3)
    return out.reshape(next_shape)


def contract_error(core: np.ndarray, err_next: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``E_k[p, m, q, r] = sum G_k[r, m, j, s] E_{k+1}[p, j, q, s]``."""
    p, m, q, r = shape
    e = err_next.reshape(p, core.shape[2], q, core.shape[3])
    return (_rows(e) @ _core_matrix(core).T).reshape(p, q, m, r).transpose(0, 2, 1, 3)


def contract_gradient(z: np.ndarray, err_next: np.ndarray, core_shape: Sequence[int]) -> np.ndarray:
    """``gG_k[r, m, j, s] = sum Z_k[p, m, q, r] E_{k+1}[p, j, q, s]``."""
    p, m, q, r = z.shape
    e = err_next.reshape(p, core_shape[2], q, core_shape[3])
    return (_rows(z).T @ _rows(e)).reshape(m, r, core_shape[2], core_shape[3]).transpose(1, 0, 2, 3)


# -- state ----------------------------------------------------------------------------------------------


@dataclass
class TrainState:
    """The integer codes held on chip: cores, TT bias, head (``(hidden, classes)``), head bias, LFSR."""

    cores: list[np.ndarray]
    tt_bias: np.ndarray
    head: np.ndarray
    head_bias: np.ndarray
    lfsr: int

    def copy(self) -> TrainState:
        return TrainState([c.copy() for c in self.cores], self.tt_bias.copy(), self.head.copy(),
                          self.head_bias.copy(), int(self.lfsr))  # fmt: skip

    def flat(self) -> np.ndarray:
        """All codes in update order (W2, b2, b1, G_{d-1}..G_0) then the LFSR state, as int64."""
        parts = [self.head.ravel(), self.head_bias, self.tt_bias, *[c.ravel() for c in reversed(self.cores)]]
        return np.concatenate([_int(p) for p in parts] + [np.array([self.lfsr], dtype=np.int64)])

    @staticmethod
    def from_flat(config: TrainConfig, flat: np.ndarray) -> TrainState:
        flat = np.asarray(flat, dtype=np.int64)
        counts = config.parameter_counts
        if flat.size != sum(counts) + 1:
            raise TrainingError(f"a state of this network has {sum(counts) + 1} words, got {flat.size}")
        parts, at = [], 0
        for n in counts:
            parts.append(flat[at : at + n].copy())
            at += n
        cores = [parts[3 + (config.d - 1 - k)].reshape(config.core_shape(k)) for k in range(config.d)]
        head = parts[0].reshape(config.hidden, config.classes)
        return TrainState(cores, parts[2], head, parts[1], int(flat[-1]) & lfsr.MASK)

    def equals(self, other: TrainState) -> bool:
        return bool(np.array_equal(self.flat(), other.flat()))


def quantize_state(config: TrainConfig, cores, tt_bias, head, head_bias, seed: int) -> TrainState:
    """Codes of float parameters on the configuration's grids (nearest, saturated)."""
    w, f = config.widths, config.fracs

    def codes(x, frac, bits, narrow):
        lo, hi = signed_range(bits, narrow)
        return saturate(np.rint(np.asarray(x, dtype=np.float64) * 2.0**frac).astype(np.int64), lo, hi)

    if not 0 < seed <= lfsr.MASK:
        raise TrainingError(f"seed {seed} must be a nonzero 32-bit integer (an LFSR never leaves 0)")
    return TrainState(
        [codes(c, f.cores[k], w.core_bits, True) for k, c in enumerate(cores)],
        codes(tt_bias, config.bias_frac(config.tt_acc_frac), w.bias_bits, False),
        codes(head, f.head, w.head_bits, True),
        codes(head_bias, config.bias_frac(config.logit_frac), w.bias_bits, False),
        int(seed),
    )


def dequantize_state(config: TrainConfig, state: TrainState) -> dict:
    """The float values the codes stand for (what an exported model holds)."""
    f = config.fracs
    return {
        "cores": [c * 2.0 ** -f.cores[k] for k, c in enumerate(state.cores)],
        "tt_bias": state.tt_bias * 2.0 ** -config.bias_frac(config.tt_acc_frac),
        "head": state.head * 2.0**-f.head,
        "head_bias": state.head_bias * 2.0 ** -config.bias_frac(config.logit_frac),
    }


# -- one sample --------------------------------------------------------------------------------------


def quantize_input(config: TrainConfig, x: np.ndarray) -> np.ndarray:
    """Input codes: ``clip(RNE(x 2^input_bits), 0, 2^input_bits - 1)`` (the QONNX input Quant)."""
    bits = config.widths.input_bits
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * (1 << bits)), 0, (1 << bits) - 1).astype(np.int64)


@dataclass
class Forward:
    """What the forward keeps for the backward: the states ``Z_0..Z_{d-1}``, the hidden codes, the logits."""

    states: list[np.ndarray]
    hidden: np.ndarray
    logits: np.ndarray


def forward(config: TrainConfig, state: TrainState, x_codes: np.ndarray) -> Forward:
    """The integer forward of one sample (``x_codes``: ``in_features`` input codes)."""
    w, shifts = config.widths, config.shifts()
    lo, hi = signed_range(w.act_bits)
    z = _int(x_codes).reshape(config.state_shape(0))
    states = [z]
    for k in range(config.d):
        acc = _int(contract_forward(_exact(z), _exact(state.cores[k]), config.state_shape(k + 1)))
        if k < config.d - 1:
            z = saturate(shift_rne(acc, shifts[f"state{k + 1}"]), lo, hi)
            states.append(z)
    acc = acc.reshape(-1) + (state.tt_bias << np.int64(shifts["tt_bias"]))
    hidden = saturate(shift_rne(acc, shifts["hidden"]), 0, (1 << w.act_bits) - 1)
    logits = _int(_exact(hidden) @ _exact(state.head)) + (state.head_bias << np.int64(shifts["head_bias"]))
    return Forward(states, hidden, logits)


def softmax_codes(config: TrainConfig, logits: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``p_c`` on the ``prob_frac`` grid from the exact logits (the exp table, integer division)."""
    w = config.widths
    gap = logits.max() - logits
    shift = config.shifts()["lut"]
    index = gap >> np.int64(shift) if shift >= 0 else gap << np.int64(-shift)
    e = table[np.minimum(index, w.lut_size - 1)]
    return (e << np.int64(w.prob_frac)) // e.sum()


@dataclass
class Gradients:
    """Exact integer gradients of one sample in update order (W2, b2, b1, G_{d-1}..G_0), with
    their fractional bits; ``prob`` the softmax codes, ``right`` whether argmax hit the label."""

    values: list[np.ndarray]
    fracs: list[int]
    prob: np.ndarray
    right: bool


def gradients(config: TrainConfig, state: TrainState, x_codes: np.ndarray, label: int, table: np.ndarray) -> Gradients:
    """Forward, softmax and backward of one sample (nothing is updated)."""
    w, f, shifts = config.widths, config.fracs, config.shifts()
    fw = forward(config, state, x_codes)
    prob = softmax_codes(config, fw.logits, table)
    delta = prob.copy()
    delta[label] -= 1 << w.prob_frac
    lo_e, hi_e = signed_range(w.error_bits)
    hidden_acc = _int(_exact(state.head) @ _exact(delta)) * (fw.hidden > 0)
    err = saturate(shift_rne(hidden_acc, shifts["hidden_error"]), lo_e, hi_e)
    values = [np.outer(fw.hidden, delta), delta, err]
    fracs = [f.hidden + w.prob_frac, w.prob_frac, f.errors[config.d - 1]]
    for k in reversed(range(config.d)):
        values.append(_int(contract_gradient(_exact(fw.states[k]), _exact(err), config.core_shape(k))))
        fracs.append(config.state_frac(k) + f.errors[k])
        if k > 0:
            acc = _int(contract_error(_exact(state.cores[k]), _exact(err), config.state_shape(k)))
            err = saturate(shift_rne(acc, shifts[f"error{k}"]), lo_e, hi_e)
    return Gradients(values, fracs, prob, bool(int(np.argmax(fw.logits)) == label))


def train_sample(config: TrainConfig, state: TrainState, x_codes: np.ndarray, label: int, eta: int,
                 table: np.ndarray, draws_table: lfsr.DrawTable) -> tuple[bool, int]:  # fmt: skip
    """One SGD step on one sample, in place. Returns (predicted right, ``p_y`` code)."""
    w, shifts = config.widths, config.shifts()
    g = gradients(config, state, x_codes, label, table)
    draws = draws_table.draws(state.lfsr, config.draws_per_sample)
    state.lfsr = int(draws[-1])
    chunks = _split(draws, config.parameter_counts)
    e = np.int64(eta)
    bias, core = signed_range(w.bias_bits), signed_range(w.core_bits, True)
    state.head = _update(state.head, g.values[0] * e, shifts["update_head"], chunks[0],
                         signed_range(w.head_bits, True))  # fmt: skip
    state.head_bias = _update(state.head_bias, g.values[1] * e, shifts["update_head_bias"], chunks[1], bias)
    state.tt_bias = _update(state.tt_bias, g.values[2] * e, shifts["update_tt_bias"], chunks[2], bias)
    for i, k in enumerate(reversed(range(config.d))):
        state.cores[k] = _update(state.cores[k], g.values[3 + i] * e, shifts[f"update_core{k}"], chunks[3 + i], core)
    return g.right, int(g.prob[label])


def _split(draws: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    bounds = np.cumsum([0, *counts])
    return [draws[bounds[i] : bounds[i + 1]] for i in range(len(counts))]


def _update(theta: np.ndarray, step: np.ndarray, shift: int, draws: np.ndarray, rng: tuple[int, int]) -> np.ndarray:
    rounded = shift_stochastic(step.reshape(-1), shift, draws).reshape(theta.shape)
    return saturate(theta - rounded, *rng)


def predict(config: TrainConfig, state: TrainState, x_codes: np.ndarray) -> np.ndarray:
    """Class per sample (the first maximum of the exact logits) for a batch of input codes."""
    return np.array([int(np.argmax(forward(config, state, x).logits)) for x in x_codes], dtype=np.int64)


def logits(config: TrainConfig, state: TrainState, x_codes: np.ndarray) -> np.ndarray:
    """Exact logit codes (frac :attr:`TrainConfig.logit_frac`) per sample."""
    return np.stack([forward(config, state, x).logits for x in x_codes])


def initial_parameters(modes_in, modes_out, ranks, classes: int, seed: int = 0) -> dict:
    """Float initial parameters: cores normal with ``var(W) = 1 / in_features`` shared equally
    (as ``accelgen.tensor.TTLinear``), the head uniform in ``+-1/sqrt(hidden)``, biases zero."""
    rng = np.random.default_rng(seed)
    d, n_in, hidden = len(modes_in), math.prod(modes_in), math.prod(modes_out)
    std = (1.0 / (n_in * math.prod(ranks))) ** (1.0 / (2 * d))
    cores = [rng.standard_normal((ranks[k], modes_in[k], modes_out[k], ranks[k + 1])) * std for k in range(d)]
    bound = 1.0 / math.sqrt(hidden)
    head = rng.uniform(-bound, bound, (hidden, classes))
    return {"cores": cores, "tt_bias": np.zeros(hidden), "head": head, "head_bias": np.zeros(classes)}


# -- float calibration --------------------------------------------------------------------------------


def _frac_for(amax: float, bits: int, headroom: float = 1.0) -> int:
    qmax = (1 << (bits - 1)) - 1
    return int(math.floor(math.log2(qmax / max(amax * headroom, 1e-30))))


def calibrate(modes_in, modes_out, ranks, classes, cores, head, x: np.ndarray, y: np.ndarray,
              widths: Widths = Widths(), core_headroom: float = 2.0, head_headroom: float = 4.0,
              max_batch: int = 4096) -> TrainConfig:  # fmt: skip
    """Fractional bits from the initial float parameters and a calibration batch: each
    tensor's largest magnitude (cores and head with ``core_headroom`` / ``head_headroom``, since they
    grow while training) fits its width. Errors are sized from the initial network's float backward,
    where they are largest."""
    d = len(modes_in)
    probe = TrainConfig(tuple(modes_in), tuple(modes_out), tuple(ranks), classes,
                        Fracs((0,) * d, (0,) * (d - 1), 0, 0, (0,) * d), widths, max_batch)  # fmt: skip
    state_max = np.zeros(d - 1)
    hidden_max, err_max = 0.0, np.zeros(d)
    for xs, label in zip(np.asarray(x, dtype=np.float64), y):
        z = xs.reshape(probe.state_shape(0))
        zs = [z]
        for k in range(d):
            z = contract_forward(z, cores[k], probe.state_shape(k + 1))
            zs.append(z)
            if k < d - 1:
                state_max[k] = max(state_max[k], np.abs(z).max())
        h = np.maximum(z.reshape(-1), 0)
        hidden_max = max(hidden_max, h.max())
        logit = h @ head
        p = np.exp(logit - logit.max())
        p /= p.sum()
        p[int(label)] -= 1
        err = (head @ p) * (h > 0)
        err_max[d - 1] = max(err_max[d - 1], np.abs(err).max())
        for k in range(d - 1, 0, -1):
            err = contract_error(cores[k], err, probe.state_shape(k))
            err_max[k - 1] = max(err_max[k - 1], np.abs(err).max())
    w = widths
    fracs = Fracs(
        cores=tuple(_frac_for(np.abs(c).max(), w.core_bits, core_headroom) for c in cores),
        states=tuple(_frac_for(m, w.act_bits) for m in state_max),
        hidden=_frac_for(hidden_max, w.act_bits + 1),
        head=_frac_for(np.abs(head).max(), w.head_bits, head_headroom),
        errors=tuple(_frac_for(m, w.error_bits) for m in err_max),
    )
    config = probe.with_(fracs=fracs)
    config.check()
    return config
