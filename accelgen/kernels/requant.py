"""The requantization unit fused behind every accumulating kernel (one per PE).

Reads the IR's requantizer once (:func:`describe`) into a small summary; :func:`cost`
prices ``pe`` units plus their parameter tables.

* Thresholds, a (C or 1, L) table of accumulator-width entries: each unit compares the
  accumulator with the L thresholds of its channel at once (L carry-chain comparators)
  and counts the ones passed (a thermometer-to-binary encoder, ~one LUT per level). The
  table is a ROM per PE (C / pe rows of L x acc_bits); a shared (1, L) table is constants.
* MultiplyShift: an acc_bits x multiplier_bits product, the offset adder, the clip
  comparators; per-channel multipliers and offsets are a ROM per PE. The product is built
  where the fold's ``requant`` says (:func:`products`): in DSP48E2 tiles ("dsp", requant.h's
  DspProduct) or in LUTs and the carry chain ("fabric", FabricProduct,
  :func:`accelgen.kernels.hw.fabric_multiplier`), the same value either way.

A matrix or vector unit finishes its output words once every ``sf`` cycles (its synapse
folds), so its multiply-shift requantizers are shared in time (:func:`units`,
:func:`shared_cost`, hls/accelgen/mvau.h SharedRequant): DSPs go to products, not to
requantizers that would idle ``sf - 1`` cycles in ``sf``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelgen import ir
from accelgen.kernels import hw
from accelgen.kernels.base import NONE, Requantizers, Resources, ceil_div
from accelgen.plan import DEFAULT_PRODUCT, REQUANT_PRODUCTS


@dataclass(frozen=True)
class RequantSpec:
    """``kind``: none / thresholds / multiply_shift. ``levels``: L. ``channel_bits``:
    bits stored per channel (0: every channel shares constants). ``multiplier_bits``."""

    kind: str = "none"
    levels: int = 0
    channel_bits: int = 0
    multiplier_bits: int = 0


NO_REQUANT = RequantSpec()


def _varies(a: np.ndarray) -> bool:
    a = np.asarray(a)
    return a.size > 1 and bool(np.any(a != a.reshape(-1)[0]))


def describe(rq: ir.Requant | None, acc_bits: int, out_bits: int) -> RequantSpec:
    """Summarise an integer requantizer for the cost model (None: the accumulator is the output)."""
    if rq is None:
        return NO_REQUANT
    if isinstance(rq, ir.Thresholds):
        rows, levels = rq.thresholds.shape
        per_channel = levels * acc_bits if rows > 1 else 0
        per_channel += out_bits if _varies(rq.base) else 0
        per_channel += 1 if _varies(rq.direction) else 0
        return RequantSpec("thresholds", int(levels), int(per_channel))
    if isinstance(rq, ir.MultiplyShift):
        m_bits = rq.multiplier_bits
        offset_bits = ir.signed_bits_for(int(np.min(rq.offset)), int(np.max(rq.offset)))
        per_channel = (m_bits if _varies(rq.multiplier) else 0) + (offset_bits if _varies(rq.offset) else 0)
        per_channel += 2 * out_bits if (_varies(rq.lo) or _varies(rq.hi)) else 0
        per_channel += 1 if _varies(rq.direction) else 0
        return RequantSpec("multiply_shift", 0, int(per_channel), int(m_bits))
    raise ValueError(f"requantizer {type(rq).__name__} is not integer")  # verify() forbids it after the passes


def products(spec: RequantSpec) -> dict[str, list[str]]:
    """The ``requant`` legal values of a kernel with requantizer ``spec``: both product
    bindings for a multiply-shift, none to choose otherwise (a kernel's legal() adds these)."""
    return {"requant": list(REQUANT_PRODUCTS)} if spec.kind == "multiply_shift" else {}


def units(spec: RequantSpec, lanes: int, sf: int, product: str = DEFAULT_PRODUCT) -> Requantizers:
    """The requantizers of a unit with ``lanes`` lanes per output word, finished once every
    ``sf`` cycles: ``ceil(lanes / sf)`` multiply-shift units shared in time when ``sf > 1``
    (each of ``lanes - ceil(lanes / sf)`` DSP products saved costs two registers of the bank
    and a multiplexer input); comparator (thresholds) and pass-through requantizers use no
    DSP and stay one per lane. ``product``: where a multiply-shift unit's product is built
    (the fold's ``requant``; other kinds have no product and keep the default)."""
    product = product if spec.kind == "multiply_shift" else DEFAULT_PRODUCT
    if spec.kind == "multiply_shift" and sf > 1:
        return Requantizers(spec.kind, lanes, ceil_div(lanes, sf), product)
    return Requantizers(spec.kind, lanes, lanes, product)


def _unit(spec: RequantSpec, acc_bits: int, out_bits: int, product: str) -> tuple[Resources, int]:
    """One requantizer (its output registered) and its latency; ``product``: "dsp" or "fabric"."""
    if spec.kind == "thresholds":
        return Resources(lut=spec.levels * hw.comparator_luts(acc_bits) + spec.levels, ff=out_bits), 2
    if product == "fabric":
        mul, mul_depth = hw.fabric_multiplier(acc_bits, spec.multiplier_bits), hw.FABRIC_MUL_LATENCY
    else:
        mul, mul_depth = Resources(dsp=hw.dsp_tiles(acc_bits, spec.multiplier_bits)), hw.DSP_LATENCY
    width = acc_bits + spec.multiplier_bits
    unit = mul + hw.adder(width)
    return unit + Resources(lut=2 * hw.comparator_luts(width) + out_bits, ff=out_bits), mul_depth + 2


def cost(spec: RequantSpec, acc_bits: int, out_bits: int, pe: int, channels: int,
         copies: int = 1, product: str = DEFAULT_PRODUCT) -> tuple[Resources, int]:  # fmt: skip
    """Resources of ``pe`` units serving ``channels`` channels, and the unit's latency;
    ``copies``: that many units per table row (several pixels per cycle share the tables);
    ``product``: where a multiply-shift unit's product is built."""
    if spec.kind == "none":
        return NONE, 0
    rows = ceil_div(channels, pe)
    table = hw.rom(spec.channel_bits, rows) * pe if spec.channel_bits else NONE
    unit, depth = _unit(spec, acc_bits, out_bits, product)
    return unit * pe * copies + table, depth


def shared_cost(spec: RequantSpec, acc_bits: int, out_bits: int, rq: Requantizers,
                folds: int) -> tuple[Resources, int]:  # fmt: skip
    """mvau.h's SharedRequant for a unit of ``folds`` channel folds: ``rq.units`` units, each
    with its parameter table laid out by the schedule (a ROM ``folds * rq.steps`` deep), the
    bank holding a finished word's accumulators (``lanes * acc_bits`` FFs), each unit's
    ``steps``:1 multiplexer of the bank, the output word register (``lanes * out_bits`` FFs,
    one enable LUT per lane) and the step, fold and busy registers; the latency grows by
    the ``steps`` cycles a word takes; each unit's product is built where ``rq.product`` says."""
    unit, depth = _unit(spec, acc_bits, out_bits, rq.product)
    table = hw.rom(spec.channel_bits, folds * rq.steps) if spec.channel_bits else NONE
    mux = Resources(lut=hw.mux_luts(rq.steps, acc_bits))
    word = Resources(lut=rq.lanes, ff=rq.lanes * (acc_bits + out_bits))
    counters = (rq.steps.bit_length() + max(folds - 1, 0).bit_length() + 1) * Resources(lut=1, ff=1)
    return (unit + table + mux) * rq.units + word + counters, depth + rq.steps
