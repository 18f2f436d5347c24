"""Endpoints: one module per type behind the :class:`~.base.Endpoint` protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config.models import MockEndpoint as MockConfig
from .base import (
    AttemptError,
    AttemptKey,
    Endpoint,
    Request,
    Response,
    is_infrastructure,
    is_retryable_error,
)

__all__ = [
    "AttemptError",
    "AttemptKey",
    "Endpoint",
    "Request",
    "Response",
    "build_endpoint",
    "is_infrastructure",
    "is_retryable_error",
    "link_tool_sources",
    "mock_override",
]


def mock_override(config: Any) -> MockConfig:
    """The mock that ``--endpoint NAME=mock`` puts in place of a real endpoint.

    It answers each step with its gold output (``expect[step.id]``) and never fails, so a
    pipeline can be dry-run offline without editing the file.
    """
    return MockConfig(type="mock", reply="{{ expect[step.id] }}", timeout_s=getattr(config, "timeout_s", None))


def build_endpoint(name: str, config: Any, options: Mapping[str, Any] | None = None) -> Endpoint:
    """Create the endpoint for ``config`` (a model from :mod:`reliability_cli.config.models`)."""
    kind = config.type
    if kind == "mock":
        from .mock import MockEndpoint

        return MockEndpoint(name, config)
    if kind == "python":
        from .python import PythonEndpoint

        return PythonEndpoint(name, config)
    if kind == "mcp":
        from .mcp import McpEndpoint  # the SDK itself is imported only when a session opens

        return McpEndpoint(name, config, options or {})
    from .http import build  # imported lazily: httpx is heavy

    return build(name, config, options or {})


def link_tool_sources(endpoints: Mapping[str, Endpoint]) -> None:
    """Give each model endpoint with ``tools_from`` the MCP endpoint it offers tools from.

    An MCP endpoint swapped for a mock (``--endpoint tools=mock``) lists no tools, so the
    model is offered none.
    """
    for endpoint in endpoints.values():
        source = getattr(getattr(endpoint, "config", None), "tools_from", None)
        if source is not None and hasattr(endpoint, "tool_source"):
            provider = endpoints.get(source)
            endpoint.tool_source = provider if hasattr(provider, "offered_tools") else None
