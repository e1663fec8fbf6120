"""Boards: one TOML file per board in ``boards/``, read and checked here, nowhere else.

A board names its FPGA part, the Vivado board part, the processing system, the default
PL clock, the DDR bandwidth and its programmable-logic resources. The explorer plans
against :meth:`Board.budget`, a fraction of each resource.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelgen.errors import InputError
from accelgen.resources import data_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: resources every board file lists, in the order reports show them
RESOURCES = ("lut", "ff", "dsp", "bram18", "uram")
#: resources a board file may list; ``lutram`` = LUTs usable as memory (SLICEM LUTs)
OPTIONAL_RESOURCES = ("lutram",)
PROCESSING_SYSTEMS = ("zynq7", "zynqmp")
DEFAULT_MAX_UTIL = 0.8
DEFAULT_BOARD = "ultra96v2"  # the board a build, a generated project and the CLI take when none is named

_REQUIRED = {
    "name": str,
    "title": str,
    "part": str,
    "board_part": str,
    "processing_system": str,
    "default_clock_mhz": (int, float),
    "ddr_bandwidth_gbps": (int, float),
}


@dataclass(frozen=True)
class Board:
    """A board's figures as its TOML file states them."""

    name: str
    title: str
    part: str
    board_part: str
    processing_system: str
    default_clock_mhz: float
    ddr_bandwidth_gbps: float
    resources: dict[str, int] = field(hash=False)
    aliases: tuple[str, ...] = ()
    speed_grade: str = ""
    pynq_notes: str = ""
    source: str = ""

    def budget(self, max_util: float = DEFAULT_MAX_UTIL) -> dict[str, int]:
        """What a design may use: ``floor(max_util * available)`` of every resource."""
        check_max_util(max_util)
        return {name: math.floor(max_util * total + 1e-9) for name, total in self.resources.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "aliases": list(self.aliases),
            "part": self.part,
            "board_part": self.board_part,
            "processing_system": self.processing_system,
            "speed_grade": self.speed_grade,
            "default_clock_mhz": self.default_clock_mhz,
            "ddr_bandwidth_gbps": self.ddr_bandwidth_gbps,
            "resources": dict(self.resources),
            "pynq_notes": self.pynq_notes,
        }


def check_max_util(max_util: float) -> None:
    if not (isinstance(max_util, (int, float)) and 0.0 < max_util <= 1.0):
        raise InputError(f"--max-util must be a fraction in (0, 1], not {max_util!r}")


def _normalise(name: str) -> str:
    """Case, dashes, underscores and spaces do not matter: 'PYNQ_Z2' finds 'pynq-z2'."""
    return "".join(ch for ch in name.lower() if ch not in "-_ ")


def parse_board(text: str, source: str) -> Board:
    """Read one board file's text; InputError naming the file and the key on any problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"board file {source}: not valid TOML ({exc})") from None
    for key, kind in _REQUIRED.items():
        if key not in data:
            raise InputError(f"board file {source}: missing '{key}'")
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise InputError(f"board file {source}: '{key}' has the wrong type ({data[key]!r})")
    if data["processing_system"] not in PROCESSING_SYSTEMS:
        raise InputError(
            f"board file {source}: processing_system must be one of {', '.join(PROCESSING_SYSTEMS)}, "
            f"not '{data['processing_system']}'"
        )
    if data["default_clock_mhz"] <= 0 or data["ddr_bandwidth_gbps"] <= 0:
        raise InputError(f"board file {source}: default_clock_mhz and ddr_bandwidth_gbps must be positive")
    table = data.get("resources")
    if not isinstance(table, dict):
        raise InputError(f"board file {source}: missing the [resources] table")
    resources: dict[str, int] = {}
    for key in RESOURCES + OPTIONAL_RESOURCES:
        if key not in table:
            if key in OPTIONAL_RESOURCES:
                continue
            raise InputError(f"board file {source}: [resources] has no '{key}'")
        value = table[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(f"board file {source}: [resources] {key} must be a non-negative integer, not {value!r}")
        resources[key] = value
    unknown = sorted(set(table) - set(RESOURCES) - set(OPTIONAL_RESOURCES))
    if unknown:
        raise InputError(f"board file {source}: unknown resource(s) {', '.join(unknown)}")
    aliases = data.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise InputError(f"board file {source}: 'aliases' must be a list of strings")
    return Board(
        name=data["name"],
        title=data["title"],
        part=data["part"],
        board_part=data["board_part"],
        processing_system=data["processing_system"],
        default_clock_mhz=float(data["default_clock_mhz"]),
        ddr_bandwidth_gbps=float(data["ddr_bandwidth_gbps"]),
        resources=resources,
        aliases=tuple(aliases),
        speed_grade=str(data.get("speed_grade", "")),
        pynq_notes=str(data.get("pynq_notes", "")),
        source=source,
    )


def load_board_file(path: str | Path) -> Board:
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"board file {path}: cannot read it ({exc})") from None
    return parse_board(text, str(path))


def known_boards(directory: str | Path | None = None) -> dict[str, Board]:
    """Every board in ``boards/`` (or ``directory``), by name, in name order."""
    root = Path(directory) if directory is not None else data_dir("boards")
    boards = [load_board_file(p) for p in sorted(root.glob("*.toml"))]
    by_name: dict[str, Board] = {}
    seen: dict[str, str] = {}
    for board in sorted(boards, key=lambda b: b.name):
        for key in (board.name, *board.aliases):
            norm = _normalise(key)
            if norm in seen and seen[norm] != board.name:
                raise InputError(f"board name or alias '{key}' is used by both {seen[norm]} and {board.name}")
            seen[norm] = board.name
        by_name[board.name] = board
    return by_name


def describe_known(boards: dict[str, Board]) -> str:
    """'ultra96v2 (alias ultra96), zcu104, ...' for error messages."""
    parts = []
    for board in boards.values():
        alias = f" (alias {', '.join(board.aliases)})" if board.aliases else ""
        parts.append(board.name + alias)
    return ", ".join(parts)


def get_board(name: str, directory: str | Path | None = None) -> Board:
    """A board by name or alias (case, '-' and '_' ignored), or a path to a board TOML file."""
    if name.endswith(".toml") or Path(name).suffix == ".toml":
        if not Path(name).is_file():
            raise InputError(f"--board {name}: no such board file")
        return load_board_file(name)
    boards = known_boards(directory)
    want = _normalise(name)
    for board in boards.values():
        if want in {_normalise(n) for n in (board.name, *board.aliases)}:
            return board
    raise InputError(
        f"unknown board '{name}'. Known boards: {describe_known(boards)}. "
        "Or give the path of a board .toml file (see boards/ for the format)."
    )
