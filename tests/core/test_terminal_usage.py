"""The terminal report's usage table (tokens, cost, throttled per step, when reported) and
failure reasons printed in full, wrapped."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from rich.console import Console

from reliability_cli.reports.terminal import TerminalReport
from reliability_cli.results.schema import Results
from tests.helpers import results_from

LONG = (
    'tool-call: expected a call to "create_ticket", the model called '
    + " ".join(f"tool_{i}" for i in range(40))
    + " END-OF-REASON"
)


def _results(usage: bool) -> Results:
    def step(sid: str, tokens: tuple[int, int], cost: float | None, throttled: int) -> dict[str, Any]:
        return {
            "id": sid,
            "passed": 3,
            "reached": 4,
            "rate": 0.75,
            "ci": {"low": 0.3, "high": 0.95},
            "first_try_rate": 0.5,
            "recovery_rate": None,
            "errors": 0,
            "latency_ms": {"p50": 12.0},
            "attempts": 5,
            "tokens": {"input": tokens[0], "output": tokens[1]},
            "cost_usd": cost,
            "throttled": throttled,
            "failures": [
                {
                    "case": "c4",
                    "trial": 2,
                    "outcome": "fail",
                    "error_kind": None,
                    "reason": LONG + "\x1b[2J",
                    "output": None,
                }
            ],
        }

    steps = (
        [step("plan", (12345, 678), 0.0123, 2), step("act", (0, 0), None, 0)]
        if usage
        else [step("plan", (0, 0), None, 0)]
    )
    return results_from(
        steps,
        end_to_end={"passed": 3, "total": 4, "rate": 0.75, "ci": {"low": 0.3, "high": 0.95}},
        run={"pipeline": "u", "cases": 4, "trials": 1, "seed": 0, "confidence": 0.95},
    )


def _render(results: Results, width: int) -> str:
    buf = StringIO()
    Console(file=buf, width=width, color_system=None, no_color=True).print(TerminalReport(results, 5))
    return buf.getvalue()


def test_usage_table_when_an_endpoint_reports_usage() -> None:
    text = _render(_results(True), 80)
    usage = text[text.index("Usage") : text.index("Survival")].splitlines()
    assert usage[1].split() == ["step", "attempts", "tokens", "in", "tokens", "out", "cost", "USD", "throttled"]
    assert usage[3].split() == ["plan", "5", "12,345", "678", "0.0123", "2"]
    assert usage[4].split() == ["act", "5", "0", "0", "—", "0"]


def test_no_usage_table_without_usage() -> None:
    assert "Usage" not in _render(_results(False), 80)


@pytest.mark.parametrize("width", [80, 200])
def test_failure_reasons_are_wrapped_in_full(width: int) -> None:
    text = _render(_results(True), width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines)
    failures = " ".join(" ".join(text[text.index("Failures") :].split()).split())
    assert " ".join(f"c4[2] fail: {LONG}".split()) in failures  # every word, none cut
    assert "\x1b" not in text and "\\x1b[2J" in text  # a control sequence in a reason is shown, not run
