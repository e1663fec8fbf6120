"""examples/qat_digits.py --quick: the --json contract of issue 14 and the golden check it makes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_run_prints_the_json_contract(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("qat_digits", ROOT / "examples" / "qat_digits.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--quick", "--json", "--models", "mlp", "--out", str(tmp_path), "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"rows", "float_acc", "ul2q_lambda", "onnx"}
    assert [(r["model"], r["method"], r["w_bits"], r["a_bits"]) for r in result["rows"]] == [
        ("mlp", m, 2, 2) for m in ("ul2q", "lsq", "brevitas")
    ]
    assert all(0.0 <= r["acc"] <= 1.0 for r in result["rows"]) and 0.5 < result["float_acc"]["mlp"] <= 1.0
    assert sorted(result["ul2q_lambda"]) == ["1", "2", "3", "4"]
    assert abs(result["ul2q_lambda"]["2"] - 0.9957) < 1e-3
    assert len(result["onnx"]) == 3 and all(Path(f).is_file() for f in result["onnx"])
    assert result["golden_equals_qonnx"] == {f: True for f in result["onnx"]}
