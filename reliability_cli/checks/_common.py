"""Helpers shared by the check families: JS-like coercion, excerpts, JSON and equality.

promptfoo runs in JavaScript, so "the same verdict on the same output" means reproducing a
few JavaScript behaviours here: ``String(value)`` for scalars, ``JSON.parse`` strictness,
``util.isDeepStrictEqual`` (``true`` is not ``1``) and the comma-separated value lists of
``contains-any``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import templating
from ..textfmt import one_line, truncate
from .base import CheckInput, Held, Verdict

EXCERPT = 60


class CheckValueError(ValueError):
    """The check's own spec is unusable for this case (empty value, bad regex, bad schema).

    The registry turns it into a failing verdict that a ``not-`` prefix never inverts, as
    promptfoo does for a broken assertion (an invalid regex fails ``not-regex`` too).
    """


def held(reason: str) -> Verdict:
    """A passing verdict that says what held, so that ``not-<type>`` can quote it."""
    return Verdict(True, one_line(reason))


def held_lazily(make: Callable[[], str]) -> Verdict:
    """:func:`held`, with the reason formatted only if it is read (see :class:`base.Held`);
    ``make`` must only format values already worked out."""
    return Held(make)


def subject(inp: CheckInput) -> str:
    """The text that text checks judge: the output if it is a string, else the raw text."""
    return inp.output if isinstance(inp.output, str) else inp.text


def steps_of(spec: Mapping[str, Any]) -> list[str]:
    """The ``normalize`` steps of a spec (a single name is accepted for a list of one)."""
    steps = spec.get("normalize")
    if steps is None:
        return []
    if isinstance(steps, str):
        return [steps]
    return [str(s) for s in steps]


def js_string(value: Any) -> str:
    """JavaScript's ``String(value)`` for the values YAML and JSON can produce."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, Mapping):
        return "[object Object]"
    if isinstance(value, (list, tuple)):
        return ",".join("" if v is None else js_string(v) for v in value)
    return str(value)


def _js_number(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if 1e-6 <= abs(x) < 1e21:
        if x.is_integer():
            return str(int(x))
        text = repr(x)
        if "e" not in text:
            return text
        from decimal import Decimal

        return format(Decimal(text), "f")
    mantissa, _, exponent = repr(x).partition("e")
    sign = "-" if exponent.startswith("-") else "+"
    return f"{mantissa.removesuffix('.0')}e{sign}{exponent.lstrip('+-').lstrip('0')}"


def excerpt(value: Any, limit: int = EXCERPT) -> str:
    """A one-line excerpt of at most ``limit`` characters between the delimiters.

    A string is quoted, with newlines and quotes escaped (so ``"yes\\n"`` and ``"yes"``
    look different); any other value is shown as compact JSON.
    """
    if not isinstance(value, str):
        return truncate(dumps(value), limit)
    return '"' + truncate(json.dumps(value, ensure_ascii=False)[1:-1], limit) + '"'


def dumps(value: Any) -> str:
    """Compact JSON text of a value (like ``JSON.stringify``), falling back to ``str``."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_plain)
    except (TypeError, ValueError):
        return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def _reject_constant(name: str) -> Any:
    # JSON.parse rejects NaN and Infinity; Python's json accepts them by default.
    raise ValueError(f"{name} is not valid JSON")


class NotJson(ValueError):
    """The output is not valid JSON; ``str(exc)`` is the ``"<msg> at char <pos>"`` detail."""


def loads_strict(text: str) -> Any:
    """``JSON.parse``: raise :class:`NotJson` with the parser's message and position."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise NotJson(f"{exc.msg} at char {exc.pos}") from None
    except ValueError as exc:
        raise NotJson(str(exc)) from None


def output_json(inp: CheckInput) -> Any:
    """The output as a JSON value: parsed from text, or the already-structured output."""
    if isinstance(inp.output, str):
        return loads_strict(inp.output)
    return inp.output


def deep_equal(a: Any, b: Any) -> bool:
    """``util.isDeepStrictEqual`` on JSON values: no bool/number mixing, key order ignored."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
    if _is_list(a) and _is_list(b):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b))
    if a is None or b is None:
        return a is None and b is None
    return type(a) is type(b) and a == b


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def loose_scalar_equal(expected: Any, actual: Any, steps: Sequence[str] = ()) -> bool:
    """Scalar equality that lets a string match a number by its string form.

    CSV eval sets and rendered templates give strings, while JSON output gives numbers:
    ``"42"`` matches ``42``. Booleans and ``null`` still match only themselves.
    """
    from .base import normalize

    if isinstance(expected, str) and isinstance(actual, str):
        return normalize(expected, steps) == normalize(actual, steps)
    numbers = (int, float)
    if isinstance(expected, str) and isinstance(actual, numbers) and not isinstance(actual, bool):
        return expected.strip() == js_string(actual)
    if isinstance(actual, str) and isinstance(expected, numbers) and not isinstance(expected, bool):
        return actual.strip() == js_string(expected)
    return deep_equal(expected, actual)


def loose_equal(expected: Any, actual: Any, steps: Sequence[str] = ()) -> bool:
    """:func:`deep_equal`, with :func:`loose_scalar_equal` at the leaves."""
    if isinstance(expected, Mapping):
        return (
            isinstance(actual, Mapping)
            and expected.keys() == actual.keys()
            and all(loose_equal(expected[k], actual[k], steps) for k in expected)
        )
    if _is_list(expected):
        return (
            _is_list(actual)
            and len(expected) == len(actual)
            and all(loose_equal(x, y, steps) for x, y in zip(expected, actual))
        )
    return loose_scalar_equal(expected, actual, steps)


def parse_comma_separated(value: str) -> list[str]:
    """Split ``contains-any`` text the way promptfoo does.

    Ported from promptfoo ``src/util/parseCommaSeparatedValues.ts``: fields are separated by
    commas, trimmed, empty fields dropped; a field may be double-quoted to hold commas, with
    ``\\"``, ``\\\\`` and ``""`` as escapes. An unterminated quote is an error.
    """
    fields: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        if i >= n:
            break
        if value[i] == '"':
            i += 1
            field: list[str] = []
            while True:
                if i >= n:
                    raise CheckValueError(f"unterminated quoted field in value {excerpt(value)}")
                ch = value[i]
                if ch == "\\" and i + 1 < n and value[i + 1] in '"\\':
                    field.append(value[i + 1])
                    i += 2
                elif ch == '"' and i + 1 < n and value[i + 1] == '"':
                    field.append('"')
                    i += 2
                elif ch == '"':
                    i += 1
                    break
                else:
                    field.append(ch)
                    i += 1
            fields.append("".join(field))
            while i < n and value[i].isspace():
                i += 1
            if i < n and value[i] != ",":
                raise CheckValueError(f"expected a comma after a quoted field in {excerpt(value)}")
        else:
            end = value.find(",", i)
            end = n if end < 0 else end
            fields.append(value[i:end].strip())
            i = end
    return fields


def is_template(value: Any) -> bool:
    """True when a literal still holds a template (validated only once rendered)."""
    return isinstance(value, str) and templating.is_template(value)


def parse_json_output(text: str) -> tuple[Any, str | None]:
    """A step's output parsed as JSON (``parse: json``): ``(value, None)``, or ``(None, why)``
    when it is not JSON — a ``fail`` of the model, never an error of relcheck's (a 5,000-digit
    number, nesting past the interpreter's stack)."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"output is not valid JSON: {exc.msg} at char {exc.pos}"
    except (ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else one_line(str(exc))
        return None, f"output is not valid JSON: {detail}"
