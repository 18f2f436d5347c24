"""The vocabulary of attempt outcomes (SPEC §4): which error kinds are infrastructure, and
which ones ``retry.on: [error]`` retries. Shared by the endpoints, the runner and analysis."""

from __future__ import annotations

INFRA_KINDS = frozenset({"timeout", "connect", "protocol", "parse", "replay_miss"})
NON_RETRYABLE_STATUS = frozenset({400, 401, 403, 404, 422})
RETRYABLE_STATUS = frozenset({408, 409, 425})
RETRYABLE_KINDS = frozenset({"timeout", "connect", "protocol", "parse", "exception"})


def is_infrastructure(kind: str | None) -> bool:
    """``timeout``, ``connect``, ``protocol``, ``http_<status>``, ``parse``, ``replay_miss``."""
    return kind is not None and (kind in INFRA_KINDS or kind.startswith("http_"))


def is_retryable_error(kind: str | None) -> bool:
    """What ``retry.on: [error]`` retries: never 400/401/403/404/422, template or replay_miss."""
    if kind in RETRYABLE_KINDS:
        return True
    if kind and kind.startswith("http_"):
        try:
            status = int(kind[5:])
        except ValueError:
            return False
        return status in RETRYABLE_STATUS or 500 <= status <= 599
    return False
