"""How a report names where a run's units came from, when not from an eval set."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..results.schema import RunInfo


def traces_line(run: RunInfo) -> str:
    """Where the units of a ``relcheck traces`` run came from.

    Args:
        run: The run block (``run.source`` is ``traces``).

    Returns:
        ``40 traces · 2026-11-01T00:00 → 2026-11-01T06:00 · otlp, 2 files``.
    """
    span = run.time_span
    inputs = run.inputs or ()
    formats = ", ".join(dict.fromkeys(i.format for i in inputs)) or "?"
    start = ((span.start if span else None) or "?")[:16]
    end = ((span.end if span else None) or "?")[:16]
    return f"{run.cases} traces · {start} → {end} · {formats}, {len(inputs)} file{'s' if len(inputs) != 1 else ''}"
