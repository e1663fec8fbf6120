"""The build output directory: atomic publication, stage reuse, refusal to clobber."""

from __future__ import annotations

import pytest

from accelgen.errors import InputError
from accelgen.workspace import Workspace, hash_paths


def test_nothing_visible_until_commit(tmp_path):
    out = tmp_path / "out"
    ws = Workspace(out)
    (ws.path / "report.json").write_text("{}")
    assert not out.exists()
    ws.commit()
    assert (out / "report.json").read_text() == "{}"
    assert not list(tmp_path.glob(".out.partial-*"))


def test_discard_keeps_previous_build(tmp_path):
    out = tmp_path / "out"
    ws = Workspace(out)
    (ws.path / "a.txt").write_text("first")
    ws.commit()
    ws2 = Workspace(out)
    (ws2.path / "a.txt").write_text("second, interrupted")
    ws2.discard()
    assert (out / "a.txt").read_text() == "first"
    assert not list(tmp_path.glob(".out.partial-*"))


def test_reuse_only_with_the_same_key(tmp_path):
    out = tmp_path / "out"
    ws = Workspace(out)
    (ws.path / "csim").mkdir()
    (ws.path / "csim" / "result.txt").write_text("passed")
    ws.record("csim", "k1", {"passed": True}, ["csim/result.txt"])
    ws.commit()
    ws2 = Workspace(out)
    assert ws2.reusable("csim", "k2") is None
    rec = ws2.reusable("csim", "k1")
    assert rec["result"] == {"passed": True}
    ws2.restore(rec["files"])
    assert (ws2.path / "csim" / "result.txt").read_text() == "passed"
    ws2.record("csim", "k1", rec["result"], rec["files"])
    ws2.commit()
    assert Workspace(out).reusable("csim", "k1") is not None
    (out / "csim" / "result.txt").unlink()  # a recorded file is gone: the stage must run again
    ws3 = Workspace(out)
    assert ws3.reusable("csim", "k1") is None
    ws3.discard()


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    precious = tmp_path / "mydata"
    precious.mkdir()
    (precious / "thesis.tex").write_text("...")
    with pytest.raises(InputError, match="not an accelgen build"):
        Workspace(precious)
    assert (precious / "thesis.tex").exists()


def test_hash_changes_with_content(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "x.cpp").write_text("int a;")
    h1 = hash_paths(d, extra={"flags": "-O2"})
    assert h1 == hash_paths(d, extra={"flags": "-O2"})
    assert h1 != hash_paths(d, extra={"flags": "-O3"})
    (d / "x.cpp").write_text("int b;")
    assert h1 != hash_paths(d, extra={"flags": "-O2"})
