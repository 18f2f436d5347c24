"""``relcheck report``: re-render a saved run."""

from __future__ import annotations

from typing import Optional

import typer

from .common import handle_errors, write_output


@handle_errors
def report_command(
    results: str = typer.Argument(..., help="A results.json or run directory.", metavar="RESULTS"),
    fmt: str = typer.Option(
        "terminal", "--format", "-f", help="terminal, json, junit, markdown or html.", metavar="FORMAT"
    ),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Write to this file.", metavar="FILE"),
    show_failures: Optional[int] = typer.Option(None, "--show-failures", min=0, metavar="N"),
) -> None:
    """Re-render a saved run."""
    from ..errors import UsageError
    from ..reports import FORMATS, render
    from ..results.schema import load as load_results

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    from ..outputs import refuse_overwrites, results_file

    refuse_overwrites({"-o": output}, [("the results file it reads", results_file(results))])
    data = load_results(results)
    if fmt == "terminal" and output is None:
        from .render import print_terminal

        print_terminal(data, 5 if show_failures is None else show_failures)
        return
    if fmt == "json":  # streamed: the document is never held as one string
        from .render import write_json

        write_json(data, output or "-")
        return
    from pathlib import Path

    source = Path(results) if Path(results).is_dir() else Path(results).parent  # the viewer reads the run dir
    write_output(output or "-", render(data, fmt, show_failures=show_failures, run_dir=str(source)))
