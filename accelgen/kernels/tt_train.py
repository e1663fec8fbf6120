"""The training kernel of a TT network (hls/accelgen/tt_train.h): its one description.

:func:`phases` lists the loop nests one training sample runs, in the order the generated
top calls them, with the shapes and shifts the template instantiates them with
(:func:`core_steps`, :func:`head_step`); the cycle estimate, the multipliers and the
on-chip memories are derived from the same lists, so what is priced is what is emitted.

Timing model (an estimate, no vendor tool ran): every phase is a nest whose element loop
runs its reduction loop pipelined at II = 1 with ``lanes`` products per cycle; an element
costs ``ceil(reduction / lanes)`` cycles plus the pipeline's fill (BRAM read + DSP
latency); the phases of a sample run one after the other; an update draws one LFSR word
per element (the 32 LFSR steps of a draw are one unrolled XOR network).

Memory: every on-chip array at its bit width, packed (``bits * depth / 8`` bytes):
cores, head, biases (the trained state), the states kept for the backward (input, ``Z_1
.. Z_{d-1}``, hidden), two ping-pong error buffers and the logits / softmax registers.
There is no gradient buffer: each gradient is consumed by its update (see the spec).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from accelgen.kernels import hw
from accelgen.runtime.training.spec import TrainConfig

#: products per cycle of every reduction loop unless the build says otherwise
DEFAULT_LANES = 8
#: fill of one element's pipelined reduction: the operands' BRAM read and the DSP's latency
ELEMENT_FILL = hw.BRAM_READ_LATENCY + hw.DSP_LATENCY


@dataclass(frozen=True)
class Phase:
    """One loop nest of a training sample: ``elements`` results of ``reduction`` products each."""

    name: str
    elements: int
    reduction: int
    lanes: int
    a_bits: int
    b_bits: int
    draws: int = 0  # LFSR draws (one per updated element)

    @property
    def cycles(self) -> int:
        if self.reduction == 0:
            return self.elements + ELEMENT_FILL
        return self.elements * (math.ceil(self.reduction / self.lanes) + ELEMENT_FILL)

    @property
    def macs(self) -> int:
        return self.elements * self.reduction

    @property
    def dsp(self) -> int:
        mults = self.lanes if self.reduction > 1 else 1
        return mults * hw.dsp_tiles(self.a_bits, self.b_bits) if self.reduction else 0


@dataclass(frozen=True)
class Memory:
    name: str
    bits: int
    depth: int

    @property
    def bytes(self) -> float:
        return self.bits * self.depth / 8


def core_steps(config: TrainConfig, lanes: int = DEFAULT_LANES) -> list[dict]:
    """The template arguments of every core (``TTTrainCore``), index k = 0..d-1."""
    shifts = config.shifts()
    steps = []
    for k in range(config.d):
        p, m, q, r = config.state_shape(k)
        _, _, n, s = config.core_shape(k)
        steps.append({
            "k": k, "P": p, "M": m, "Q": q, "R": r, "N": n, "S": s, "lanes": lanes,
            "state_shift": shifts.get(f"state{k + 1}", 0), "error_shift": shifts.get(f"error{k}", 0),
            "update_shift": shifts[f"update_core{k}"], "in_elems": p * m * q * r, "out_elems": p * n * q * s,
            "core_elems": r * m * n * s,
        })  # fmt: skip
    return steps


def head_step(config: TrainConfig, lanes: int = DEFAULT_LANES) -> dict:
    """The template arguments of the head (``TrainHead``)."""
    s = config.shifts()
    return {"hidden": config.hidden, "classes": config.classes, "tt_bias_shift": s["tt_bias"],
            "hidden_shift": s["hidden"], "head_bias_shift": s["head_bias"], "lut_shift": s["lut"],
            "error_shift": s["hidden_error"], "update_head": s["update_head"],
            "update_head_bias": s["update_head_bias"], "update_tt_bias": s["update_tt_bias"],
            "lut_size": config.widths.lut_size, "lanes": lanes}  # fmt: skip


def phases(config: TrainConfig, lanes: int = DEFAULT_LANES, train: bool = True) -> list[Phase]:
    """The loop nests of one sample (training, or inference only), in execution order."""
    w = config.widths
    grad_bits = w.error_bits + w.act_bits
    steps = core_steps(config, lanes)
    out = [Phase(f"forward core {s['k']}", s["out_elems"], s["M"] * s["R"], lanes, w.act_bits + 1, w.core_bits)
           for s in steps]  # fmt: skip
    out.append(Phase("hidden (bias, ReLU)", config.hidden, 0, lanes, 0, 0))
    out.append(Phase("head logits", config.classes, config.hidden, lanes, w.act_bits + 1, w.head_bits))
    if not train:
        return out
    out.append(Phase("softmax", 2 * config.classes, 0, lanes, 0, 0))
    out.append(Phase("hidden error", config.hidden, config.classes, 1, w.head_bits, w.prob_frac + 2))
    upd_bits = w.lr_bits + 1
    out.append(Phase("update head", config.hidden * config.classes, 1, 1, w.act_bits + w.prob_frac + 2, upd_bits,
                     draws=config.hidden * config.classes))  # fmt: skip
    out.append(Phase("update head bias", config.classes, 1, 1, w.prob_frac + 2, upd_bits, draws=config.classes))
    out.append(Phase("update TT bias", config.hidden, 1, 1, w.error_bits, upd_bits, draws=config.hidden))
    for s in reversed(steps):
        if s["k"] > 0:
            out.append(Phase(f"error through core {s['k']}", s["in_elems"], s["N"] * s["S"], lanes, w.core_bits,
                             w.error_bits))  # fmt: skip
        out.append(Phase(f"update core {s['k']}", s["core_elems"], s["P"] * s["Q"], lanes, w.act_bits + 1,
                         w.error_bits, draws=s["core_elems"]))  # fmt: skip
        out.append(Phase(f"update core {s['k']} (SR)", s["core_elems"], 1, 1, grad_bits, upd_bits))
    return out


def memories(config: TrainConfig) -> list[Memory]:
    """Every on-chip array of the training design at its width."""
    w = config.widths
    d = config.d
    mems = [Memory(f"core {k}", w.core_bits, math.prod(config.core_shape(k))) for k in range(d)]
    mems += [Memory("TT bias", w.bias_bits, config.hidden), Memory("head", w.head_bits, config.hidden * config.classes),
             Memory("head bias", w.bias_bits, config.classes), Memory("input", w.input_bits, config.in_features)]  # fmt: skip
    mems += [Memory(f"state Z{k}", w.act_bits, config.state_size(k)) for k in range(1, d)]
    mems.append(Memory("hidden", w.act_bits, config.hidden))
    mems += [Memory(f"error buffer {name}", w.error_bits, depth) for name, depth in error_buffers(config).items()]
    mems.append(Memory("TT output (exact sums)", tt_out_bits(config), config.hidden))
    mems += [Memory("logits", w.acc_bits, config.classes), Memory("softmax delta", w.prob_frac + 2, config.classes)]
    mems.append(Memory("LFSR", 32, 1))
    return mems


def tt_out_bits(config: TrainConfig) -> int:
    """Width of the last core's exact sums, as stored before the bias (``accumulators()``)."""
    return dict(config.accumulators())[f"forward core {config.d - 1}"]


def error_buffers(config: TrainConfig) -> dict[str, int]:
    """Ping-pong buffers of the errors: ``E_k`` in buffer ``k % 2`` (E_d the hidden error)."""
    sizes = {"a": 0, "b": 0}
    for k in range(1, config.d + 1):
        name = "a" if k % 2 == 0 else "b"
        sizes[name] = max(sizes[name], config.state_size(k))
    return sizes


def error_buffer_of(k: int) -> str:
    return "a" if k % 2 == 0 else "b"


def device_bytes(config: TrainConfig) -> int:
    """On-chip bytes of the training state (every array of :func:`memories`, packed)."""
    return math.ceil(sum(m.bytes for m in memories(config)))


def dense_training_bytes(config: TrainConfig) -> dict[str, int]:
    """Dense training of the same network in fp32 with the same optimizer (per-sample SGD):
    weights and biases, their gradients, no optimizer state (plain SGD keeps none), and the
    activations one sample's backward needs (input, pre-activation, hidden, logits) plus its
    error vectors (hidden, logits)."""
    params = config.in_features * config.hidden + config.hidden + config.hidden * config.classes + config.classes
    acts = config.in_features + 2 * config.hidden + config.classes
    errors = config.hidden + config.classes
    parts = {"weights": 4 * params, "gradients": 4 * params, "optimizer_state": 0, "activations": 4 * (acts + errors)}
    parts["total"] = sum(parts.values())
    return parts


def cycles_per_sample(config: TrainConfig, lanes: int = DEFAULT_LANES, train: bool = True) -> int:
    return sum(p.cycles for p in phases(config, lanes, train))


def resources(config: TrainConfig, lanes: int = DEFAULT_LANES) -> dict[str, int]:
    """DSP (no sharing between phases: an upper bound), BRAM18, LUTs and FFs: the memories,
    and per phase its products' adder tree, accumulator and loop control; the stochastic
    rounders (an LFSR and an adder per update phase) and the softmax's exp table and divider.
    Estimates with the inference kernels' primitives (:mod:`accelgen.kernels.hw`), uncalibrated."""
    w = config.widths
    total = hw.NONE
    for m in memories(config):
        total = total + hw.ram(m.bits, m.depth)
    for p in phases(config, lanes):
        total = total + hw.KERNEL_CONTROL  # the phase's counters and address generators
        if p.reduction > 1:
            product_bits = p.a_bits + p.b_bits
            total = total + hw.adder_tree(p.lanes, product_bits) + hw.adder(w.acc_bits)
        if p.draws:
            total = total + hw.adder(p.a_bits + p.b_bits)  # the random bits added before the shift
    total = total + hw.Resources(lut=32, ff=32)  # the LFSR: 32 state bits, a few XOR taps each
    total = total + hw.rom(w.prob_frac + 1, w.lut_size)
    # the softmax's divider: e_c * 2^prob_frac over the sum of the classes' table entries, as a
    # sequential subtract-and-shift divider (a subtractor and a remainder register per bit)
    dividend = 2 * w.prob_frac + 1 + math.ceil(math.log2(max(2, config.classes)))
    total = total + hw.adder(dividend) + hw.Resources(ff=dividend)
    dsp = sum(p.dsp for p in phases(config, lanes))
    return {"dsp": dsp, "bram18": total.bram18, "lut": total.lut, "ff": total.ff}


def fit(config: TrainConfig, board, lanes: int = DEFAULT_LANES, max_util: float = 0.8) -> dict:
    """The design's estimated resources against the board's budget (the inference rule:
    ``max_util`` of every resource)."""
    need = resources(config, lanes)
    budget = board.budget(max_util)
    over = {k: v - budget[k] for k, v in need.items() if k in budget and v > budget[k]}
    return {"board": board.name, "max_util": max_util, "need": need,
            "budget": {k: budget[k] for k in need if k in budget}, "fits": not over, "over": over}  # fmt: skip
