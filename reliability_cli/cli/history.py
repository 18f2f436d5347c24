"""``relcheck history PIPELINE``: a pipeline's end-to-end and per-step rates across past runs."""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from ..runs import RUNS_DIR
from ..textfmt import pct
from .common import handle_errors, write_output
from .runs import _ci, _echo_table


@handle_errors
def history_command(
    pipeline: str = typer.Argument(..., help="A pipeline file, or a pipeline's name.", metavar="PIPELINE"),
    root: str = typer.Option(str(RUNS_DIR), "--dir", help="Where the runs are.", metavar="DIR"),
    json_out: bool = typer.Option(False, "--json", help="Print the series as JSON."),
    html: Optional[str] = typer.Option(
        None, "--html", help="Also write the series as a self-contained HTML chart.", metavar="FILE"
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """End-to-end and per-step rates of a pipeline's runs over time, with their intervals."""
    from ..runs import history, history_json, sparkline, step_series

    hist = history(pipeline, root)
    if html:
        from pathlib import Path

        from ..errors import UsageError
        from ..reports.history import render_history_html

        target = Path(html).resolve()
        if any(target.is_relative_to(Path(r.path).resolve()) for r in hist.runs):
            raise UsageError(
                f"--html {html}: that is inside a run directory; relcheck never writes into a run",
                hint="write the chart elsewhere",
            )
        write_output(html, render_history_html(history_json(hist)))
    if json_out:
        write_output("-", json.dumps(history_json(hist), indent=2) + "\n")
        return
    runs = hist.runs
    typer.echo(f"{hist.pipeline}: {len(runs)} finished run(s), {runs[0].started_at} → {runs[-1].started_at}")
    typer.echo(
        "(trend: one block per run, oldest first; full height is the series' best, the scale spans at least 10 points)"
    )
    rows = [["", "trend", "first", "last", "last 95% CI"]]

    def row(label: str, series: list[Optional[dict[str, Any]]]) -> None:
        rates = [s["rate"] if s else None for s in series]
        present = [s for s in series if s and s.get("rate") is not None]
        rows.append(
            [
                label,
                sparkline(rates),
                pct(present[0]["rate"]) if present else "—",
                pct(present[-1]["rate"]) if present else "—",
                _ci(present[-1]["ci"]) if present else "",
            ]
        )

    row("end to end", [{"rate": r.e2e_rate, "ci": r.e2e_ci} for r in runs])
    for step in hist.steps:
        row(f"  {step}", step_series(hist, step))
    _echo_table(rows, {2, 3})
    typer.echo("")
    rows = [["run", "started", "units", "e2e", "95% CI", "verdict", ""]]
    previous = None
    for r in runs:
        changed = "pipeline changed" if previous is not None and r.pipeline_hash != previous else ""
        previous = r.pipeline_hash
        rows.append(
            [
                r.id,
                (r.started_at or "—").replace("+00:00", "Z"),
                "—" if r.units is None else str(r.units),
                pct(r.e2e_rate),
                _ci(r.e2e_ci),
                r.verdict,
                changed,
            ]
        )
    _echo_table(rows, {2, 3})
