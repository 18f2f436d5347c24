"""The benchmark still runs: ``python bench/run.py --quick`` measures every figure (on
loopback, at a tenth of the sizes; its targets are not judged at that size)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_benchmark_measures_every_figure():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for label in (
        "(e) relcheck --help",
        "(e) relcheck validate",
        "(c) step attempts per second",
        "(a) relcheck / bare aiohttp",
        "(b) relcheck / ideal",
    ):
        assert re.search(rf"(PASS|MISS)  {re.escape(label)}: [\d,.]+ ", out), label
    assert re.search(r"\(a\) floor: .* = [\d.]+× the bare aiohttp loop; relcheck = [\d.]+× that floor", out)
    assert "SKIP" not in out and re.search(r"\n\d passed, \d missed, 0 skipped\n", out)


@pytest.mark.slow
def test_quick_rate_limit_benchmark_runs():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ratelimit.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(
        r"2,400 RPM, 300 ms +relcheck default +\d+ cases +serving +[\d.]+ s = [\d.]+× ideal +429s +\d+ ", proc.stdout
    ), proc.stdout
