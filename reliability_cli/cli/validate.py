"""``relcheck validate``."""

from __future__ import annotations

from typing import Optional

import typer

from .common import handle_errors


@handle_errors
def validate_command(
    pipeline: str = typer.Argument(..., help="The pipeline YAML file.", metavar="PIPELINE"),
    evalset: list[str] = typer.Option([], "--evalset", help="Eval set file (repeatable).", metavar="FILE"),
    trials: int = typer.Option(1, "--trials", min=1, metavar="K"),
    retries: Optional[int] = typer.Option(None, "--retries", min=0, metavar="R"),
    isolate: bool = typer.Option(False, "--isolate"),
    endpoint: list[str] = typer.Option([], "--endpoint", help="NAME=mock (repeatable).", metavar="NAME=mock"),
    replay: Optional[str] = typer.Option(
        None,
        "--replay",
        help="The run will replay this cassette: no API key needed.",
        metavar="CASSETTE",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Check the pipeline, its eval sets, template references and env vars without calling
    anything; print the number of units, the upper bound of requests and, where endpoints
    have a price, the expected cost beside its upper bound (each with what it assumes)."""
    from ..runner import RunOptions
    from ..runner.validation import validate

    result = validate(
        pipeline,
        RunOptions(
            evalsets=evalset,
            trials=trials,
            retries=retries,
            isolate=isolate,
            endpoint_overrides=endpoint,
            replay=replay,
        ),
    )
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    line = (
        f"ok: {result.pipeline}: {result.steps} steps, {result.cases} cases, {result.units} units, "
        f"at most {result.max_requests} requests"
    )
    typer.echo(line)
    if result.max_cost_usd is not None:
        from ..runner.validation import TYPICAL_OUTPUT_TOKENS

        typer.echo(
            f"cost (estimate): expected about ${result.expected_cost_usd or 0:.4f}, "
            f"at most ${result.max_cost_usd:.4f}\n"
            f"  expected: one attempt per step and judge, replies of about {TYPICAL_OUTPUT_TOKENS} tokens\n"
            "  at most: every attempt retried to max_attempts, every reply max_tokens long"
        )
