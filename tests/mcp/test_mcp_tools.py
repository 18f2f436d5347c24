"""The SDK-free helpers: argument checks against inputSchema, tool formats, did-you-mean."""

from __future__ import annotations

from reliability_cli.endpoints.mcp_tools import (
    anthropic_tools,
    arguments_problem,
    openai_tools,
    text_of,
    tool_hint,
)

SCHEMA = {
    "type": "object",
    "required": ["order_id", "lines"],
    "properties": {
        "order_id": {"type": "string"},
        "lines": {
            "type": "array",
            "items": {"type": "object", "required": ["sku"], "properties": {"qty": {"type": "integer", "minimum": 1}}},
        },
    },
}


def test_arguments_problem_names_the_failing_field_path() -> None:
    assert arguments_problem({"order_id": "o", "lines": [{"sku": "a", "qty": 2}]}, SCHEMA) is None
    assert arguments_problem({"order_id": 7, "lines": []}, SCHEMA) == "arguments.order_id: 7 is not of type 'string'"
    assert (
        arguments_problem({"order_id": "o", "lines": [{"sku": "a"}, {"sku": "b", "qty": 0}]}, SCHEMA)
        == "arguments.lines[1].qty: 0 is less than the minimum of 1"
    )
    assert arguments_problem({"lines": []}, SCHEMA) == "arguments: 'order_id' is a required property"
    assert arguments_problem(["x"], SCHEMA) == "arguments must be an object, got list"
    assert arguments_problem({"a": 1}, None) is None
    assert "not a valid JSON Schema" in str(arguments_problem({}, {"type": 5}))


def test_tool_formats_and_hints() -> None:
    tools = [{"name": "lookup", "description": "Find", "inputSchema": SCHEMA}, {"name": "bare"}]
    assert openai_tools(tools) == [
        {"type": "function", "function": {"name": "lookup", "description": "Find", "parameters": SCHEMA}},
        {"type": "function", "function": {"name": "bare", "description": "", "parameters": {"type": "object"}}},
    ]
    assert anthropic_tools(tools)[0] == {"name": "lookup", "description": "Find", "input_schema": SCHEMA}
    assert tool_hint("lookpu", ["lookup", "refund"]) == " — did you mean 'lookup'?"
    assert tool_hint("zzz", ["refund", "lookup"]) == " (tools: lookup, refund)"
    assert (
        text_of(
            {"content": [{"type": "text", "text": "a"}, {"type": "image", "data": "…"}, {"type": "text", "text": "b"}]}
        )
        == "a\nb"
    )
