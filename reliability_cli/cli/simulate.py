"""``relcheck simulate``: analytic and Monte-Carlo reliability of a chain."""

from __future__ import annotations

from typing import Optional

import typer

from .common import handle_errors, write_output


@handle_errors
def simulate_command(
    steps: int = typer.Option(..., "--steps", min=1, max=1000, help="Steps in the chain.", metavar="N"),
    p: float = typer.Option(..., "--p", min=0.0, max=1.0, help="Each attempt's success probability.", metavar="P"),
    retries: int = typer.Option(0, "--retries", min=0, max=99, help="Retries per step.", metavar="R"),
    runs: int = typer.Option(100_000, "--runs", min=1, max=100_000_000, help="Monte-Carlo runs.", metavar="N"),
    seed: int = typer.Option(0, "--seed", metavar="SEED"),
    json_out: Optional[str] = typer.Option(
        None, "--json", help="Write the figures as JSON (- for stdout).", metavar="FILE"
    ),
) -> None:
    """Analytic and Monte-Carlo end-to-end reliability of a chain of independent steps."""
    import json

    from ..stats import simulate_chain

    r = simulate_chain(steps, p, retries, runs, seed)
    if json_out:
        write_output(json_out, json.dumps(r, indent=2) + "\n")
        if json_out == "-":
            return
    lo, hi = r["ci"]
    typer.echo(f"{steps} steps at p={p:g}, {retries} retr{'y' if retries == 1 else 'ies'} per step")
    typer.echo(f"  step rate:    {r['step_rate']:.6f}  (1-(1-p)^{retries + 1})")
    typer.echo(f"  analytic:     {r['analytic']:.6f}  = {r['analytic']:.1%} end to end")
    typer.echo(f"  Monte-Carlo:  {r['monte_carlo']:.6f}  (95% CI {lo:.4f}–{hi:.4f}, {r['runs']} runs, seed {seed})")
    typer.echo(f"  expected attempts per run: {r['expected_attempts_per_run']:.3f}")
