"""``relcheck plan RESULTS --target T``: the cheapest per-step retry budget that reaches T."""

from __future__ import annotations

from typing import Optional

import typer

from .common import handle_errors, write_output


@handle_errors
def plan_command(
    results: str = typer.Argument(..., help="A results.json or run directory.", metavar="RESULTS"),
    target: float = typer.Option(
        ..., "--target", min=0, max=1, help="End-to-end rate to reach, e.g. 0.99.", metavar="RATE"
    ),
    max_retries: int = typer.Option(
        3, "--max-retries", min=0, max=20, help="Most retries considered per step.", metavar="N"
    ),
    json_out: Optional[str] = typer.Option(
        None, "--json", help="Write the plan as JSON (- for stdout).", metavar="FILE"
    ),
) -> None:
    """Cheapest per-step retry budget reaching TARGET end to end, from a run's measurements.

    Each step uses its measured recovery_rate where retries ran, else independence
    (a retry passes like a first try). Cost: expected extra calls, latency (p50 × extra
    attempts) and USD where priced. Exit 0 when the target is reachable within
    --max-retries, 1 when it is not.
    """
    import json

    from rich.console import Console

    from ..outputs import refuse_overwrites, results_file
    from ..reports.plan import PlanView
    from ..results.planning import plan
    from ..results.schema import load as load_results

    refuse_overwrites({"--json": json_out}, [("the results file it reads", results_file(results))])
    budget = plan(load_results(results), target, max_retries)
    if json_out:
        write_output(json_out, json.dumps(budget.to_dict(), indent=2) + "\n")
    if json_out != "-":
        Console(highlight=False, emoji=False).print(PlanView(budget))
    raise typer.Exit(0 if budget.reachable else 1)
