"""The ``latency`` check: the attempt's latency is at most ``max_ms`` milliseconds.

Like promptfoo's ``latency`` (``src/assertions/latency.ts``: pass when ``latency <= threshold``),
with the bound named ``max_ms``. The latency is the one the runner measured for the attempt
(throttling waits excluded; a replayed attempt reports its recorded latency).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._common import CheckValueError, excerpt, held
from .base import CheckInput, Verdict


def latency(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The attempt took at most ``max_ms`` milliseconds."""
    limit = max_ms_of(spec)
    took = float(inp.latency_ms)
    if took <= limit:
        return held(f"latency {_ms(took)} ms ≤ max {_ms(limit)} ms")
    return Verdict.fail(f"latency {_ms(took)} ms > max {_ms(limit)} ms")


def max_ms_of(spec: Mapping[str, Any]) -> float:
    """The spec's ``max_ms``, checked to be a number ≥ 0."""
    limit = spec.get("max_ms")
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0:
        raise CheckValueError(f"latency needs max_ms, a number of milliseconds ≥ 0, got {excerpt(limit)}")
    return limit


def _ms(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
