"""Text for people: the one truncation helper and the one percent formatter.

Every excerpt, reason and table cell that must fit a width goes through :func:`truncate`
(or :func:`one_line`, which squashes whitespace first); every rate shown as a percentage
goes through :func:`pct`. Imports nothing of relcheck.
"""

from __future__ import annotations

import re

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


def points(delta: float) -> str:
    """A difference of rates in percentage points, signed, never ``−0.0``: ``+1.7 pts``."""
    value = round(delta * 100, 1)
    return f"{value + 0.0:+.1f} pts"  # + 0.0 turns -0.0 into 0.0


def independence_gap(e2e: dict) -> str:  # type: ignore[type-arg]
    """The gap between the chained rate and the independence prediction, with its interval,
    worded so that a gap inside its interval is not read as correlation."""
    gap = e2e.get("independence_gap")
    if gap is None:
        return "gap —"
    ci = e2e.get("independence_gap_ci")
    if not ci:
        return f"gap {points(gap)}"
    span = f"{points(ci['low']).removesuffix(' pts')}…{points(ci['high'])}"
    if ci["low"] <= 0 <= ci["high"]:
        verdict = "consistent with independent steps"
    elif gap < 0:
        verdict = "failures cluster: steps fail together more than independence predicts"
    else:
        verdict = "failures spread: the chain does better than independence predicts"
    return f"gap {points(gap)} (CI {span}: {verdict})"
