"""Text checks: equals, contains, icontains, contains-any, contains-all, not-contains, regex,
starts-with, one-of.

Each follows the promptfoo assertion of the same name (``src/assertions/equals.ts``,
``contains.ts``, ``regex.ts``, ``startsWith.ts``), on the same output string: the output
when it is a string, else the raw response text. ``normalize`` steps apply to both sides
before comparing. A scalar ``value`` is compared by its JavaScript string form, so ``42``
matches ``"42"`` and ``true`` matches ``"true"``. ``one-of`` is relcheck's own: promptfoo
has no such assertion.

Regular expressions are JavaScript's, in Python ``re``'s syntax after two translations:
``(?<name>…)`` named groups, and ``$``, which in JavaScript matches only at the very end
(Python's also matches before a final newline). Character classes such as ``\\w`` and ``\\d``
follow Python and also match non-ASCII letters and digits. They are matched by the
``regex`` module (``re``-compatible) with a timeout of ``_regex.REGEX_TIMEOUT_S`` per output: a
pattern that backtracks catastrophically fails the check (``not-regex`` too) instead of
hanging the run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import _regex
from ._common import (
    CheckValueError,
    deep_equal,
    excerpt,
    held,
    held_lazily,
    js_string,
    output_json,
    parse_comma_separated,
    steps_of,
    subject,
)
from .base import CheckInput, Verdict, normalize


def equals(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The output equals ``value``; an object, list or null value is deep-compared as JSON."""
    value = spec.get("value")
    # promptfoo equals.ts: `typeof value === 'object'` (objects, arrays and null) compares
    # with util.isDeepStrictEqual against JSON.parse(output); otherwise String(value).
    if value is None or isinstance(value, (Mapping, list, tuple)):
        try:
            got = output_json(inp)
        except ValueError as exc:
            return Verdict.fail(
                f"expected JSON equal to {excerpt(value)}, got output that is "
                f"not valid JSON ({exc}): {excerpt(subject(inp))}"
            )
        if deep_equal(value, got):
            return held(f"output equals {excerpt(value)}")
        return Verdict.fail(f"expected {excerpt(value)}, got {excerpt(got)}")
    steps = steps_of(spec)
    want = normalize(js_string(value), steps)
    got = normalize(subject(inp), steps)
    if got == want:
        return held_lazily(lambda: f"output equals {excerpt(want)}")
    return Verdict.fail(f"expected {excerpt(want)}, got {excerpt(got)}")


def _needle(spec: Mapping[str, Any], kind: str) -> str:
    value = spec.get("value")
    # promptfoo contains.ts isContainsValue: a non-empty string or a number.
    ok = (isinstance(value, str) and value != "") or (
        isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    )
    if not ok:
        raise CheckValueError(f"{kind} needs a non-empty string or number value, got {excerpt(value)}")
    return js_string(value)


def contains(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The output contains ``value``."""
    steps = steps_of(spec)
    needle = normalize(_needle(spec, "contains"), steps)
    got = normalize(subject(inp), steps)
    if needle in got:
        return held_lazily(lambda: f"output contains {excerpt(needle)}")
    return Verdict.fail(f"output does not contain {excerpt(needle)}: got {excerpt(got)}")


def icontains(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The output contains ``value``, ignoring case."""
    steps = steps_of(spec)
    needle = normalize(_needle(spec, "icontains"), steps)
    got = normalize(subject(inp), steps)
    if needle.lower() in got.lower():
        return held_lazily(lambda: f"output contains {excerpt(needle)} (ignoring case)")
    return Verdict.fail(f"output does not contain {excerpt(needle)} (ignoring case): got {excerpt(got)}")


def not_contains(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The output does not contain ``value`` (promptfoo's ``not-contains``)."""
    verdict = contains(spec, inp)
    if verdict.passed:
        return Verdict.fail(verdict.reason or "output contains the value")
    needle = normalize(_needle(spec, "contains"), steps_of(spec))
    return held_lazily(lambda: f"output does not contain {excerpt(needle)}")


def values_of(spec: Mapping[str, Any], kind: str) -> list[str]:
    """A list ``value``, or a comma-separated string split as promptfoo does."""
    value = spec.get("value")
    # promptfoo contains.ts handleContainsAny/All: invariant(value) rejects "", 0, null;
    # a string goes through parseCommaSeparatedValues; then it must be an array.
    if isinstance(value, str) and value:
        items: list[Any] = parse_comma_separated(value)
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise CheckValueError(f"{kind} needs a list value or a comma-separated string, got {excerpt(value)}")
    return [js_string(v) for v in items]


def contains_any(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The output contains at least one of the values (an empty list never passes)."""
    steps = steps_of(spec)
    needles = [normalize(v, steps) for v in values_of(spec, "contains-any")]
    got = normalize(subject(inp), steps)
    found = next((needle for needle in needles if needle in got), None)
    if found is not None:
        return held_lazily(lambda: f"output contains {excerpt(found)}")
    return Verdict.fail(f"output contains none of {excerpt(needles)}: got {excerpt(got)}")


def contains_all(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The output contains every value (an empty list always passes)."""
    steps = steps_of(spec)
    needles = [normalize(v, steps) for v in values_of(spec, "contains-all")]
    got = normalize(subject(inp), steps)
    missing = [n for n in needles if n not in got]
    if not missing:
        return held_lazily(lambda: f"output contains all of {excerpt(needles)}")
    return Verdict.fail(
        f"output does not contain {excerpt(missing)} (missing {len(missing)} of {len(needles)}): got {excerpt(got)}"
    )


def one_of(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The output equals one of the values, after ``normalize`` (relcheck's own check)."""
    steps = steps_of(spec)
    options = [normalize(v, steps) for v in values_of(spec, "one-of")]
    got = normalize(subject(inp), steps)
    if got in options:
        return held_lazily(lambda: f"output is {excerpt(got)}, one of {excerpt(options)}")
    return Verdict.fail(f"expected one of {excerpt(options)}, got {excerpt(got)}")


def starts_with(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The output starts with ``value``."""
    steps = steps_of(spec)
    prefix = normalize(_needle(spec, "starts-with"), steps)
    got = normalize(subject(inp), steps)
    if got.startswith(prefix):
        return held_lazily(lambda: f"output starts with {excerpt(prefix)}")
    return Verdict.fail(f"output does not start with {excerpt(prefix)}: got {excerpt(got)}")


def regex(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The output matches the regular expression ``value`` anywhere (``RegExp.test``)."""
    pattern = spec.get("value")
    if not isinstance(pattern, str) or not pattern:
        raise CheckValueError(f"regex needs a non-empty string value, got {excerpt(pattern)}")
    compiled = compile_js_regex(pattern)  # re.error: promptfoo fails even not-regex
    got = normalize(subject(inp), steps_of(spec))
    try:
        found = _regex.search(compiled, got)
    except _regex.RegexTimeout as exc:  # catastrophic backtracking: unusable on this output
        raise CheckValueError(
            f"regex {excerpt(pattern)} did not finish within {exc.seconds:g} s on an "
            f"output of {exc.length:,} characters (catastrophic backtracking?)"
        ) from None
    if found:
        return held_lazily(lambda: f"output matches regex {excerpt(pattern)}")
    return Verdict.fail(f"output does not match regex {excerpt(pattern)}: got {excerpt(got)}")


def compile_js_regex(pattern: str) -> Any:
    """Compile a JavaScript regex; raise CheckValueError if invalid.

    The syntax accepted (and every error message) is stdlib ``re``'s; the compiled pattern is
    the ``regex`` module's, whose matching is ``re``-compatible and, unlike ``re``, takes a
    timeout."""
    try:
        return _compile(pattern)
    except re.error as exc:
        raise CheckValueError(f"invalid regex {excerpt(pattern)}: {exc}") from None


def _compile(pattern: str) -> Any:
    return _regex.compile_python(_translate(pattern))


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "$":
            ch = r"\Z"
        elif pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
            ch, i = "(?P<", i + 2
        out.append(ch)
        i += 1
    return "".join(out)
