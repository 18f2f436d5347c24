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

__all__ = ["AttemptError", "AttemptKey", "Endpoint", "Request", "Response", "build_endpoint",
           "is_infrastructure", "is_retryable_error", "mock_override"]


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
    from .http import build  # imported lazily: httpx is heavy

    return build(name, config, options or {})
