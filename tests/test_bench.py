"""The benchmark still runs: ``python bench/run.py --quick`` measures every figure (on
loopback, at a tenth of the sizes; its targets are not judged at that size)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import load_bench

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


def test_the_perfect_client_floor_follows_the_pace_and_the_cap():
    bench = load_bench("ratelimit")
    floor = bench.perfect_floor
    # 10 at once, then one every 0.1 s: the 100th is sent at (100 - 10) / 10 = 9 s, answered 2 s later
    assert floor([2.0] * 100, 10.0, 10.0, None) == pytest.approx(9.0 + 2.0)
    # a slow early answer can be the last one
    assert floor([30.0] + [1.0] * 99, 10.0, 10.0, None) == pytest.approx(30.0)
    # a cap of 4 slots of 1 s each: 10 requests are 3 waves (4, 4, 2)
    assert floor([1.0] * 10, float("inf"), float("inf"), 4) == pytest.approx(3.0)
    # uneven draws: the slots are reused as soon as they free (0.5 s + 0.5 s on one, 1 s on the other)
    assert floor([1.0, 0.5, 0.5], float("inf"), float("inf"), 2) == pytest.approx(1.0)
    # pace and cap together: the cap binds when latency × rate exceeds it
    # (the second of each pair leaves 0.01 s after the first, so the last answer is at 9.01 + 1)
    assert floor([1.0] * 20, 100.0, 1.0, 2) == pytest.approx(10.01)
    assert floor([], 1.0, 1.0, None) == 0.0


def test_the_scenarios_pace_is_their_rate_and_burst():
    bench = load_bench("ratelimit")
    by_name = {s.name: s for s in bench.SCENARIOS}
    assert by_name["2,400 RPM, 2 s"].pace() == (40.0, 40.0)
    rate, burst = by_name["concurrency cap 16, 300 ms"].pace()
    assert rate == burst == float("inf")
