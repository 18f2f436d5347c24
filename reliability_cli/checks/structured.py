"""Structured checks: is-json, json-schema, json-path, tool-call.

``is-json`` follows promptfoo ``src/assertions/json.ts``: the output must parse as JSON
(``JSON.parse``: no ``NaN``, no trailing text), and an optional ``value`` is a JSON Schema it
must match (draft 7 unless the schema names another ``$schema``, formats checked, as Ajv
with ajv-formats does). ``json-schema`` is ``is-json`` with the schema required. An output
that is already structured (``parse: json``, or a mapping from a mock or python endpoint)
is valid JSON as it is.

``json-path`` evaluates a JSONPath (``$.items[0].name``; filters as in ``jsonpath-ng``'s
extended parser) on the JSON output; without ``value`` it passes when the path matches
anything, with ``value`` the first match must equal it (deep equality; a string matches a
number by its string form, for eval sets whose values are all text).

``tool-call`` passes when the model called tool ``name`` and, when ``arguments`` is given,
that call's arguments include them: every key given must match recursively (mappings are
compared as subsets, lists element by element in full). Calls come from the endpoint's
``tool_calls``; when there are none and the output is a mapping with a ``tool_calls`` list of
``{name, arguments}`` (or OpenAI's ``{function: {name, arguments}}``), those are used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cache, lru_cache
from typing import Any

from ..records import ToolCall, parse_arguments
from . import _regex
from ._common import (
    CheckValueError,
    NotJson,
    excerpt,
    held,
    loose_equal,
    loose_scalar_equal,
    output_json,
    steps_of,
)
from .base import CheckInput, Verdict


def _parsed(inp: CheckInput) -> tuple[bool, Any, str]:
    try:
        return True, output_json(inp), ""
    except NotJson as exc:
        return False, None, f"output is not valid JSON: {exc}"


def is_json(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The output is valid JSON, matching the schema ``value`` when one is given."""
    ok, data, why = _parsed(inp)
    if not ok:
        return Verdict.fail(why)
    schema = spec.get("value")
    if schema is None or schema == "":
        return held("output is valid JSON")
    return _against_schema(schema, data)


def json_schema(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The output is valid JSON matching the JSON Schema ``value``."""
    ok, data, why = _parsed(inp)
    if not ok:
        return Verdict.fail(why)
    schema = spec.get("value")
    if schema is None or schema == "":
        raise CheckValueError("json-schema needs a JSON Schema as its value")
    return _against_schema(schema, data)


def _against_schema(schema: Any, data: Any) -> Verdict:
    validator = schema_validator(schema)
    try:
        with _regex.budget():
            error = _first_error(validator, data)
    except _regex.RegexTimeout as exc:
        raise CheckValueError(
            f"schema pattern {excerpt(exc.pattern)} did not finish within {exc.seconds:g} s on "
            f"a string of {exc.length:,} characters (catastrophic backtracking?)"
        ) from None
    except re.error as exc:  # a pattern the schema's format check let through
        raise CheckValueError(f"invalid JSON schema: invalid pattern: {exc}") from None
    if error is None:
        return held("output is JSON matching the schema")
    return Verdict.fail(f"JSON does not match the schema: {error}")


def _first_error(validator: Any, data: Any) -> str | None:
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(data))
    if error is None:
        return None
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"at {where}: {error.message}"


def schema_validator(schema: Any) -> Any:
    """A jsonschema validator for a schema given as a mapping, a boolean or JSON text."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise CheckValueError(f"invalid JSON schema: the value is not JSON ({exc})") from None
    if not isinstance(schema, (Mapping, bool)):
        raise CheckValueError(f"invalid JSON schema: expected a mapping, got {excerpt(schema)}")
    return _validator(json.dumps(schema, sort_keys=True, default=str))


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    import jsonschema
    from jsonschema.exceptions import SchemaError

    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise CheckValueError(f"invalid JSON schema: {exc.message}") from None
    return _bounded(cls)(schema, format_checker=cls.FORMAT_CHECKER)


@cache
def _bounded(cls: Any) -> Any:
    """``cls`` with every pattern matched by ``_regex`` (a time bound) instead of stdlib ``re``.

    ``pattern`` and ``patternProperties`` are reimplemented on ``_regex.search`` (through
    ``validators.extend``). ``additionalProperties`` and ``unevaluatedProperties`` find the
    keys ``patternProperties`` matches in jsonschema's helper modules, which call
    ``re.search`` by name: their ``re`` becomes ``_BoundedRe``."""
    from jsonschema import _legacy_keywords, _utils, validators

    for module in (_utils, _legacy_keywords):
        if getattr(module, "re", None) is re:
            module.re = _BOUNDED_RE  # type: ignore[attr-defined]
    mine = {"pattern": _pattern, "patternProperties": _pattern_properties}
    return validators.extend(cls, {k: fn for k, fn in mine.items() if k in cls.VALIDATORS})


class _BoundedRe:
    """The ``re`` module, with ``search`` matched by ``_regex`` within the check's time."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    @staticmethod
    def search(pattern: Any, string: Any, flags: int = 0) -> Any:
        if flags or not isinstance(pattern, str) or not isinstance(string, str):
            return re.search(pattern, string, flags)
        return True if _matches(pattern, string) else None


_BOUNDED_RE = _BoundedRe()


def _matches(pattern: str, text: str) -> bool:
    return _regex.search(_regex.compile_python(pattern), text)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _matches(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _matches(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


# ---------------------------------------------------------------- json-path


def compile_path(path: Any) -> Any:
    """Parse a JSONPath expression; raise CheckValueError naming the parser's complaint."""
    if not isinstance(path, str) or not path.strip():
        raise CheckValueError(f"json-path needs a JSONPath string as 'path', got {excerpt(path)}")
    try:
        return _compile_path(path)
    except Exception as exc:  # jsonpath-ng raises bare Exception subclasses from its lexer
        raise CheckValueError(f"invalid JSONPath {excerpt(path)}: {exc}") from None


@lru_cache(maxsize=256)
def _compile_path(path: str) -> Any:
    from jsonpath_ng.ext.parser import parse

    return _bound_regexes(parse(path))


def _bound_regexes(tree: Any) -> Any:
    """Make the tree's ``=~`` filters and ``sub()`` calls match through ``_regex`` (a time bound).

    jsonpath-ng matches them with stdlib ``re``, which cannot be interrupted; each such node
    becomes the subclass below (the same node, its ``find`` bounded), and its pattern is
    compiled now, so that an invalid one is an invalid path."""
    from jsonpath_ng.ext.filter import Expression
    from jsonpath_ng.ext.string import Sub
    from jsonpath_ng.jsonpath import JSONPath

    stack, seen = [tree], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if type(node) is Expression and node.op == "=~":
            if not isinstance(node.value, str):
                raise ValueError(f"the =~ operator needs a string pattern, got {node.value!r}")
            _regex.compile_python(node.value)  # re.error: an invalid path
            node.__class__ = _bounded_filter_class()
        elif type(node) is Sub:
            node.compiled = _regex.compile_python(node.expr)  # type: ignore[attr-defined]
            node.__class__ = _bounded_sub_class()
        for child in vars(node).values():
            children = child if isinstance(child, (list, tuple)) else [child]
            stack.extend(c for c in children if isinstance(c, JSONPath))
    return tree


@cache
def _bounded_filter_class() -> Any:
    from jsonpath_ng.ext.filter import Expression
    from jsonpath_ng.jsonpath import DatumInContext

    class BoundedRegexFilter(Expression):  # type: ignore[misc]
        """``@.x =~ "pattern"``: the strings found that the pattern matches (``re.search``)."""

        def find(self, datum: Any) -> list[Any]:
            compiled = _regex.compile_python(self.value)
            found = self.target.find(DatumInContext.wrap(datum))
            return [d for d in found if isinstance(d.value, str) and _regex.search(compiled, d.value)]

    return BoundedRegexFilter


@cache
def _bounded_sub_class() -> Any:
    from jsonpath_ng.ext.string import Sub
    from jsonpath_ng.jsonpath import DatumInContext

    class BoundedSub(Sub):  # type: ignore[misc]
        """```sub(/pattern/, repl)```: the substituted string, when it differs."""

        compiled: Any

        def find(self, datum: Any) -> list[Any]:
            datum = DatumInContext.wrap(datum)
            if not isinstance(datum.value, str):
                return list(super().find(datum))
            value = _regex.sub(self.compiled, self.repl, datum.value)
            return [] if value == datum.value else [DatumInContext.wrap(value)]

    return BoundedSub


def json_path(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The JSONPath ``path`` matches the output; its first match equals ``value`` if given."""
    path = spec.get("path")
    expr = compile_path(path)
    ok, data, why = _parsed(inp)
    if not ok:
        return Verdict.fail(why)
    try:
        with _regex.budget():
            matches = expr.find(_plain_json(data))
    except _regex.RegexTimeout as exc:
        raise CheckValueError(
            f"JSONPath regex {excerpt(exc.pattern)} did not finish within {exc.seconds:g} s on "
            f"a string of {exc.length:,} characters (catastrophic backtracking?)"
        ) from None
    if not matches:
        return Verdict.fail(f"path {path} matched nothing in {excerpt(data)}")
    first = matches[0].value
    if "value" not in spec:
        return held(f"path {path} matched {excerpt(first)}")
    value = spec["value"]
    if loose_equal(value, first, steps_of(spec)):
        return held(f"at {path}: {excerpt(first)} equals the value")
    return Verdict.fail(f"at {path}: expected {excerpt(value)}, got {excerpt(first)}")


def _plain_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(v) for v in value]
    return value


# ---------------------------------------------------------------- tool-call


def tool_call(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The model called tool ``name`` with arguments that include ``arguments``."""
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise CheckValueError(f"tool-call needs a tool name, got {excerpt(name)}")
    calls = list(inp.tool_calls) or _calls_in_output(inp.output)
    if not calls:
        return Verdict.fail(f"expected a call to {excerpt(name)}, the model made no tool call")
    named = [c for c in calls if c.name == name]
    if not named:
        called = ", ".join(excerpt(c.name, 30) for c in calls[:5])
        return Verdict.fail(f"expected a call to {excerpt(name)}, got calls to {called}")
    if "arguments" not in spec or spec["arguments"] is None:
        return held(f"the model called {excerpt(name)}")
    expected = spec["arguments"]
    mismatch = ""
    for call in named:
        mismatch = subset_mismatch(expected, parse_arguments(call.arguments), "arguments")
        if not mismatch:
            return held(f"the model called {excerpt(name)} with {excerpt(expected)}")
    more = f" (and {len(named) - 1} other calls to it)" if len(named) > 1 else ""
    return Verdict.fail(f"call to {excerpt(name)}: {mismatch}{more}")


def _calls_in_output(output: Any) -> list[ToolCall]:
    if not isinstance(output, Mapping) or not isinstance(output.get("tool_calls"), list):
        return []
    calls = []
    for item in output["tool_calls"]:
        if not isinstance(item, Mapping):
            continue
        nested = item.get("function")
        fn: Mapping[str, Any] = nested if isinstance(nested, Mapping) else item
        calls.append(ToolCall(str(fn.get("name")), fn.get("arguments")))
    return calls


def subset_mismatch(expected: Any, actual: Any, where: str) -> str:
    """Describe the first place ``actual`` does not include ``expected``, or ``""``.

    Mappings are subsets (every expected key must be there and match); lists and scalars
    must be equal, a string matching a number by its string form.
    """
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return f"{where} expected a mapping, got {excerpt(actual)}"
        for key, want in expected.items():
            if key not in actual:
                return f"{where}.{key} is missing (got {excerpt(actual)})"
            inner = subset_mismatch(want, actual[key], f"{where}.{key}")
            if inner:
                return inner
        return ""
    if isinstance(expected, Sequence) and not isinstance(expected, str):
        if loose_equal(expected, actual):
            return ""
        return f"{where} expected {excerpt(expected)}, got {excerpt(actual)}"
    if loose_scalar_equal(expected, actual):
        return ""
    return f"{where} expected {excerpt(expected)}, got {excerpt(actual)}"
