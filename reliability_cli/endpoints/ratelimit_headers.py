"""Provider rate-limit headers, read into one shape: ``{resource: Limit}``.

=====================================================================  ===========================
header                                                                 read as
=====================================================================  ===========================
``x-ratelimit-{limit,remaining}-{requests,tokens}`` (OpenAI)           counts
``x-ratelimit-reset-{requests,tokens}`` (OpenAI)                       a duration: ``1s``, ``6m0s``,
                                                                       ``20ms``, ``1h2m3.5s``, ``0.5``
``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-``  counts; ``-reset`` is an
``{limit,remaining,reset}`` (Anthropic)                                RFC 3339 time
=====================================================================  ===========================

Resources are ``requests``, ``tokens``, ``input_tokens`` and ``output_tokens``. ``reset`` is
the time, in seconds from now, until that budget is fully replenished (both providers' meaning).
``retry-after`` and ``retry-after-ms`` are read by :func:`.throttle.retry_after_s`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = ["HEADER_NAMES", "Limit", "parse_duration", "read_limits"]

_OPENAI = {"requests": "requests", "tokens": "tokens"}
_ANTHROPIC = {
    "requests": "requests",
    "tokens": "tokens",
    "input-tokens": "input_tokens",
    "output-tokens": "output_tokens",
}

#: Every rate-limit header name this module reads (the transport keeps these).
HEADER_NAMES = tuple(
    [f"x-ratelimit-{part}-{res}" for res in _OPENAI for part in ("limit", "remaining", "reset")]
    + [f"anthropic-ratelimit-{res}-{part}" for res in _ANTHROPIC for part in ("limit", "remaining", "reset")]
)


@dataclass(frozen=True)
class Limit:
    """One budget as the provider reported it."""

    limit: float | None
    remaining: float | None
    reset_s: float | None  # seconds until the budget is full again


_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")


def parse_duration(text: str) -> float | None:
    """OpenAI's Go-style durations (``6m0s``, ``20ms``, ``1.5s``) or plain seconds; ``None`` if unreadable."""
    text = text.strip().lower()
    if not text:
        return None
    try:
        value = float(text)
        return value if value >= 0 else None
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos else None


def _rfc3339_in(text: str, wall_now: float) -> float | None:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - wall_now)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def read_limits(headers: Mapping[str, str], wall_now: float | None = None) -> dict[str, Limit]:
    """The budgets in ``headers`` (lower-case names), by resource; empty when there are none."""
    found: dict[str, Limit] = {}
    if not headers:
        return found
    for part, resource in _OPENAI.items():
        limit, remaining = headers.get(f"x-ratelimit-limit-{part}"), headers.get(f"x-ratelimit-remaining-{part}")
        reset = headers.get(f"x-ratelimit-reset-{part}")
        if limit is None and remaining is None:
            continue
        found[resource] = Limit(
            _number(limit), _number(remaining), parse_duration(reset) if reset is not None else None
        )
    now = time.time() if wall_now is None else wall_now
    for part, resource in _ANTHROPIC.items():
        prefix = f"anthropic-ratelimit-{part}-"
        limit, remaining = headers.get(prefix + "limit"), headers.get(prefix + "remaining")
        if limit is None and remaining is None:
            continue
        reset = headers.get(prefix + "reset")
        found[resource] = Limit(
            _number(limit), _number(remaining), _rfc3339_in(reset, now) if reset is not None else None
        )
    return found
