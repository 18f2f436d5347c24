"""``relcheck plan RESULTS --target T``: the cheapest per-step retry budget that reaches T."""

from __future__ import annotations

from typing import Any, Optional

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

    from ..outputs import refuse_overwrites, results_file
    from ..results.planning import plan
    from ..results.schema import load as load_results

    refuse_overwrites({"--json": json_out}, [("the results file it reads", results_file(results))])
    doc = plan(load_results(results), target, max_retries)
    if json_out:
        write_output(json_out, json.dumps(doc, indent=2) + "\n")
    if json_out != "-":
        _print(doc)
    raise typer.Exit(0 if doc["reachable"] else 1)


def _print(doc: dict[str, Any]) -> None:
    pct = lambda v: "—" if v is None else f"{v:.2%}"  # noqa: E731
    typer.echo(
        f"Retry plan for end-to-end ≥ {doc['target']:.2%} (search: {doc['method']}, "
        f"≤ {doc['max_retries']} retries per step)"
    )
    typer.echo("")
    typer.echo(
        f"  {'step':<16} {'retries':>9} {'1st try':>8} {'rate now':>9} {'planned':>9} {'extra calls/unit':>17}  model"
    )
    for s in doc["steps"]:
        change = f"{s['retries_now']}→{s['retries']}"
        typer.echo(
            f"  {s['step'][:16]:<16} {change:>9} {pct(s['first_try_rate']):>8} {pct(s['rate_now']):>9} "
            f"{pct(s['rate_planned']):>9} {s['extra_calls_per_unit']:>+17.4f}  {s['model']}"
        )
    typer.echo("")
    typer.echo(f"  end to end: {pct(doc['end_to_end_now'])} now → {pct(doc['end_to_end_planned'])} planned")
    typer.echo(
        f"  calls per unit: {doc['calls_per_unit_now']:.3f} → {doc['calls_per_unit_planned']:.3f} "
        f"({doc['extra_calls_per_unit']:+.3f}; {doc['extra_calls']:+.0f} over {doc['units']} units)"
    )
    typer.echo(f"  latency per unit: {doc['extra_latency_ms_per_unit']:+.1f} ms (p50 × extra attempts, before backoff)")
    if doc["extra_cost_usd"] is not None:
        typer.echo(f"  cost: {doc['extra_cost_usd']:+.4f} USD over {doc['units']} units")
    if not doc["reachable"]:
        typer.echo(
            f"Target {doc['target']:.2%} is NOT reachable with ≤ {doc['max_retries']} retries per step; "
            f"the best budget above reaches {pct(doc['end_to_end_planned'])}."
            + (f" Retries cannot help: {', '.join(doc['blocking_steps'])}." if doc["blocking_steps"] else "")
        )
    else:
        typer.echo("Target reachable: set each step's retry.max_attempts to the planned retries + 1.")
