"""Cells more than one report writes the same way: an interval, a latency, a gate's figures.

Rates themselves go through :func:`reliability_cli.textfmt.pct`; this module only puts
the typed rows' fields into the shapes the reports share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..textfmt import Span, pct_range

if TYPE_CHECKING:
    from ..results.schema import GateRow


def interval(ci: Span | None, *, unit: bool = True) -> str:
    """A rate's interval (``StepRow.ci``, ``EndToEnd.ci``…).

    Args:
        ci: The interval, or None (no unit reached the step).
        unit: Whether to end with ``%`` (:func:`reliability_cli.textfmt.pct_range`).

    Returns:
        ``30.0–95.0%`` (``30.0–95.0`` without the unit), or ``—``.
    """
    return "—" if not ci else pct_range(ci.low, ci.high, unit=unit)


def ms(value: float | None) -> str:
    """A latency in milliseconds: whole above 10 ms, one decimal below; ``—`` without one."""
    if value is None:
        return "—"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def gate_figures(gate: GateRow) -> tuple[str, str, str]:
    """A gate's observed value, threshold and bound as the gate tables show them.

    Args:
        gate: One row of ``results.gates``.

    Returns:
        ``("0.8123", "0.9", "—")``: four decimals, the threshold as given, ``—`` where absent.
    """
    obs, bound = gate.observed, gate.bound
    return ("—" if obs is None else f"{obs:.4f}", f"{gate.threshold:g}", "—" if bound is None else f"{bound:.4f}")
