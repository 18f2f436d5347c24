"""Text checks behave as promptfoo's assertions of the same name on the same output."""

from __future__ import annotations

import pytest

from reliability_cli.checks._common import js_string, parse_comma_separated

from .helpers import check, passes, reason

# ------------------------------------------------------------------ equals
# promptfoo src/assertions/equals.ts: object/array/null values deep-compare with
# JSON.parse(output) (util.isDeepStrictEqual); everything else compares String(value).


def test_equals_string():
    assert passes({"type": "equals", "value": "billing"}, "billing")
    assert reason({"type": "equals", "value": "billing"}, "tech") == 'expected "billing", got "tech"'


def test_equals_is_exact_without_normalize():
    assert not passes({"type": "equals", "value": "yes"}, "yes\n")
    assert reason({"type": "equals", "value": "yes"}, "Yes ") == 'expected "yes", got "Yes "'
    assert passes({"type": "equals", "value": "yes", "normalize": ["strip", "lower"]}, " Yes\n")


def test_equals_normalize_collapse_space():
    spec = {"type": "equals", "value": "a b c", "normalize": ["collapse-space"]}
    assert passes(spec, "a   b\n\tc ")


def test_equals_numeric_and_boolean_values_compare_as_strings():
    assert passes({"type": "equals", "value": 42}, "42")
    assert passes({"type": "equals", "value": 2.5}, "2.5")
    assert passes({"type": "equals", "value": 3.0}, "3")  # JS String(3.0) is "3"
    assert passes({"type": "equals", "value": True}, "true")
    assert not passes({"type": "equals", "value": 42}, "42.0")


def test_equals_empty_output():
    assert reason({"type": "equals", "value": "x"}, "") == 'expected "x", got ""'
    assert passes({"type": "equals", "value": ""}, "")


def test_equals_object_value_deep_compares_json():
    spec = {"type": "equals", "value": {"a": 1, "b": [1, 2]}}
    assert passes(spec, '{"b": [1, 2], "a": 1}')  # key order does not matter
    assert passes(spec, {"a": 1, "b": [1, 2]})  # already-parsed output
    assert not passes(spec, '{"a": 1, "b": [2, 1]}')
    assert not passes(spec, '{"a": 1, "b": [1, 2], "c": 0}')
    assert "not valid JSON" in reason(spec, "a=1")


def test_equals_deep_compare_is_strict_about_types():
    assert not passes({"type": "equals", "value": {"a": True}}, '{"a": 1}')
    assert not passes({"type": "equals", "value": {"a": "1"}}, '{"a": 1}')
    assert passes({"type": "equals", "value": {"a": 1}}, '{"a": 1.0}')  # one Number type in JS
    assert passes({"type": "equals", "value": [1, "x"]}, '[1, "x"]')
    assert passes({"type": "equals", "value": None}, "null")


def test_not_equals():
    assert passes({"type": "not-equals", "value": "billing"}, "tech")
    assert reason({"type": "not-equals", "value": "billing"}, "billing") == 'output equals "billing"'
    # promptfoo: an object value against non-JSON output is "not equal", so not-equals passes
    assert passes({"type": "not-equals", "value": {"a": 1}}, "not json")


# ------------------------------------------------------------------ contains family
# promptfoo src/assertions/contains.ts: value must be a non-empty string or a number;
# contains-any/all split a string value with parseCommaSeparatedValues.


def test_contains():
    assert passes({"type": "contains", "value": "Alice"}, "Dear Alice, hello")
    assert reason({"type": "contains", "value": "Alice"}, "Dear Bob") == (
        'output does not contain "Alice": got "Dear Bob"'
    )
    assert not passes({"type": "contains", "value": "alice"}, "Dear Alice")
    assert passes({"type": "contains", "value": 7}, "room 17")
    assert not passes({"type": "contains", "value": "x"}, "")


def test_contains_structured_output_uses_raw_text():
    assert passes({"type": "contains", "value": "ACC-1"}, {"account": "ACC-1"}, text='{"account": "ACC-1"}')


def test_contains_empty_value_is_an_error_even_negated():
    assert "non-empty" in reason({"type": "contains", "value": ""}, "anything")
    assert not passes({"type": "not-contains", "value": ""}, "anything")
    assert not passes({"type": "contains", "value": None}, "None")


def test_icontains():
    assert passes({"type": "icontains", "value": "ALICE"}, "dear alice")
    assert "ignoring case" in reason({"type": "icontains", "value": "bob"}, "dear alice")
    assert passes({"type": "not-icontains", "value": "bob"}, "dear alice")


def test_not_contains():
    assert passes({"type": "not-contains", "value": "sorry"}, "Here is your answer")
    assert reason({"type": "not-contains", "value": "sorry"}, "I am sorry") == 'output contains "sorry"'
    assert passes({"type": "not-contains", "value": "x"}, "")


def test_contains_normalize_applies_to_both_sides():
    spec = {"type": "contains", "value": "HELLO  World", "normalize": ["lower", "collapse-space"]}
    assert passes(spec, "well, hello\n world!")


def test_contains_any_list_and_csv():
    assert passes({"type": "contains-any", "value": ["cat", "dog"]}, "a dog")
    assert passes({"type": "contains-any", "value": "cat, dog"}, "a dog")
    assert "contains none of" in reason({"type": "contains-any", "value": "cat,dog"}, "a bird")
    assert not passes({"type": "contains-any", "value": []}, "anything")  # [].some() is false


def test_contains_any_csv_quoting():
    # a quoted field keeps its comma: the needle is "Paris, France"
    spec = {"type": "contains-any", "value": '"Paris, France", Berlin'}
    assert passes(spec, "I live in Paris, France")
    assert not passes(spec, "I live in Paris")
    assert not passes(spec, "France")
    assert "unterminated" in reason({"type": "contains-any", "value": '"open, x'}, "open")


def test_parse_comma_separated_matches_promptfoo():
    assert parse_comma_separated("a, b ,c") == ["a", "b", "c"]
    assert parse_comma_separated("a,,b, ,") == ["a", "b"]
    assert parse_comma_separated('"x, y", z') == ["x, y", "z"]
    assert parse_comma_separated(r'"say \"hi\"", "it""s"') == ['say "hi"', 'it"s']
    assert parse_comma_separated("  ") == []


def test_contains_all():
    assert passes({"type": "contains-all", "value": ["a", "b"]}, "b then a")
    msg = reason({"type": "contains-all", "value": "apple, pear, plum"}, "apple pie")
    assert '["pear","plum"]' in msg and "missing 2 of 3" in msg
    assert passes({"type": "contains-all", "value": []}, "")  # [].every() is true
    assert passes({"type": "not-contains-all", "value": ["a", "z"]}, "abc")
    assert not passes({"type": "not-contains-all", "value": ["a", "b"]}, "abc")


def test_contains_any_numbers_in_list():
    assert passes({"type": "contains-any", "value": [1, 2]}, "top 2")
    assert passes({"type": "not-contains-any", "value": ["x", "y"]}, "abc")


# ------------------------------------------------------------------ one-of, starts-with


def test_one_of():
    spec = {"type": "one-of", "value": ["billing", "tech", "other"]}
    assert passes(spec, "tech")
    assert not passes(spec, "technical")
    assert reason(spec, "sales") == 'expected one of ["billing","tech","other"], got "sales"'
    assert passes({**spec, "normalize": ["strip", "lower"]}, " Tech\n")
    assert not passes(spec, " tech")
    assert passes({"type": "one-of", "value": "yes, no"}, "no")
    assert passes({"type": "not-one-of", "value": ["a", "b"]}, "c")


def test_starts_with():
    assert passes({"type": "starts-with", "value": "Dear"}, "Dear Alice")
    assert reason({"type": "starts-with", "value": "Dear"}, "Hi Alice") == (
        'output does not start with "Dear": got "Hi Alice"'
    )
    assert not passes({"type": "starts-with", "value": "Dear"}, "  Dear Alice")
    assert passes({"type": "starts-with", "value": "Dear", "normalize": ["strip"]}, "  Dear Alice")
    assert passes({"type": "starts-with", "value": 4}, "42")
    assert passes({"type": "not-starts-with", "value": "Sorry"}, "Sure")


# ------------------------------------------------------------------ regex
# promptfoo src/assertions/regex.ts: new RegExp(value).test(output); an invalid pattern
# fails the check, negated or not.


def test_regex():
    assert passes({"type": "regex", "value": r"ACC-\d+"}, "account ACC-123 found")
    assert reason({"type": "regex", "value": r"^\d+$"}, "12a") == ('output does not match regex "^\\\\d+$": got "12a"')
    assert passes({"type": "not-regex", "value": r"\d"}, "none")
    assert reason({"type": "not-regex", "value": r"\d"}, "a1") == 'output matches regex "\\\\d"'


def test_regex_dollar_is_end_of_input_as_in_javascript():
    assert not passes({"type": "regex", "value": "^yes$"}, "yes\n")
    assert passes({"type": "regex", "value": "^yes$"}, "yes")
    assert passes({"type": "regex", "value": "[$]5"}, "cost $5")  # literal $ in a class
    assert passes({"type": "regex", "value": r"\$5"}, "cost $5")


def test_regex_javascript_named_groups():
    assert passes({"type": "regex", "value": r"(?<year>\d{4})-(?<m>\d\d)"}, "on 2024-05")
    assert passes({"type": "regex", "value": r"(?<=\$)\d+"}, "$12")  # lookbehind untouched


def test_regex_invalid_pattern_fails_even_negated():
    assert "invalid regex" in reason({"type": "regex", "value": "([a-z"}, "abc")
    assert "invalid regex" in reason({"type": "not-regex", "value": "([a-z"}, "abc")


def test_regex_normalize():
    assert passes(
        {"type": "regex", "value": "^hello world$", "normalize": ["lower", "collapse-space"]}, "Hello\n  World"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (-3, "-3"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (1e16, "10000000000000000"),
        (0.1, "0.1"),
        (0.000001, "0.000001"),
        (float("nan"), "NaN"),
        (None, "null"),
        (False, "false"),
        ([1, None, "a"], "1,,a"),
    ],
)
def test_js_string(value, text):
    assert js_string(value) == text


def test_reason_excerpts_are_short():
    long = "x" * 500
    msg = reason({"type": "equals", "value": "y" * 500}, long)
    assert len(msg) < 200
    assert msg.count("…") == 2


def test_failing_reason_is_one_line():
    assert "\n" not in check({"type": "equals", "value": "a\nb"}, "a\nc").reason
