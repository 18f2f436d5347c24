"""``relcheck runs [--prune --keep N]``: the run directories under ``.relcheck/runs``."""

from __future__ import annotations

import json
from typing import Optional

import typer

from ..runs import RUNS_DIR
from ..textfmt import pct, pct_range
from .common import handle_errors, write_output


def _ci(ci: Optional[dict[str, float]]) -> str:
    return "" if not ci else pct_range(ci["low"], ci["high"], unit=False)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def _echo_table(rows: list[list[str]], right: set[int]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        typer.echo("  ".join(cells).rstrip())


@handle_errors
def runs_command(
    root: str = typer.Option(str(RUNS_DIR), "--dir", help="Where the runs are.", metavar="DIR"),
    prune: bool = typer.Option(False, "--prune", help="Delete the oldest runs, keeping the newest --keep N."),
    keep: Optional[int] = typer.Option(None, "--keep", min=0, help="With --prune: how many runs to keep.", metavar="N"),
    json_out: bool = typer.Option(False, "--json", help="Print the list as JSON."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """List past runs (id, date, pipeline, units, end-to-end rate, verdict, size), oldest first;
    with --prune --keep N, delete all but the newest N (never a run another relcheck holds)."""
    from ..errors import UsageError
    from ..runs import list_runs, prune_runs

    if prune:
        if keep is None:
            raise UsageError("--prune needs --keep N (the number of newest runs to keep)")
        result = prune_runs(keep, root)
        for info in result.deleted:
            typer.echo(f"deleted {info.path}")
        for info in result.skipped_locked:
            typer.echo(f"kept {info.path}: another relcheck holds it (running or resuming)")
        typer.echo(f"{len(result.deleted)} run(s) deleted, {_mb(result.freed_bytes)} freed; {len(result.kept)} kept")
        return
    if keep is not None:
        raise UsageError("--keep goes with --prune")
    runs = list_runs(root)
    if json_out:
        write_output("-", json.dumps([r.as_dict() for r in runs], indent=2) + "\n")
        return
    if not runs:
        typer.echo(f"no runs under {root}")
        return
    rows = [["id", "started", "pipeline", "units", "e2e", "verdict", "size"]]
    for r in runs:
        verdict = r.verdict + (" (running)" if r.locked else "")
        rows.append(
            [
                r.id,
                (r.started_at or "—").replace("+00:00", "Z"),
                r.pipeline or "—",
                "—" if r.units is None else str(r.units),
                pct(r.e2e_rate),
                verdict,
                _mb(r.size_bytes),
            ]
        )
    _echo_table(rows, {3, 4, 6})
    typer.echo(f"{len(runs)} run(s), {_mb(sum(r.size_bytes for r in runs))} in {root}")
