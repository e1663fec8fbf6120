"""The README's support table is the one the tests generate (``python -m tests.support_table --write``)."""

from __future__ import annotations

from tests import support_table


def test_readme_support_table_is_current():
    readme = support_table.README.read_text()
    assert support_table.readme_block(readme) == support_table.table(), (
        "README.md's support table is stale: run `python -m tests.support_table --write`"
    )


def test_table_names_every_fixture_op_and_the_issue_forms():
    text = support_table.table()
    for op in ("`Clip`", "`ReduceMean`", "`com.microsoft.QLinearAdd`", "`QLinearMatMul`",
               "`com.microsoft.QuantizeLinear`", "`Quant`", "`QLinearConv`"):  # fmt: skip
        assert op in text
    clip = next(line for line in text.splitlines() if line.startswith("| `Clip`"))
    assert "Brevitas export_onnx_qcdq" in clip and "torch.ao" in clip
