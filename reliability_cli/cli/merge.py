"""``relcheck merge``: combine shard results into one run, apply its gates, exit like ``eval``."""

from __future__ import annotations

from typing import Optional

import typer

from .common import handle_errors


@handle_errors
def merge_command(
    results: list[str] = typer.Argument(
        ..., help="Shard results.json files (or their run directories).", metavar="RESULTS"
    ),
    output: str = typer.Option(
        ..., "-o", "--output", help="Write the merged results.json here (- for stdout).", metavar="FILE"
    ),
    junit: Optional[str] = typer.Option(None, "--junit", help="Also write JUnit XML here.", metavar="FILE"),
    markdown: Optional[str] = typer.Option(
        None, "--markdown", help="Also write a Markdown summary here.", metavar="FILE"
    ),
    html: Optional[str] = typer.Option(None, "--html", help="Also write an HTML report here.", metavar="FILE"),
    show_failures: int = typer.Option(5, "--show-failures", min=0, help="Failing units to list per step.", metavar="N"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the verdict line."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Merge the results of `relcheck eval --shard I/N` runs into one run and gate it.

    The shards must share the pipeline, eval sets and flags, and not overlap (else exit 2).
    Exit codes as `relcheck eval`: 0 pass, 1 a gate failed, 3 no trustworthy verdict
    (including missing shards), 130 a shard was interrupted.
    """
    import sys

    from ..outputs import refuse_overwrites, results_file
    from ..results.merge import merge, missing_shards
    from .render import emit_reports, write_json

    refuse_overwrites(
        {"-o": output, "--junit": junit, "--markdown": markdown, "--html": html},
        [(f"the shard results {r}", results_file(r)) for r in results],
    )
    merged = merge(results)
    lacking = missing_shards(merged, results)
    if lacking:
        sys.stderr.write(f"relcheck: {lacking}\n")
    if output == "-":
        emit_reports(
            merged, json_out="-", junit=junit, markdown=markdown, html=html, show_failures=show_failures, quiet=quiet
        )
    else:
        write_json(merged, output)  # atomic for a regular file; a device or symlink is written through
        emit_reports(merged, junit=junit, markdown=markdown, html=html, show_failures=show_failures, quiet=quiet)
    raise typer.Exit(merged.exit_code)
