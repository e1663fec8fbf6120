"""The board interface of an unrolled core: the dataflow path's AXI-Stream and AXI-Lite ports.

The wrapper (``templates/rtl/axi.v.j2``) takes the core's input as ``bus_bits``-wide words in
the packed format of :mod:`accelgen.runtime.packing` (the format the HLS input packers read)
and gives its output back in the same format, with the register map of a Vitis HLS
``s_axilite`` control bundle (``ap_start`` / ``ap_done`` / ``ap_idle`` at 0x00, ``reps`` at
0x10). So the block design and the PYNQ driver of the dataflow path serve the RTL path too.
This module computes every bit position of that wrapper and the port records the driver
reads (``accel.json`` ``hardware.inputs`` / ``outputs``), from the same design description.
"""

from __future__ import annotations

from typing import Any

#: the bus width of the dataflow path's streams (accelgen.kernels.shell.DEFAULT_BUS_BITS)
BUS_BITS = 64
#: AXI-Lite address bits: control at 0x00, reps at 0x10 (as a Vitis HLS control bundle)
ADDR_BITS = 5
INPUT_PORT, OUTPUT_PORT = "in0", "out0"


def port_code(port: dict[str, Any]) -> dict[str, Any]:
    """How a core port's codes travel on the bus: bits, two's complement or not, bipolar."""
    if port.get("bipolar"):
        return {"bits": 1, "signed": True, "bipolar": True}
    if port.get("kind") == "acc":  # a raw accumulator leaves at the core's accumulator width
        return {"bits": int(port["code_bits"]), "signed": True, "bipolar": False}
    return {"bits": int(port["bits"]), "signed": bool(port["signed"]), "bipolar": False}


def _index_bits(words: int) -> int:
    return max(1, (words - 1).bit_length())


def _side(name: str, port: dict[str, Any], bus_bits: int) -> dict[str, Any]:
    """Word layout of one port: per element, its bits in the words and its lane of the core."""
    code = port_code(port)
    bits = code["bits"]
    if bits > bus_bits:
        raise ValueError(f"{bits}-bit codes do not fit a {bus_bits}-bit bus")
    per = bus_bits // bits
    size = int(port["size"])
    words = -(-size // per)
    lane = int(port["lane_bits"])
    elements = []
    for i in range(size):
        lsb = (i // per) * bus_bits + (i % per) * bits
        elements.append({"lsb": lsb, "msb": lsb + bits - 1, "lane_lsb": i * lane, "lane_msb": i * lane + lane - 1})
    gaps = []
    for w in range(words):
        used = min(per, size - w * per) * bits
        if used < bus_bits:
            gaps.append({"lsb": w * bus_bits + used, "msb": (w + 1) * bus_bits - 1})
    return {"name": name, **code, "size": size, "per_word": per, "words": words, "index_bits": _index_bits(words),
            "lanes_bits": size * lane, "elements": elements, "gaps": gaps}  # fmt: skip


def wrapper(design: dict[str, Any], bus_bits: int = BUS_BITS) -> dict[str, Any]:
    """What ``axi.v.j2`` renders: the module names and both ports' word layouts."""
    return {
        "module": f"{design['top']}_axi",
        "top_module": design["top"],
        "bus_bits": bus_bits,
        "addr_bits": ADDR_BITS,
        "in": _side(INPUT_PORT, design["input"], bus_bits),
        "out": _side(OUTPUT_PORT, design["output"], bus_bits),
    }


def board_ports(design: dict[str, Any]) -> dict[str, Any]:
    """The board interface for design.json: bus width, register map, and per port the fields
    the dataflow path's design.json gives (name, elements, code, codes per word, words per
    sample); the driver adds the model's tensor names and shapes."""
    a = design["axi"]

    def port(side: dict[str, Any]) -> dict[str, Any]:
        return {"name": side["name"], "elements": side["size"], "code": {k: side[k] for k in ("bits", "signed", "bipolar")},
                "codes_per_word": side["per_word"], "words_per_sample": side["words"]}  # fmt: skip

    return {
        "top": a["module"],
        "bus_bits": a["bus_bits"],
        "control": {"ctrl": 0x00, "reps": 0x10, "addr_bits": a["addr_bits"]},
        "inputs": [port(a["in"])],
        "outputs": [port(a["out"])],
        "tlast": "last word of each call (batch of reps samples); the input TLAST is not read",
    }
