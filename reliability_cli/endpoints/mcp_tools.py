"""What the MCP endpoint and ``relcheck validate`` share, none of it needing the SDK: tool
formats for ``tools_from``, argument checks against a tool's ``inputSchema``, result text."""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError, Location

__all__ = [
    "INSTALL_HINT",
    "anthropic_tools",
    "arguments_problem",
    "leaf",
    "openai_tools",
    "require_sdk",
    "text_of",
    "tool_hint",
]

INSTALL_HINT = "pip install 'relcheck[mcp]'"


def require_sdk(name: str, where: Location | None) -> None:
    """Raise ConfigError (exit 2) naming the install command when the MCP SDK is missing."""
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"endpoint '{name}' is an mcp endpoint, which needs the MCP SDK (the 'mcp' package); it is not installed",
            where,
            hint=INSTALL_HINT,
        ) from None


def openai_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """MCP tools in OpenAI's ``tools`` format."""
    return [
        {
            "type": "function",
            "function": {
                "name": t["name"],
                "description": t.get("description") or "",
                "parameters": t.get("inputSchema") or {"type": "object"},
            },
        }
        for t in tools
    ]


def anthropic_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """MCP tools in Anthropic's ``tools`` format."""
    return [
        {
            "name": t["name"],
            "description": t.get("description") or "",
            "input_schema": t.get("inputSchema") or {"type": "object"},
        }
        for t in tools
    ]


def tool_hint(name: str, names: Sequence[str]) -> str:
    """`` — did you mean 'x'?`` or the list of tools."""
    close = difflib.get_close_matches(name, list(names), n=1)
    if close:
        return f" — did you mean '{close[0]}'?"
    return f" (tools: {', '.join(sorted(names)) or 'none'})"


def arguments_problem(arguments: Any, schema: Mapping[str, Any] | None) -> str | None:
    """The first way ``arguments`` fails ``schema``, as ``arguments.amount: '12.5' is not of
    type 'number'``; None when they conform."""
    if not isinstance(arguments, dict):
        return f"arguments must be an object, got {type(arguments).__name__}"
    if not schema:
        return None
    import jsonschema

    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except jsonschema.SchemaError as exc:
        return f"the tool's inputSchema is not a valid JSON Schema: {exc.message}"
    errors = list(validator.iter_errors(arguments))
    if not errors:
        return None
    error = jsonschema.exceptions.best_match(errors)
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"arguments{where}: {error.message}"


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    """One checked validator per schema (validate checks every case against the same few)."""
    import jsonschema

    schema = json.loads(schema_json)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)  # a server's schema is data: never trusted to be valid
    return validator_cls(schema)


def leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (anyio's) exception groups."""
    while isinstance(getattr(exc, "exceptions", None), tuple) and exc.exceptions:  # type: ignore[attr-defined]
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return exc


def text_of(result: Mapping[str, Any]) -> str:
    parts = []
    for item in result.get("content") or ():
        if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
            parts.append(item["text"])
    return "\n".join(parts)
