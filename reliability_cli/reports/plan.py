"""The view of ``relcheck plan``: the retry budget per step, its projected rates and its cost.

A rich renderable like the terminal report: the table when it fits the console, else one
wrapped line per step; sentences wrapped, never cut; readable without colour.
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.text import Text

from ..results.planning import Plan, PlanStep
from ..textfmt import pct, signed
from .views import Fitted, indented, paragraphs, safe, table


class PlanView:
    """``relcheck plan RESULTS --target T``."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from paragraphs(self._parts())

    def _parts(self) -> Iterator[RenderableType]:
        p = self.plan
        yield Text(f"relcheck plan · end to end ≥ {pct(p.target, 2)}", style="bold")
        yield Text(f"search {p.method} · at most {_retries(p.max_retries)} per step · {p.units} units")
        yield Text("")
        t = table(
            ("step", "left"),
            ("retries", "right"),
            ("1st try", "right"),
            ("now", "right"),
            ("planned", "right"),
            ("calls/unit", "right"),
            ("model", "left"),
        )
        for s in p.steps:
            t.add_row(Text(safe(s.step)), *(Text(v) for v in _cells(s)))
        yield Fitted(t, [_line(s) for s in p.steps])
        yield Text("")
        yield Text(
            "retries: today → planned. calls/unit: expected extra calls per unit. model: measured "
            "(each retry recovers as the run's recovery_rate says) or independent (a retry passes "
            "like a first try).",
            style="dim",
        )
        yield Text("")
        yield Text(
            f"End to end: {pct(p.end_to_end_now, 2)} now → {pct(p.end_to_end_planned, 2)} planned",
            style="bold",
        )
        yield Text(
            f"Calls per unit: {p.calls_per_unit_now:.3f} → {p.calls_per_unit_planned:.3f} "
            f"({signed(p.extra_calls_per_unit, 3)}; {signed(p.extra_calls, 0)} over {p.units} units)"
        )
        yield Text(
            f"Latency per unit: {signed(p.extra_latency_ms_per_unit, 1)} ms (p50 × extra attempts, before backoff)"
        )
        if p.extra_cost_usd is not None:
            yield Text(f"Cost: {signed(p.extra_cost_usd, 4)} USD over {p.units} units")
        if p.not_helped:
            yield Text("Retries cannot help:")
            for why in p.not_helped:
                yield indented(Text(safe(why)))
        verdict = Text("")
        if p.reachable:
            verdict.append("Target reachable", style="bold green")
            verdict.append(": set each step's retry.max_attempts to the planned retries + 1 (exit 0).")
        else:
            verdict.append(f"Target {pct(p.target, 2)} is NOT reachable", style="bold red")
            verdict.append(
                f" with ≤ {_retries(p.max_retries)} per step; the best budget above reaches "
                f"{pct(p.end_to_end_planned, 2)} (exit 1)."
            )
        yield verdict


def _retries(n: int) -> str:
    return f"{n} retr{'y' if n == 1 else 'ies'}"


def _cells(s: PlanStep) -> tuple[str, str, str, str, str, str]:
    return (
        f"{s.retries_now}→{s.retries}",
        pct(s.first_try_rate, 2),
        pct(s.rate_now, 2),
        pct(s.rate_planned, 2),
        signed(s.extra_calls_per_unit, 4),
        s.model,
    )


def _line(s: PlanStep) -> Text:
    retries, first, now, planned, calls, model = _cells(s)
    return Text(
        f"{safe(s.step)}: retries {retries}, 1st try {first}, now {now} → planned {planned}, "
        f"calls/unit {calls}, {model}"
    )
