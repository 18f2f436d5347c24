"""How a report names where a run's units came from, when not from an eval set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def traces_line(run: Mapping[str, Any]) -> str:
    """``40 traces · 2026-11-01T00:00 → 2026-11-01T06:00 · otlp, 2 files`` (``relcheck traces``)."""
    span = run.get("time_span") or {}
    inputs = run.get("inputs") or []
    formats = ", ".join(dict.fromkeys(str(i.get("format")) for i in inputs)) or "?"
    start, end = (span.get("start") or "?")[:16], (span.get("end") or "?")[:16]
    return (
        f"{run.get('cases', '?')} traces · {start} → {end} · {formats}, "
        f"{len(inputs)} file{'s' if len(inputs) != 1 else ''}"
    )
