"""The one protocol every endpoint implements.

An endpoint turns a rendered :class:`Request` into a :class:`Response`, or raises
:class:`AttemptError` carrying an ``error_kind`` of SPEC §4. It owns its own deadline
(``request.timeout_s`` is a total deadline; throttling waits are excluded from it), so the
runner never wraps it in a second timeout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..records import INFRA_KINDS, ToolCall, is_infrastructure, is_retryable_error

__all__ = [
    "INFRA_KINDS",
    "AttemptError",
    "AttemptKey",
    "Endpoint",
    "Request",
    "Response",
    "is_infrastructure",
    "is_retryable_error",
]


@dataclass(frozen=True)
class AttemptKey:
    case: str
    trial: int
    step: str
    attempt: int


@dataclass(frozen=True)
class Request:
    """One attempt's rendered request."""

    key: AttemptKey
    messages: Sequence[Mapping[str, str]]
    params: Mapping[str, Any]
    context: Mapping[str, Any]
    timeout_s: float
    seed: int = 0
    phase: str = "chained"


@dataclass
class Response:
    """What came back. ``output`` is a structured value where the endpoint returns one."""

    text: str
    output: Any = None
    tool_calls: Sequence[ToolCall] = ()
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_ms: float | None = None  # None: the runner's measurement is used
    throttled: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class AttemptError(Exception):
    """An attempt ended in an error of ``kind`` (``timeout``, ``http_500``, ``parse`` …)."""

    def __init__(
        self,
        kind: str,
        reason: str,
        *,
        latency_ms: float | None = None,
        throttled: int = 0,
        status: int | None = None,
        fatal: bool = False,
    ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.latency_ms = latency_ms
        self.throttled = throttled
        self.status = status
        self.fatal = fatal  # e.g. insufficient_quota: counts toward the early stop
        self.sent: Any = None  # the request as sent (an HTTP endpoint's, for requests.jsonl)


class Endpoint(Protocol):
    name: str

    async def call(self, request: Request) -> Response: ...

    async def aclose(self) -> None: ...
