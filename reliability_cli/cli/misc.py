"""Small commands: simulate, schema, init, report."""

from __future__ import annotations

from typing import Optional

import typer

from .common import handle_errors, write_output


@handle_errors
def simulate_command(
    steps: int = typer.Option(..., "--steps", min=1, max=1000, help="Steps in the chain."),
    p: float = typer.Option(..., "--p", min=0.0, max=1.0, help="Each attempt's success probability."),
    retries: int = typer.Option(0, "--retries", min=0, max=99, help="Retries per step."),
    runs: int = typer.Option(100_000, "--runs", min=1, max=100_000_000, help="Monte-Carlo runs."),
    seed: int = typer.Option(0, "--seed"),
    json_out: Optional[str] = typer.Option(None, "--json", help="Write the figures as JSON (- for stdout)."),
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


@handle_errors
def schema_command(
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Write to this file instead of stdout."),
) -> None:
    """Print the JSON Schema of the pipeline format, for editors."""
    import json

    from ..config import json_schema

    write_output(output or "-", json.dumps(json_schema(), indent=2) + "\n")


@handle_errors
def init_command(directory: str = typer.Argument(".", help="Where to create pipeline.yaml and cases.jsonl.")) -> None:
    """Scaffold a pipeline and eval set that run offline on the mock endpoint."""
    from ..scaffolding import scaffold

    written = scaffold(directory)
    for path in written:
        typer.echo(f"created {path}")
    typer.echo(f"next: relcheck eval {written[0]}")


@handle_errors
def report_command(
    results: str = typer.Argument(..., help="A results.json or run directory."),
    fmt: str = typer.Option("terminal", "--format", "-f", help="terminal, json, junit, markdown or html."),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Write to this file."),
    show_failures: Optional[int] = typer.Option(None, "--show-failures", min=0),
) -> None:
    """Re-render a saved run."""
    from ..errors import UsageError
    from ..reports import FORMATS, render
    from ..reports.load import load_results

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    data = load_results(results)
    if fmt == "terminal" and output is None:
        from .render import print_terminal

        print_terminal(data, 5 if show_failures is None else show_failures)
        return
    write_output(output or "-", render(data, fmt, show_failures=show_failures))


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
    app.command("simulate")(simulate_command)
    app.command("init")(init_command)
    app.command("schema")(schema_command)
