"""``relcheck validate`` for MCP steps: check tool calls before anything runs.

Each MCP server is started (or connected to) once and its tools listed; then every step on
an MCP endpoint whose ``tool`` is literal is checked: the tool must be listed (else an error
with a did-you-mean), and for every case the step's ``arguments``, rendered for that case,
must conform to the tool's ``inputSchema`` (jsonschema). Arguments that name an earlier
step's output and templated tool names can only be checked when they run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..config import Case, Pipeline, StepPlan
from ..errors import ConfigError, EvalSetError, RelcheckError
from ..templating import RenderError, Template, references, render_value
from .base import AttemptError
from .mcp import McpEndpoint
from .mcp_tools import arguments_problem, tool_hint

__all__ = ["check_tool_calls", "list_server_tools"]


def list_server_tools(
    pipeline: Pipeline, names: Sequence[str], replay: str | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, list[dict[str, Any]] | AttemptError]:
    """Start or connect to each named MCP endpoint and list its tools (from the cassette when
    replaying); the value is the listing, or the error that prevented it."""
    import asyncio

    async def main() -> dict[str, list[dict[str, Any]] | AttemptError]:
        found: dict[str, list[dict[str, Any]] | AttemptError] = {}
        endpoints = [
            McpEndpoint(name, pipeline.endpoints[name], {"pipeline": pipeline, "replay": replay, "environ": environ})
            for name in names
        ]
        try:
            for ep in endpoints:
                try:
                    found[ep.name] = await ep.list_tools()
                except AttemptError as exc:
                    found[ep.name] = exc
        finally:
            for ep in endpoints:
                await ep.aclose()
        return found

    return asyncio.run(main())


def check_tool_calls(
    pipeline: Pipeline, cases: Iterable[Case], replay: str | None = None, environ: Mapping[str, str] | None = None
) -> list[RelcheckError]:
    """Every problem found with the pipeline's MCP tool calls (empty: all conform)."""
    names = [name for name, ep in pipeline.endpoints.items() if ep.type == "mcp"]
    if not names:
        return []
    listings = list_server_tools(pipeline, names, replay, environ)
    problems: list[RelcheckError] = []
    for name, listing in listings.items():
        if isinstance(listing, AttemptError):
            config = pipeline.endpoints[name]
            key = "url" if config.url is not None else "command"
            problems.append(
                ConfigError(
                    f"endpoint '{name}': {listing.reason.removeprefix(f'endpoint {name}: ')}",
                    pipeline.positions.locate(("endpoints", name, key)),
                    hint="start the server, or correct command/url",
                )
            )
    checked: list[tuple[StepPlan, Mapping[str, Any] | None]] = []
    for step in pipeline.steps:
        offered = listings.get(step.endpoint)
        if not isinstance(offered, list) or step.tool is None or _is_templated(step.tool):
            continue
        tools = {str(t.get("name")): t for t in offered}
        tool = step.tool.source.strip()
        if tool not in tools:
            problems.append(
                ConfigError(
                    f"step {step.id}: endpoint '{step.endpoint}' has no tool '{tool}'{tool_hint(tool, list(tools))}",
                    pipeline.positions.locate(("steps", step.index, "tool")),
                )
            )
        elif not _names_steps(step.arguments):  # else rendered from earlier outputs: checked when it runs
            checked.append((step, tools[tool].get("inputSchema")))
    if not checked:
        return problems
    for case in cases:  # one pass: a large eval set is streamed
        for step, schema in checked:
            context = {
                "vars": case.vars,
                "expect": case.expect,
                "case": {"id": case.id, "tags": list(case.tags)},
                "steps": {},
                "step": {"id": step.id},
                "trial": 1,
                "attempt": 1,
            }
            try:
                arguments = render_value(step.arguments, context) if step.arguments is not None else {}
            except RenderError:
                continue  # a missing vars/expect is reported by validate's template checks
            problem = arguments_problem(arguments, schema)
            if problem is not None:
                problems.append(EvalSetError(f"case {case.id}: step {step.id}: {problem}", case.location))
                if len(problems) >= 20:
                    return problems
    return problems


def _is_templated(template: Template) -> bool:
    return template._compiled is not None


def _names_steps(value: Any) -> bool:
    if isinstance(value, Template):
        return any(ref[0] == "steps" for ref in references(value.source))
    if isinstance(value, dict):
        return any(_names_steps(v) for v in value.values())
    if isinstance(value, list):
        return any(_names_steps(v) for v in value)
    return False
