"""Vendor-tool handling that can be checked without the tools."""

from __future__ import annotations

import sys

import pytest

from accelgen import vendor
from accelgen.errors import InputError
from accelgen.vendor_reports import parse_vivado_utilization


def test_synth_on_without_tools_names_the_missing_tool(monkeypatch):
    monkeypatch.setattr(vendor.shutil, "which", lambda name: None)
    with pytest.raises(InputError, match="--synth on needs vitis_hls and vivado"):
        vendor.synthesis_plan("on")
    assert vendor.synthesis_plan("auto") == (False, "vitis_hls and vivado not on PATH")
    assert vendor.synthesis_plan("off")[0] is False


def test_synth_auto_with_tools(monkeypatch):
    monkeypatch.setattr(vendor.shutil, "which", lambda name: f"/opt/xilinx/bin/{name}")
    assert vendor.synthesis_plan("auto")[0] is True


def test_run_logged_records_output_and_failure(tmp_path):
    log = tmp_path / "tool.log"
    vendor.run_logged([sys.executable, "-c", "print('hello from the tool')"], tmp_path, log, 30)
    assert "hello from the tool" in log.read_text()
    with pytest.raises(vendor.VendorToolError, match="exit 3"):
        vendor.run_logged([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], tmp_path, log, 30)


def test_run_logged_timeout_kills_the_tool(tmp_path):
    with pytest.raises(vendor.VendorToolError, match="did not finish"):
        vendor.run_logged([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path, tmp_path / "l.log", 0.5)


UTIL = """
+----------------------------+-------+-------+------------+-----------+-------+
|          Site Type         |  Used | Fixed | Prohibited | Available | Util% |
+----------------------------+-------+-------+------------+-----------+-------+
| CLB LUTs*                  | 12345 |     0 |          0 |     70560 | 17.50 |
|   LUT as Logic             | 11000 |     0 |          0 |     70560 | 15.59 |
| CLB Registers              | 20480 |     0 |          0 |    141120 | 14.51 |
| Block RAM Tile             |  40.5 |     0 |          0 |       216 | 18.75 |
| DSPs                       |    96 |     0 |          0 |       360 | 26.67 |
+----------------------------+-------+-------+------------+-----------+-------+
"""


def test_parse_vivado_utilization():
    assert parse_vivado_utilization(UTIL) == {"lut": 12345, "ff": 20480, "bram18": 81, "dsp": 96}
