"""``relcheck show RUN_DIR``: read failing units whole (request, output, tool calls, checks)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from .common import handle_errors, write_output


@handle_errors
def show_command(
    run_dir: str = typer.Argument(..., help="The run directory (e.g. .relcheck/runs/<id>).", metavar="RUN_DIR"),
    case: Optional[str] = typer.Option(None, "--case", help="Only this case id (any outcome).", metavar="CASE_ID"),
    step: Optional[str] = typer.Option(
        None,
        "--step",
        help="Only units that reached this step; --outcome and --error-kind then apply to this step.",
        metavar="STEP",
    ),
    outcome: str = typer.Option(
        "failing",
        "--outcome",
        help="pass, fail, error, incomplete, all, or failing (fail or error; the default).",
        metavar="OUTCOME",
    ),
    error_kind: Optional[str] = typer.Option(
        None, "--error-kind", help="Only units that ended in this error kind.", metavar="KIND"
    ),
    tag: Optional[str] = typer.Option(None, "--tag", help="Only cases with this tag.", metavar="TAG"),
    trial: Optional[int] = typer.Option(None, "--trial", min=1, help="Only this trial.", metavar="K"),
    limit: Optional[int] = typer.Option(20, "--limit", min=1, help="At most N units.", metavar="N"),
    json_out: bool = typer.Option(False, "--json", help="Print the units as JSON instead."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Show the units of a run in full: vars, expect, and per step and attempt the request as
    sent (keys redacted), the full output, tool calls, every check's verdict and reason, the
    error, latency, tokens and cost. By default the failing units (fail or error)."""
    from ..show import Selection, load_units, render, to_json

    shown = load_units(run_dir, Selection(case, step, outcome, error_kind, tag, trial, limit))
    if json_out:
        write_output("-", json.dumps(to_json(shown), ensure_ascii=False, indent=2) + "\n")
        return
    from rich.console import Console

    render(shown, Console(highlight=False, soft_wrap=False, markup=False, emoji=False))
