"""is-json, json-schema, json-path and tool-call."""

from __future__ import annotations

from reliability_cli.checks import ToolCall

from .helpers import passes, reason

SCHEMA = {
    "type": "object",
    "required": ["name", "age"],
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
}

# ------------------------------------------------------------------ is-json / json-schema
# promptfoo src/assertions/json.ts handleIsJson: JSON.parse(output) must succeed; with a
# value, Ajv validates it as a schema and an invalid schema fails the check.


def test_is_json():
    assert passes({"type": "is-json"}, '{"a": 1}')
    assert passes({"type": "is-json"}, " [1, 2] ")
    assert passes({"type": "is-json"}, "42")
    assert passes({"type": "is-json"}, {"a": 1})  # already-parsed output
    assert reason({"type": "is-json"}, "") == "output is not valid JSON: Expecting value at char 0"
    assert "not valid JSON" in reason({"type": "is-json"}, '{"a": 1} trailing')
    assert "not valid JSON" in reason({"type": "is-json"}, "NaN")  # JSON.parse rejects NaN
    assert "not valid JSON" in reason({"type": "is-json"}, "{'a': 1}")


def test_is_json_with_schema():
    spec = {"type": "is-json", "value": SCHEMA}
    assert passes(spec, '{"name": "Ann", "age": 3}')
    msg = reason(spec, '{"name": "Ann", "age": -1}')
    assert msg.startswith("JSON does not match the schema: at $.age:") and "minimum" in msg
    assert "'age' is a required property" in reason(spec, '{"name": "Ann"}')
    assert "not valid JSON" in reason(spec, "nope")
    assert passes({"type": "is-json", "value": ""}, "{}")  # empty value: no schema


def test_is_json_schema_as_json_text_and_formats():
    spec = {"type": "is-json", "value": '{"type": "string", "format": "email"}'}
    assert passes(spec, '"a@example.com"')
    assert not passes(spec, '"not an email"')


def test_not_is_json():
    assert passes({"type": "not-is-json"}, "plain text")
    assert reason({"type": "not-is-json"}, "{}") == "output is valid JSON"
    # with a schema: passes when the output is JSON that does not conform
    assert passes({"type": "not-is-json", "value": SCHEMA}, '{"name": 1}')


def test_invalid_schema_fails_even_negated():
    bad = {"type": "integer", "minimum": "zero"}
    assert "invalid JSON schema" in reason({"type": "is-json", "value": bad}, "1")
    assert "invalid JSON schema" in reason({"type": "not-is-json", "value": bad}, "1")


def test_json_schema():
    spec = {"type": "json-schema", "value": SCHEMA}
    assert passes(spec, {"name": "Ann", "age": 3})
    assert "at $.name" in reason(spec, {"name": 5, "age": 3})
    assert "not valid JSON" in reason(spec, "x")
    nested = {"type": "array", "items": {"type": "object", "required": ["id"]}}
    assert "at $[1]" in reason({"type": "json-schema", "value": nested}, '[{"id": 1}, {}]')


# ------------------------------------------------------------------ json-path


def test_json_path_value():
    out = '{"items": [{"name": "pen", "qty": 2}, {"name": "ink", "qty": 1}], "total": 3}'
    assert passes({"type": "json-path", "path": "$.items[0].name", "value": "pen"}, out)
    assert passes({"type": "json-path", "path": "$.items[1].qty", "value": 1}, out)
    assert passes({"type": "json-path", "path": "$.items[*].name", "value": "pen"}, out)  # first
    assert reason({"type": "json-path", "path": "$.items[0].name", "value": "ink"}, out) == (
        'at $.items[0].name: expected "ink", got "pen"'
    )


def test_json_path_deep_equal_values():
    out = {"user": {"tags": ["a", "b"], "meta": {"x": 1}}}
    assert passes({"type": "json-path", "path": "$.user.tags", "value": ["a", "b"]}, out)
    assert not passes({"type": "json-path", "path": "$.user.tags", "value": ["b", "a"]}, out)
    assert passes({"type": "json-path", "path": "$.user.meta", "value": {"x": 1}}, out)
    assert not passes({"type": "json-path", "path": "$.user.meta", "value": {"x": True}}, out)


def test_json_path_string_matches_number_by_string_form():
    # eval-set values are often text (CSV): "3" matches 3, but not true or "3.0"
    assert passes({"type": "json-path", "path": "$.total", "value": "3"}, '{"total": 3}')
    assert not passes({"type": "json-path", "path": "$.total", "value": "3.0"}, '{"total": 3}')
    assert not passes({"type": "json-path", "path": "$.ok", "value": 1}, '{"ok": true}')


def test_json_path_without_value_passes_on_any_match():
    assert passes({"type": "json-path", "path": "$.a"}, '{"a": null}')
    assert passes({"type": "json-path", "path": "$..id"}, '{"x": [{"id": 7}]}')
    assert reason({"type": "json-path", "path": "$.b"}, '{"a": 1}') == 'path $.b matched nothing in {"a":1}'
    assert passes({"type": "not-json-path", "path": "$.error"}, '{"a": 1}')


def test_json_path_filter_and_normalize():
    out = {"items": [{"name": "pen", "qty": 2}, {"name": "Ink ", "qty": 0}]}
    assert passes(
        {"type": "json-path", "path": "$.items[?(@.qty < 1)].name", "value": "ink", "normalize": ["strip", "lower"]},
        out,
    )


def test_json_path_explicit_null_value():
    assert passes({"type": "json-path", "path": "$.a", "value": None}, '{"a": null}')
    assert not passes({"type": "json-path", "path": "$.a", "value": None}, '{"a": 0}')


def test_json_path_needs_json_output():
    assert "not valid JSON" in reason({"type": "json-path", "path": "$.a", "value": 1}, "a: 1")


# ------------------------------------------------------------------ tool-call


def _calls(*calls: tuple[str, object]) -> dict[str, object]:
    return {"tool_calls": tuple(ToolCall(n, a) for n, a in calls)}


def test_tool_call_by_name():
    spec = {"type": "tool-call", "name": "lookup"}
    assert passes(spec, "", **_calls(("lookup", {"id": 1})))
    assert reason(spec, "") == 'expected a call to "lookup", the model made no tool call'
    assert reason(spec, "", **_calls(("search", {}), ("send", {}))) == (
        'expected a call to "lookup", got calls to "search", "send"'
    )


def test_tool_call_arguments_subset():
    spec = {"type": "tool-call", "name": "book", "arguments": {"city": "Paris", "when": {"day": "mon"}}}
    args = {"city": "Paris", "when": {"day": "mon", "hour": 9}, "seats": 2}
    assert passes(spec, "", **_calls(("book", args)))
    assert reason(spec, "", **_calls(("book", {**args, "when": {"day": "tue"}}))) == (
        'call to "book": arguments.when.day expected "mon", got "tue"'
    )
    assert "arguments.city is missing" in reason(spec, "", **_calls(("book", {"when": {}})))


def test_tool_call_lists_compare_in_full():
    spec = {"type": "tool-call", "name": "tag", "arguments": {"tags": ["a", "b"]}}
    assert passes(spec, "", **_calls(("tag", {"tags": ["a", "b"]})))
    assert not passes(spec, "", **_calls(("tag", {"tags": ["a", "b", "c"]})))
    assert not passes(spec, "", **_calls(("tag", {"tags": ["b", "a"]})))
    items = {"type": "tool-call", "name": "t", "arguments": {"rows": [{"id": 1}]}}
    assert not passes(items, "", **_calls(("t", {"rows": [{"id": 1, "x": 2}]})))


def test_tool_call_string_arguments_and_any_matching_call():
    spec = {"type": "tool-call", "name": "get", "arguments": {"id": "42"}}
    assert passes(spec, "", **_calls(("get", '{"id": 42}')))  # raw JSON text, number id
    assert passes(spec, "", **_calls(("get", {"id": 1}), ("get", {"id": 42})))
    assert "and 1 other calls" in reason(spec, "", **_calls(("get", {"id": 1}), ("get", {"id": 2})))
    assert "expected a mapping" in reason(spec, "", **_calls(("get", "not json")))


def test_tool_call_from_structured_output():
    out = {
        "tool_calls": [
            {"name": "lookup", "arguments": {"id": 1}},
            {"function": {"name": "send", "arguments": '{"to": "x"}'}},
        ]
    }
    assert passes({"type": "tool-call", "name": "lookup", "arguments": {"id": 1}}, out)
    assert passes({"type": "tool-call", "name": "send", "arguments": {"to": "x"}}, out)


def test_not_tool_call():
    assert passes({"type": "not-tool-call", "name": "delete"}, "", **_calls(("read", {})))
    assert reason({"type": "not-tool-call", "name": "delete"}, "", **_calls(("delete", {}))) == (
        'the model called "delete"'
    )
