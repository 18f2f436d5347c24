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
