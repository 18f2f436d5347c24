"""``relcheck traces FILE…``: per-step reliability from production traces, reported and gated like eval."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import UsageError
from .common import handle_errors


@handle_errors
def traces_command(
    files: list[str] = typer.Argument(
        ..., help="OTLP JSON, LangSmith runs or Langfuse observations (JSON/JSONL/CSV).", metavar="FILE"
    ),
    format: str = typer.Option("auto", "--format", help="auto, otlp, langsmith or langfuse.", metavar="FORMAT"),
    pipeline: Optional[str] = typer.Option(
        None,
        "--pipeline",
        help="Map records to this pipeline's steps (its traces: section); run its checks on recorded outputs; "
        "use its gates.",
        metavar="PIPELINE",
    ),
    sampled: Optional[str] = typer.Option(
        None,
        "--sampled",
        help="The sampling policy the traces were kept under (recorded in the report).",
        metavar="POLICY",
    ),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Count and skip malformed records instead of stopping (exit 2)."
    ),
    out: Optional[str] = typer.Option(None, "--out", help="Run directory (must be new or empty).", metavar="DIR"),
    json_out: Optional[str] = typer.Option(
        None, "--json", help="Also write results.json here (- for stdout).", metavar="FILE"
    ),
    junit: Optional[str] = typer.Option(None, "--junit", help="Write JUnit XML here.", metavar="FILE"),
    markdown: Optional[str] = typer.Option(None, "--markdown", help="Write a Markdown summary here.", metavar="FILE"),
    html: Optional[str] = typer.Option(None, "--html", help="Write a self-contained HTML report here.", metavar="FILE"),
    show_failures: int = typer.Option(
        5, "--show-failures", min=0, help="Failing traces to list per step.", metavar="N"
    ),
    min_e2e: Optional[float] = typer.Option(
        None, "--min-e2e", min=0, max=1, help="Gate: minimum end-to-end rate.", metavar="RATE"
    ),
    min_step: list[str] = typer.Option([], "--min-step", help="Gate: STEP=RATE (repeatable).", metavar="STEP=RATE"),
    mode: Optional[str] = typer.Option(None, "--mode", help="Gate mode: point or lower-bound.", metavar="MODE"),
    max_error_rate: Optional[float] = typer.Option(
        None,
        "--max-error-rate",
        min=0,
        max=1,
        help="Exit 3 above this share of traces ending in an infrastructure error (default: no limit).",
        metavar="RATE",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the verdict line."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Per-step reliability, the survival waterfall and gates from production traces.

    Each trace is a unit; each span/run/observation that stands for a step is an attempt
    (error when it errored, else pass, or fail when --pipeline's checks ran on its output).
    Writes the same run directory and reports as eval (results.json has run.source: traces).
    Exit 0: every gate passed. 1: a gate failed. 2: bad input (file and line named).
    3: no trace had a step.
    """
    from ..traces import TraceOptions, read_traces
    from .eval import _parse_min_step
    from .render import emit_reports

    if mode is not None and mode not in ("point", "lower-bound"):
        raise UsageError(f"--mode {mode!r}: expected point or lower-bound")
    inputs = {Path(f).resolve() for f in files} | ({Path(pipeline).resolve()} if pipeline else set())
    for flag, target in (("--json", json_out), ("--junit", junit), ("--markdown", markdown), ("--html", html)):
        if target and target != "-" and Path(target).resolve() in inputs:
            raise UsageError(f"{flag} {target}: that is an input file; relcheck never overwrites its input")
    options = TraceOptions(
        format=format,
        pipeline=pipeline,
        sampled=sampled,
        skip_bad=skip_bad,
        out=out,
        gate_overrides={
            "end_to_end_min": min_e2e,
            "step_mins": _parse_min_step(min_step) or None,
            "mode": mode,
            "max_error_rate": max_error_rate,
        },
        command=["relcheck", *sys.argv[1:]],
    )
    outcome = read_traces(files, options)
    emit_reports(
        outcome.results,
        json_out=json_out,
        junit=junit,
        markdown=markdown,
        html=html,
        show_failures=show_failures,
        quiet=quiet,
        json_source=outcome.run_dir / "results.json",
    )
    raise typer.Exit(outcome.exit_code)
