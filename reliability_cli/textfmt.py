"""Text for people: the one truncation helper and the one percent formatter.

Every excerpt, reason and table cell that must fit a width goes through :func:`truncate`
(or :func:`one_line`, which squashes whitespace first); every rate shown as a percentage
goes through :func:`pct` (an interval of rates through :func:`pct_range`), and every
difference of rates through :func:`points`. Imports nothing of relcheck.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Protocol


class Span(Protocol):
    """An interval of rates: ``results.schema.Interval`` (anything with ``low`` and ``high``)."""

    @property
    def low(self) -> float: ...

    @property
    def high(self) -> float: ...


ELLIPSIS = "…"
_SPACE = re.compile(r"\s+")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the last one an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def one_line(text: str, limit: int = 200) -> str:
    """Squash a reason or excerpt to one line of at most ``limit`` characters."""
    return truncate(_SPACE.sub(" ", str(text)).strip(), limit)


def pct(value: float | None, digits: int = 1) -> str:
    """A rate as a percentage (``0.8333`` → ``83.3%``); ``—`` when there is none."""
    return "—" if value is None else f"{value:.{digits}%}"


def pct_range(low: float, high: float, *, unit: bool = True) -> str:
    """An interval of rates as percentages: ``83.3–95.1%``.

    Args:
        low: The lower end, a rate (0.833).
        high: The upper end.
        unit: Whether to end with ``%``; a table column whose header names the interval
            (the terminal's ``95% CI``, ``relcheck history``) leaves it out: ``83.3–95.1``.

    Returns:
        The two ends at one decimal, joined by an en dash.
    """
    return f"{pct(low).removesuffix('%')}–{pct(high).removesuffix('%')}" + ("%" if unit else "")


def signed(value: float, digits: int = 2) -> str:
    """``value`` with its sign, never ``-0.00``: ``+1.50``, ``-0.27``, ``+0.00``."""
    rounded = round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{rounded:+.{digits}f}"


def points(delta: float) -> str:
    """A difference of rates in percentage points, signed, never ``−0.0``: ``+1.7 pts``."""
    return f"{signed(delta * 100, 1)} pts"


def independence_gap(e2e: dict) -> str:  # type: ignore[type-arg]
    """:func:`gap_text` of an ``end_to_end`` block given as plain data (``results.json``)."""
    ci = e2e.get("independence_gap_ci")
    return gap_text(e2e.get("independence_gap"), _Ends(ci["low"], ci["high"]) if ci else None)


class _Ends(NamedTuple):
    low: float
    high: float


def gap_text(gap: float | None, ci: Span | None) -> str:
    """The gap between the chained rate and the independence prediction, with its interval,
    worded so that a gap inside its interval is not read as correlation.

    Args:
        gap: ``end_to_end.independence_gap`` (None: no isolated pass).
        ci: ``end_to_end.independence_gap_ci``.

    Returns:
        ``gap -1.7 pts (CI -4.6…+1.2 pts: consistent with independent steps)``, ``gap +1.2 pts``
        without an interval, or ``gap —``.
    """
    if gap is None:
        return "gap —"
    if not ci:
        return f"gap {points(gap)}"
    span = f"{points(ci.low).removesuffix(' pts')}…{points(ci.high)}"
    if ci.low <= 0 <= ci.high:
        verdict = "consistent with independent steps"
    elif gap < 0:
        verdict = "failures cluster: steps fail together more than independence predicts"
    else:
        verdict = "failures spread: the chain does better than independence predicts"
    return f"gap {points(gap)} (CI {span}: {verdict})"
