"""``relcheck schema``: the JSON Schema of the pipeline format."""

from __future__ import annotations

from typing import Optional

import typer

from .common import handle_errors, write_output


@handle_errors
def schema_command(
    output: Optional[str] = typer.Option(
        None, "-o", "--output", help="Write to this file instead of stdout.", metavar="FILE"
    ),
) -> None:
    """Print the JSON Schema of the pipeline format, for editors."""
    import json

    from ..config import json_schema

    write_output(output or "-", json.dumps(json_schema(), indent=2) + "\n")
