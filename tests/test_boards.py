"""Board files, lookup by name and alias, budgets, and `accelgen boards`."""

from __future__ import annotations

import json

import pytest

from accelgen.boards import get_board, known_boards, parse_board
from accelgen.cli import main
from accelgen.errors import InputError

# DESIGN.md section 6, copied by hand: part, LUT, FF, DSP, BRAM18, URAM
DESIGN_TABLE = {
    "ultra96v2": ("xczu3eg-sbva484-1-i", 70560, 141120, 360, 432, 0),
    "zcu104": ("xczu7ev-ffvc1156-2-e", 230400, 460800, 1728, 624, 96),
    "kv260": ("xck26-sfvc784-2LV-c", 117120, 234240, 1248, 288, 64),
    "pynq-z2": ("xc7z020clg400-1", 53200, 106400, 220, 280, 0),
    "zcu102": ("xczu9eg-ffvb1156-2-e", 274080, 548160, 2520, 1824, 0),
}


def test_board_files_match_the_design_document():
    boards = known_boards()
    assert set(boards) == set(DESIGN_TABLE)
    for name, (part, lut, ff, dsp, bram18, uram) in DESIGN_TABLE.items():
        b = boards[name]
        assert b.part == part
        assert (b.resources["lut"], b.resources["ff"], b.resources["dsp"]) == (lut, ff, dsp)
        assert (b.resources["bram18"], b.resources["uram"]) == (bram18, uram)
        assert b.processing_system == ("zynq7" if name == "pynq-z2" else "zynqmp")
        assert b.default_clock_mhz > 0 and b.ddr_bandwidth_gbps > 0 and b.board_part
        assert 0 < b.resources["lutram"] < b.resources["lut"]  # SLICEM LUTs are a subset


@pytest.mark.parametrize("query,name", [("ultra96", "ultra96v2"), ("Ultra96-V2", "ultra96v2"), ("PYNQ_Z2", "pynq-z2"),
                                        ("pynqz2", "pynq-z2"), ("k26", "kv260"), ("zcu102", "zcu102")])  # fmt: skip
def test_lookup_by_name_and_alias(query, name):
    assert get_board(query).name == name


def test_unknown_board_lists_the_known_ones_with_aliases():
    with pytest.raises(InputError) as err:
        get_board("zedboard")
    msg = str(err.value)
    assert "zedboard" in msg
    for name in DESIGN_TABLE:
        assert name in msg
    assert "ultra96v2 (alias ultra96)" in msg


def test_budget_is_the_floor_of_the_fraction():
    budget = get_board("ultra96").budget(0.8)
    # 0.8 * 432 = 345.6 -> 345; 0.8 * 360 = 288; 0.8 * 70560 = 56448
    assert budget["bram18"] == 345 and budget["dsp"] == 288 and budget["lut"] == 56448
    assert get_board("ultra96").budget(1.0)["dsp"] == 360
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(InputError, match="max-util"):
            get_board("ultra96").budget(bad)


GOOD = """
name = "tiny"
title = "Tiny"
part = "xc7z007s"
board_part = "x:tiny:1.0"
processing_system = "zynq7"
default_clock_mhz = 100
ddr_bandwidth_gbps = 1.0
[resources]
lut = 100
ff = 200
dsp = 2
bram18 = 4
uram = 0
"""


def test_board_file_errors_name_the_file_and_the_key():
    b = parse_board(GOOD, "tiny.toml")
    assert b.resources == {"lut": 100, "ff": 200, "dsp": 2, "bram18": 4, "uram": 0} and b.aliases == ()
    with pytest.raises(InputError, match=r"tiny.toml: \[resources\] has no 'dsp'"):
        parse_board(GOOD.replace("dsp = 2\n", ""), "tiny.toml")
    with pytest.raises(InputError, match="tiny.toml: missing 'part'"):
        parse_board(GOOD.replace('part = "xc7z007s"\n', ""), "tiny.toml")
    with pytest.raises(InputError, match="processing_system"):
        parse_board(GOOD.replace('"zynq7"', '"versal"'), "tiny.toml")
    with pytest.raises(InputError, match="non-negative integer"):
        parse_board(GOOD.replace("lut = 100", "lut = -5"), "tiny.toml")
    with pytest.raises(InputError, match="not valid TOML"):
        parse_board("name = ", "tiny.toml")


def test_a_board_file_path_works_as_a_board(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(GOOD)
    assert get_board(str(path)).name == "tiny"


def test_boards_command(capsys):
    assert main(["boards", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in data] == sorted(DESIGN_TABLE)
    assert next(b for b in data if b["name"] == "ultra96v2")["aliases"] == ["ultra96"]
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    assert "xczu3eg-sbva484-1-i" in out and "ultra96" in out and "1,824" in out
