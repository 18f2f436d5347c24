"""``relcheck init``: scaffold a pipeline and eval set that run offline."""

from __future__ import annotations

import typer

from .common import handle_errors


@handle_errors
def init_command(
    directory: str = typer.Argument(".", help="Where to create pipeline.yaml and cases.jsonl.", metavar="DIR"),
) -> None:
    """Scaffold a pipeline and eval set that run offline on the mock endpoint."""
    from ..scaffold import scaffold

    written = scaffold(directory)
    for path in written:
        typer.echo(f"created {path}")
    typer.echo(f"next: relcheck eval {written[0]}")
