"""The traces benchmark still runs: ``python bench/traces.py --quick`` measures both figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_traces_benchmark_measures_every_figure() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "traces.py"), "--quick", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"INFO  \(t\) spans per second: [\d,]+ ", proc.stdout)
    assert re.search(r"INFO  \(t\) peak RSS: [\d.]+ MB at 20,000 spans", proc.stdout)
    assert re.search(r"relcheck traces / baseline: [\d.]+ s / [\d.]+ s = [\d.]+×", proc.stdout)
