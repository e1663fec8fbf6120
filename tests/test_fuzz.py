"""Fuzz tier: seeded mutants of the fixture models through `accelgen inspect` and `build`.

Every mutant (tests/mutants.py: structural mutations of the kinds in issue 10 plus byte-level
damage) must end in exit 0, 2 or 3 with one clean message: no traceback, no internal error
(exit 1), no hang, and no build from a model with non-finite parameters. CI runs
``ACCELGEN_FUZZ_N`` mutants (default 600) from seed ``ACCELGEN_FUZZ_SEED`` (default 0); set
them higher locally for a longer run.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import time

import pytest

from accelgen.cli import main
from tests.mutants import FIXTURES, mutate, nonfinite_parameters

N = int(os.environ.get("ACCELGEN_FUZZ_N", "600"))
SEED = int(os.environ.get("ACCELGEN_FUZZ_SEED", "0"))
TIMEOUT_S = 60  # per command; a mutant that takes longer counts as a hang


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT_S)
    try:
        code = main(argv)
    except Hang:
        code = "hang"
    except SystemExit as exc:  # argparse
        code = exc.code
    finally:
        signal.alarm(0)
    captured = capsys.readouterr()
    return code, captured.err


def _problem(code, err: str) -> str | None:
    if code not in (0, 2, 3):
        return f"exit {code}"
    if "Traceback" in err:
        return "traceback"
    if code != 0 and (not err.startswith("accelgen: error: ") or err.count("accelgen: error:") != 1):
        return "not one clean error message"
    return None


@pytest.mark.slowest  # about a minute of mutants (make test-all)
@pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="needs SIGALRM for the hang guard")
def test_fuzz_mutants(capsys, tmp_path):
    outcomes: collections.Counter = collections.Counter()
    failures = []
    t0 = time.perf_counter()
    for i in range(N):
        rng = random.Random(SEED * 1_000_003 + i)
        fixture = rng.choice(FIXTURES)
        data, done = mutate(fixture, rng)
        path = tmp_path / f"mutant{i}.onnx"
        path.write_bytes(data)
        what = f"mutant {i} of {fixture} ({'; '.join(done)})"
        code, err = _run(capsys, ["inspect", str(path), "--json"])
        outcomes[f"inspect exit {code}"] += 1
        problem = _problem(code, err)
        if problem:
            failures.append(f"{what}: inspect: {problem}: {err.strip()[-400:]}")
            continue
        if code != 0:
            continue
        out = tmp_path / f"out{i}"
        code, err = _run(capsys, ["build", str(path), "-b", "ultra96", "--no-csim", "--synth", "off", "-o", str(out)])
        outcomes[f"build exit {code}"] += 1
        problem = _problem(code, err)
        if problem:
            failures.append(f"{what}: build: {problem}: {err.strip()[-400:]}")
        bad = nonfinite_parameters(data)
        if code == 0 and bad:
            failures.append(f"{what}: built although tensor(s) {bad} hold NaN/Inf")
        path.unlink()
    elapsed = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\nfuzz: {N} mutants (seed {SEED}) in {elapsed:.0f} s: {dict(sorted(outcomes.items()))}")
    assert not failures, f"{len(failures)} of {N} mutants failed:\n" + "\n".join(failures[:20])
    # the mutator must reach the compiler, not only the parser: some mutants are accepted,
    # most are rejected
    assert outcomes["inspect exit 2"] > N // 4
    assert outcomes["inspect exit 0"] > N // 20
