"""Throttling (429/503 with ``Retry-After``) and client-side pacing (``rate_limit_rpm``).

A 429 or 503 that says when to come back is throttling caused by the harness itself, not a
failure of the endpoint: the request is resent after the wait without counting an attempt,
and counted in ``throttled``. The wait is excluded from ``latency_ms`` and from the
deadline. One attempt may wait ``--max-throttle-wait`` seconds in all; past that it ends as
``http_<status>``. A 429 saying the quota is exhausted (OpenAI's ``insufficient_quota``) is
never waited out: it is fatal, and counts toward the early stop.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

__all__ = ["MAX_RESENDS", "MIN_WAIT_S", "Pacer", "quota_exhausted", "retry_after_s", "throttle_wait_s"]

THROTTLE_STATUS = frozenset({429, 503})
MAX_RESENDS = 100  # bounds a server that keeps answering "Retry-After: 0"
#: The least wait before the n-th resend of one attempt is ``MIN_WAIT_S * 2**n`` (0.05 s, 0.1 s,
#: 0.2 s …), whatever the server asks: ``Retry-After: 0`` or a date in the past cannot cause a
#: burst of immediate resends (with the default ``--max-throttle-wait 120`` at most 11).
MIN_WAIT_S = 0.05


def throttle_wait_s(asked: float, resends: int) -> float:
    """The wait before resend number ``resends + 1``: what the server asked, at least the floor."""
    return max(asked, MIN_WAIT_S * 2.0 ** min(resends, 64))


def retry_after_s(status: int, headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks to wait, or ``None`` when this is not throttling.

    ``retry-after-ms`` (OpenAI, Anthropic) wins over ``Retry-After`` (seconds or an HTTP date).
    """
    if status not in THROTTLE_STATUS:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000
            if value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
        return value if value >= 0 else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def quota_exhausted(status: int, body: bytes) -> bool:
    """A 429 that no wait can fix: OpenAI's ``insufficient_quota`` (or a body saying so)."""
    if status != 429:
        return False
    try:
        data = json.loads(body)
    except ValueError:
        return b"insufficient_quota" in body
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        if "insufficient_quota" in (err.get("code"), err.get("type")):
            return True
        message = err.get("message")
        return isinstance(message, str) and "exceeded your current quota" in message.lower()
    return False


class Pacer:
    """Spaces requests at least ``60 / rpm`` seconds apart (a one-token bucket).

    Each caller reserves the next free slot, so waiting callers are served in order and the
    long-run rate never exceeds ``rpm``.
    """

    def __init__(self, rpm: float) -> None:
        self.interval = 60.0 / rpm
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)
