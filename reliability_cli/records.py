"""Records shared by every layer: the vocabulary of attempt outcomes (SPEC §4) — which error
kinds are infrastructure, and which ones ``retry.on: [error]`` retries — and the tool calls a
model asks for. Imports nothing of relcheck; endpoints, checks, the runner and results use it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# ``too_large`` (a body past ``max_response_bytes``) is the server's fault, so infrastructure; it is
# not retried: the same request would most likely be answered with the same flood.
INFRA_KINDS = frozenset({"timeout", "connect", "protocol", "parse", "replay_miss", "too_large", "cache_miss"})
RETRYABLE_STATUS = frozenset({408, 409, 425})
RETRYABLE_KINDS = frozenset(
    {"timeout", "connect", "protocol", "parse", "exception", "tool_error", "tool_args", "tool_unknown"}
)  # MCP: the step's own, not infra


def is_infrastructure(kind: str | None) -> bool:
    """``timeout``, ``connect``, ``protocol``, ``http_<status>``, ``parse``, ``replay_miss``, ``too_large``."""
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


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model asked for (OpenAI ``tool_calls`` / Anthropic ``tool_use``)."""

    name: str
    arguments: Any  # parsed JSON arguments (dict) where they parse, else the raw string


def parse_arguments(raw: Any) -> Any:
    """Tool-call arguments as JSON where they parse (OpenAI sends a JSON string), else as given."""
    if isinstance(raw, str):
        from .boundedjson import loads

        try:
            return loads(raw)
        except ValueError:  # not JSON, or past the budgets (nesting, digits): kept as the string
            return raw
    return raw
