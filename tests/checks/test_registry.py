"""The registry: types and keys, validate_spec messages, dispatch, not- prefix, exceptions."""

from __future__ import annotations

import pytest

import reliability_cli.checks as checks
from reliability_cli.checks import ALL_KEYS, REGISTRY, get, validate_spec
from reliability_cli.checks.registry import resolve

from .helpers import check, passes, reason

SPEC_TYPES = [
    "equals",
    "contains",
    "icontains",
    "contains-any",
    "contains-all",
    "not-contains",
    "regex",
    "starts-with",
    "one-of",
    "is-json",
    "json-schema",
    "json-path",
    "tool-call",
    "similar",
    "latency",
    "python",
    "llm-rubric",
]


def test_public_api():
    assert set(checks.__all__) == {
        "REGISTRY",
        "ALL_KEYS",
        "get",
        "validate_spec",
        "run_check",
        "CheckInput",
        "Verdict",
        "ToolCall",
        "normalize",
        "CheckCodeError",
        "parse_json_output",
    }


def test_parse_json_output_is_a_fail_reason_never_an_exception():
    # what ``parse: json`` makes of a step's output, in eval and in traces alike
    assert checks.parse_json_output('{"a": [1, 2]}') == ({"a": [1, 2]}, None)
    value, why = checks.parse_json_output('{"a": ')
    assert value is None and why is not None and why.startswith("output is not valid JSON: Expecting value at char")
    value, why = checks.parse_json_output("[" * 100_000 + "]" * 100_000)
    assert value is None and why == "output is not valid JSON: nested too deeply"
    value, why = checks.parse_json_output("9" * 5000)
    assert value is None and why is not None and "4300" in why


def test_every_spec_type_is_registered():
    assert set(SPEC_TYPES) <= set(REGISTRY)
    assert get("equals").name == "equals"
    with pytest.raises(KeyError):
        get("equal")


def test_flags():
    assert REGISTRY["python"].code and REGISTRY["python"].deterministic
    assert not REGISTRY["llm-rubric"].deterministic and not REGISTRY["llm-rubric"].code
    assert all(not e.code for n, e in REGISTRY.items() if n != "python")


def test_all_keys():
    assert sorted(ALL_KEYS) == [
        "arguments",
        "callable",
        "endpoint",
        "max_ms",
        "name",
        "normalize",
        "path",
        "rubric",
        "threshold",
        "type",
        "value",
    ]


def test_resolve_not_prefix():
    assert resolve("not-equals") == (REGISTRY["equals"], True)
    assert resolve("not-contains") == (REGISTRY["not-contains"], False)
    assert resolve("not-not-contains") is None
    assert resolve("not-llm-rubric") is None
    assert resolve("nope") is None


# ------------------------------------------------------------------ validate_spec


def test_valid_specs_have_no_problems():
    for spec in [
        {"type": "equals", "value": "x", "normalize": ["strip", "lower", "collapse-space"]},
        {"type": "not-equals", "value": {"a": 1}},
        {"type": "one-of", "value": "{{ expect.options }}"},
        {"type": "regex", "value": "{{ expect.pattern }}"},
        {"type": "regex", "value": r"^(?<word>\w+)$"},
        {"type": "contains-any", "value": "a, b"},
        {"type": "is-json"},
        {"type": "is-json", "value": {"type": "object"}},
        {"type": "json-schema", "value": {"type": "array"}},
        {"type": "json-path", "path": "$.items[0].name", "value": "{{ expect.name }}"},
        {"type": "tool-call", "name": "lookup", "arguments": {"id": "{{ vars.id }}"}},
        {"type": "similar", "value": "x", "threshold": 0.5},
        {"type": "latency", "max_ms": 1500},
        {"type": "python", "callable": "pkg.mod:fn", "value": 3},
        {"type": "llm-rubric", "endpoint": "judge", "rubric": "is polite"},
    ]:
        assert validate_spec(spec) == [], spec


def test_unknown_type_suggests():
    assert validate_spec({"type": "equal", "value": "x"}) == ["unknown check type 'equal' — did you mean 'equals'?"]
    assert "did you mean 'not-regex'" in validate_spec({"type": "not-regx", "value": "x"})[0]
    assert "did you mean 'contains-any'" in validate_spec({"type": "contains_any", "value": "x"})[0]
    msg = validate_spec({"type": "zzzzzz"})[0]
    assert msg.startswith("unknown check type 'zzzzzz' (known: equals, contains")
    assert "cannot be negated" in validate_spec({"type": "not-llm-rubric", "endpoint": "j", "rubric": "r"})[0]


def test_key_the_type_does_not_take():
    assert validate_spec({"type": "equals", "value": "x", "threshold": 0.5}) == [
        "check type 'equals' takes no key 'threshold' (it takes: value, normalize)"
    ]
    assert validate_spec({"type": "similar", "value": "x", "treshold": 0.5}) == [
        "check type 'similar' takes no key 'treshold' (it takes: value, threshold, normalize)"
        " — did you mean 'threshold'?"
    ]
    assert "takes no key 'normalize'" in validate_spec({"type": "latency", "max_ms": 1, "normalize": ["strip"]})[0]


def test_missing_required_key():
    assert validate_spec({"type": "equals"}) == ["check type 'equals' is missing required key 'value'"]
    assert validate_spec({"type": "llm-rubric"}) == [
        "check type 'llm-rubric' is missing required key 'endpoint'",
        "check type 'llm-rubric' is missing required key 'rubric'",
    ]
    assert validate_spec({"type": "not-json-path"}) == ["check type 'not-json-path' is missing required key 'path'"]


def test_missing_or_bad_type():
    assert "needs a 'type'" in validate_spec({"value": "x"})[0]
    assert "must be a string" in validate_spec({"type": 3})[0]
    assert "must be a mapping" in validate_spec(["equals"])[0]  # type: ignore[arg-type]


def test_invalid_normalize():
    assert validate_spec({"type": "equals", "value": "x", "normalize": ["strip", "lowercase"]}) == [
        "unknown normalize step 'lowercase' — did you mean 'lower'?"
    ]
    assert (
        "use: strip, lower, collapse-space" in validate_spec({"type": "equals", "value": "x", "normalize": ["zz"]})[0]
    )
    assert validate_spec({"type": "equals", "value": "x", "normalize": "strip"}) == []
    assert "must be a list" in validate_spec({"type": "equals", "value": "x", "normalize": 3})[0]


def test_bad_regex_names_the_error():
    problems = validate_spec({"type": "regex", "value": "([a-z"})
    assert problems == ['invalid regex "([a-z": unterminated character set at position 1']
    assert "missing ), unterminated subpattern" in validate_spec({"type": "not-regex", "value": "(a"})[0]
    assert validate_spec({"type": "regex", "value": "{{ expect.re }}("}) == []  # judged once rendered
    assert "non-empty string" in validate_spec({"type": "regex", "value": 5})[0]


def test_literal_value_problems():
    assert "non-empty string or number" in validate_spec({"type": "contains", "value": ""})[0]
    assert "non-empty string or number" in validate_spec({"type": "contains", "value": [1]})[0]
    assert "list value" in validate_spec({"type": "one-of", "value": 3})[0]
    assert "invalid JSON schema" in validate_spec({"type": "json-schema", "value": {"type": 7}})[0]
    assert "invalid JSONPath" in validate_spec({"type": "json-path", "path": "$.[[["})[0]
    assert "between 0 and 1" in validate_spec({"type": "similar", "value": "x", "threshold": 2})[0]
    assert "max_ms" in validate_spec({"type": "latency", "max_ms": -1})[0]
    assert "package.module:function" in validate_spec({"type": "python", "callable": "mod.fn"})[0]
    assert "must be a mapping" in validate_spec({"type": "tool-call", "name": "x", "arguments": [1]})[0]
    assert "non-empty string" in validate_spec({"type": "llm-rubric", "endpoint": "j", "rubric": ""})[0]


# ------------------------------------------------------------------ run_check


def test_unknown_type_at_run_time_fails():
    assert "did you mean 'equals'" in reason({"type": "equal", "value": "x"}, "x")


def test_exception_inside_a_check_becomes_a_fail(monkeypatch):
    from reliability_cli.checks import registry

    def explode(spec, inp):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(
        registry.REGISTRY,
        "equals",
        registry.REGISTRY["equals"].__class__("equals", explode, frozenset({"value"}), frozenset({"value"})),
    )
    assert reason({"type": "equals", "value": "x"}, "x") == ("check equals raised ZeroDivisionError: division by zero")
    # an exception is not inverted by not-
    assert reason({"type": "not-equals", "value": "x"}, "y") == (
        "check not-equals raised ZeroDivisionError: division by zero"
    )


def test_passing_verdicts_carry_no_reason():
    assert check({"type": "equals", "value": "x"}, "x").reason is None
    assert check({"type": "not-equals", "value": "x"}, "y").reason is None


@pytest.mark.parametrize(
    ("spec", "output"),
    [
        ({"type": "equals", "value": "a"}, "a"),
        ({"type": "contains", "value": "a"}, "cat"),
        ({"type": "icontains", "value": "A"}, "cat"),
        ({"type": "contains-any", "value": ["x", "a"]}, "cat"),
        ({"type": "contains-all", "value": ["c", "a"]}, "cat"),
        ({"type": "regex", "value": "^c"}, "cat"),
        ({"type": "starts-with", "value": "ca"}, "cat"),
        ({"type": "one-of", "value": ["cat", "dog"]}, "cat"),
        ({"type": "is-json"}, "[]"),
        ({"type": "json-schema", "value": {"type": "array"}}, "[]"),
        ({"type": "json-path", "path": "$[0]", "value": 1}, "[1]"),
        ({"type": "similar", "value": "cat"}, "cat"),
    ],
)
def test_not_prefix_inverts_every_deterministic_type(spec, output):
    assert passes(spec, output)
    negated = {**spec, "type": "not-" + spec["type"]}
    verdict = check(negated, output)
    assert not verdict.passed and verdict.reason
