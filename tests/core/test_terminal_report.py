"""The terminal report, rendered into a fixed-width console and compared as text."""

from __future__ import annotations

from io import StringIO

import pytest
from rich.console import Console

from reliability_cli.reports.terminal import TerminalReport
from reliability_cli.results.schema import GateOverrides
from tests.helpers import SIX, results_from


@pytest.fixture(scope="module")
def failed_gate_results(tmp_path_factory):
    from reliability_cli.runner import RunOptions, run_eval

    out = tmp_path_factory.mktemp("tr") / "run"
    return run_eval(
        str(SIX), RunOptions(out=str(out), limit=400, gate_overrides=GateOverrides(end_to_end_min=0.9))
    ).results


def render(results, width):
    buf = StringIO()
    Console(file=buf, width=width, color_system=None, no_color=True).print(TerminalReport(results, 2))
    return buf.getvalue()


def test_reads_at_80_columns_without_colour(failed_gate_results):
    text = render(failed_gate_results, 80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "\x1b[" not in text
    r = failed_gate_results.to_dict()
    e2e = r["end_to_end"]
    assert f"End to end: {e2e['passed']}/400 = {e2e['rate'] * 100:.1f}%" in text
    assert f"CI {e2e['ci']['low'] * 100:.1f}–{e2e['ci']['high'] * 100:.1f}%)" in text
    # one row per step, in order, with pass/reach
    positions = [text.index(f"{s['id']} ") for s in r["steps"]]
    assert positions == sorted(positions)
    for s in r["steps"]:
        assert f"{s['passed']}/{s['reached']}" in text
    # the survival waterfall ends at the end-to-end count
    survival = text[text.index("Survival") : text.index("End to end")].strip().splitlines()
    assert survival[-1].split()[:2] == [r["steps"][-1]["id"], str(e2e["passed"])]
    assert "FAIL  end_to_end: observed" in text and "< 0.9" in text
    assert text.rstrip().endswith("Verdict: FAIL (exit 1)")
    assert "… " in text and "more" in text  # failures cut at --show-failures


def test_exact_layout_of_a_small_run():
    results = results_from(
        run={"pipeline": "tiny", "cases": 4, "trials": 1, "seed": 0, "confidence": 0.95},
        steps=[
            {
                "id": "a",
                "passed": 3,
                "reached": 4,
                "rate": 0.75,
                "ci": {"low": 0.3, "high": 0.95},
                "first_try_rate": 0.5,
                "recovery_rate": 0.5,
                "errors": 1,
                "latency_ms": {"p50": 12.0},
                "failures": [
                    {
                        "case": "c4",
                        "trial": 1,
                        "outcome": "error",
                        "error_kind": "timeout",
                        "reason": "no reply within 30 s",
                        "output": None,
                    }
                ],
            },
        ],
        end_to_end={"passed": 3, "total": 4, "rate": 0.75, "ci": {"low": 0.3, "high": 0.95}},
        gates=[{"name": "end_to_end", "passed": True, "detail": "observed 0.7500 ≥ 0.7 (n=4)"}],
    )
    text = render(results, 80)
    expected = [
        "relcheck · tiny · 4 cases × 1 trial · seed 0",
        "  start                4 ████████████████████████████████████████████ 100.0%",
        "  a                    3 █████████████████████████████████···········  75.0%",
        "End to end: 3/4 = 75.0%  (95% CI 30.0–95.0%)",
        "   PASS  end_to_end: observed 0.7500 ≥ 0.7 (n=4)",
        "    c4[1] error/timeout: no reply within 30 s",
        "Verdict: PASS (exit 0)",
    ]
    for line in expected:
        assert line in text.splitlines(), f"missing line {line!r} in\n{text}"
    row = next(line for line in text.splitlines() if line.startswith("a "))
    assert row.split() == ["a", "3/4", "75.0%", "30.0–95.0", "50.0%", "50%", "1", "12"]
