"""Read a saved ``results.json`` (or a run directory holding one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import Location, ResultsError

SCHEMA = "relcheck.results/v1"
REQUIRED = ("schema", "run", "steps", "end_to_end", "units", "gates", "verdict", "exit_code")


def load_results(path: str | Path) -> dict[str, Any]:
    """Load and sanity-check a results document.

    Raises:
        ResultsError: missing file, invalid JSON, or not a relcheck results document.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    file = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError("no such results file", Location(file)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read: {exc}", Location(file)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"invalid JSON: {exc.msg}", Location(file, exc.lineno, exc.colno)) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ResultsError(f"not a relcheck results file (schema {found!r}, expected {SCHEMA!r})",
                           Location(file, 1, 1))
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ResultsError(f"results file lacks {', '.join(missing)}", Location(file, 1, 1, missing[0]))
    return data
