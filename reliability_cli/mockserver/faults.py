"""What the mock server injects, and how each request's fault is drawn.

:class:`FaultConfig` is the user's settings (the ``relcheck mock-server`` flags);
:class:`FaultPlan` turns them into one decision per request.

Draws are deterministic. A request carrying the ``x-relcheck-attempt`` header (relcheck sends
it: case, trial, step, attempt, throttled resend and phase of the attempt) gets the digest
``SHA-256("{seed}|attempt|{header}")``: keyed on the attempt alone, never on what the server
has seen before, so two identical runs against one long-running server get identical
faults. A request without the header is keyed on the *request*, not on arrival order: the k-th request
(k counting from 1) whose canonical JSON body (keys sorted, compact separators) has SHA-256
``B`` gets the digest ``SHA-256("{seed}|{B}|{k}")``. Its first 8 bytes, as a fraction of
2^64, pick the outcome; the next 8 pick the latency jitter. So a replayed request sequence
gets the same outcomes, and requests with different bodies get the same outcomes whatever
order concurrent clients deliver them in; only identical bodies (a retry, a second trial)
depend on their relative order, and those are interchangeable.

Outcomes partition [0, 1) in this fixed order: ``hang``, ``drop``, ``status_<code>``
(ascending code), ``malformed``, ``wrong``; the rest is ``ok``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FaultConfig",
    "FaultPlan",
    "Decision",
    "parse_status_rates",
    "error_body",
    "retry_headers",
    "WRONG_REPLY",
    "MALFORMED_BODY",
]

WRONG_REPLY = "<relcheck-mock: wrong answer>"
#: A 200 body that is not valid JSON: a chat completion cut off mid-string.
MALFORMED_BODY = (
    b'{"id": "chatcmpl-relcheck-mock", "object": "chat.completion", "choices": '
    b'[{"index": 0, "message": {"role": "assistant", "content": "<relcheck-mock: mal'
)
_SCALE = float(2**64)


def _check_rate(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")


def _check_status(code: object) -> None:
    if isinstance(code, bool) or not isinstance(code, int) or not 400 <= code <= 599:
        raise ValueError(f"an injected HTTP status must be an integer from 400 to 599, got {code!r}")


def parse_status_rates(text: str) -> dict[int, float]:
    """Parse ``"500=0.02,429=0.01"`` into ``{500: 0.02, 429: 0.01}``.

    Args:
        text: Comma-separated ``STATUS=RATE`` pairs; blanks around items are ignored and an
            empty string means no injected statuses.

    Returns:
        The share of requests to answer with each status.

    Raises:
        ValueError: An item is not ``STATUS=RATE``, a status is not an integer from 400 to
            599 or appears twice, a rate is not within 0..1, or the rates add up to more than 1.
    """
    rates: dict[int, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        code_text, sep, rate_text = item.partition("=")
        if not sep:
            raise ValueError(f"bad status rate {item!r}: expected STATUS=RATE, e.g. 500=0.02,429=0.01")
        try:
            code = int(code_text.strip())
        except ValueError:
            raise ValueError(
                f"bad status rate {item!r}: {code_text.strip()!r} is not an HTTP status code (expected e.g. 500=0.02)"
            ) from None
        try:
            rate = float(rate_text.strip())
        except ValueError:
            raise ValueError(
                f"bad status rate {item!r}: {rate_text.strip()!r} is not a number "
                "(expected a share between 0 and 1, e.g. 500=0.02)"
            ) from None
        if code in rates:
            raise ValueError(f"bad status rate {item!r}: status {code} is given twice")
        _check_status(code)
        _check_rate(f"the rate of status {code}", rate)
        rates[code] = rate
    if sum(rates.values()) > 1.0 + 1e-9:
        raise ValueError(f"status rates add up to {sum(rates.values()):g}, more than 1: {text!r}")
    return rates


@dataclass(frozen=True)
class FaultConfig:
    """What the mock server injects, as shares of requests to the completion endpoints.

    Attributes:
        fail_rate: Answered 200 with the well-formed but wrong reply ``WRONG_REPLY``.
        status_rates: Answered with that HTTP status and the API's own error body.
        retry_after: Seconds sent in ``Retry-After`` (and ``retry-after-ms``) on 429 and 503.
        latency_ms: Delay before every answer.
        jitter_ms: The delay is drawn uniformly within ``latency_ms ± jitter_ms`` (at least 0).
        malformed_rate: Answered 200 with a body that is not valid JSON.
        drop_rate: The status line and part of the body are sent, then the connection is cut.
        hang_rate: Never answered (until the client gives up or the server stops).
        seed: Seeds every draw.
        quota_exhausted: Every request gets 429 without Retry-After: OpenAI's
            ``insufficient_quota`` error (Anthropic's route: a ``rate_limit_error`` saying so).
    """

    fail_rate: float = 0.0
    status_rates: dict[int, float] = field(default_factory=dict)
    retry_after: float | None = None
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    malformed_rate: float = 0.0
    drop_rate: float = 0.0
    hang_rate: float = 0.0
    seed: int = 0
    quota_exhausted: bool = False

    def __post_init__(self) -> None:
        for name in ("fail_rate", "malformed_rate", "drop_rate", "hang_rate"):
            _check_rate(name, getattr(self, name))
        for code, rate in self.status_rates.items():
            _check_status(code)
            _check_rate(f"the rate of status {code}", rate)
        total = self.fail_rate + self.malformed_rate + self.drop_rate + self.hang_rate + sum(self.status_rates.values())
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"fault rates add up to {total:g}, more than 1 (fail, malformed, "
                "drop, hang and status rates are shares of the same requests)"
            )
        for name in ("latency_ms", "jitter_ms"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a number of milliseconds >= 0, got {value!r}")
        if self.retry_after is not None and not 0 <= self.retry_after < math.inf:
            raise ValueError(f"retry_after must be a number of seconds >= 0, got {self.retry_after!r}")


@dataclass(frozen=True)
class Decision:
    """One request's fate: its outcome (a key of the server's counts) and its delay."""

    outcome: str
    delay_s: float


class FaultPlan:
    """Draws each request's :class:`Decision` from a :class:`FaultConfig`."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._thresholds: list[tuple[float, str]] = []
        cumulative = 0.0
        named = [("hang", config.hang_rate), ("drop", config.drop_rate)]
        named += [(f"status_{code}", rate) for code, rate in sorted(config.status_rates.items())]
        named += [("malformed", config.malformed_rate), ("wrong", config.fail_rate)]
        for outcome, rate in named:
            if rate > 0:
                cumulative += rate
                self._thresholds.append((cumulative, outcome))
        self._base_s = config.latency_ms / 1000.0
        self._jitter_s = config.jitter_ms / 1000.0
        #: Nothing to draw: every request is ``ok`` after the fixed latency.
        self.trivial = not self._thresholds and self._jitter_s == 0
        # One small entry per distinct body: how many times it has been seen.
        self._seen: dict[bytes, int] = {}

    def decide(self, body: Any, attempt: str | None = None) -> Decision:
        """The decision for the request carrying the parsed JSON ``body`` and, when the client
        sent one, the ``x-relcheck-attempt`` header ``attempt``."""
        if self.trivial:
            return Decision("ok", self._base_s)
        if attempt:
            digest = hashlib.sha256(f"{self.config.seed}|attempt|{attempt}".encode()).digest()
        else:
            canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            body_digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest()
            k = self._seen.get(body_digest, 0) + 1
            self._seen[body_digest] = k
            digest = hashlib.sha256(f"{self.config.seed}|{body_digest.hex()}|{k}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / _SCALE
        outcome = "ok"
        for threshold, name in self._thresholds:
            if u < threshold:
                outcome = name
                break
        delay = self._base_s
        if self._jitter_s:
            j = int.from_bytes(digest[8:16], "big") / _SCALE
            delay = max(0.0, delay + (2.0 * j - 1.0) * self._jitter_s)
        return Decision(outcome, delay)


_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to use this model."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    408: ("server_error", "timeout", "Request timed out."),
    409: ("invalid_request_error", "conflict", "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
}
_ANTHROPIC_ERRORS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def retry_headers(retry_after: float | None) -> dict[str, str]:
    """``Retry-After`` (seconds, fractional if so configured) and ``retry-after-ms``."""
    if retry_after is None:
        return {}
    seconds = str(int(retry_after)) if float(retry_after).is_integer() else f"{retry_after:g}"
    return {"Retry-After": seconds, "retry-after-ms": str(round(retry_after * 1000))}


def error_body(api: str, status: int, message: str | None = None, *, quota: bool = False) -> dict[str, Any]:
    """An error body in the shape of ``api`` (``"openai"`` or ``"anthropic"``).

    Args:
        api: Whose shape: OpenAI's ``{"error": {message, type, param, code}}`` or Anthropic's
            ``{"type": "error", "error": {type, message}}``.
        status: The HTTP status the body goes with.
        message: What went wrong; a default fitting ``status`` otherwise.
        quota: The quota is exhausted (OpenAI's ``insufficient_quota``).
    """
    if quota:
        message = "You exceeded your current quota, please check your plan and billing details."
    if api == "anthropic":
        fallback = "api_error" if status >= 500 else "invalid_request_error"
        kind = _ANTHROPIC_ERRORS.get(status, fallback)
        return {
            "type": "error",
            "error": {"type": kind, "message": f"relcheck-mock: {message or f'injected HTTP {status}'}"},
        }
    kind, code, default = _OPENAI_ERRORS.get(
        status,
        (
            "server_error" if status >= 500 else "invalid_request_error",
            None,
            "The server had an error while processing your request.",
        ),
    )
    if quota:
        kind = code = "insufficient_quota"
    return {"error": {"message": f"relcheck-mock: {message or default}", "type": kind, "param": None, "code": code}}
