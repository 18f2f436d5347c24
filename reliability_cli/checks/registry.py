"""The check registry: every check type, its keys, validation and dispatch.

- :data:`REGISTRY` maps a type name to its :class:`~reliability_cli.checks.base.Registered`.
- :func:`validate_spec` lists what is wrong with a check mapping, before any call.
- :func:`run_check` judges one attempt's output with one check.

Every deterministic type also exists with promptfoo's generic ``not-`` prefix
(``not-equals``, ``not-regex`` …), which passes exactly when the check fails. A check whose
own spec is unusable for the case (an empty value, an invalid regex or schema) fails under
either name, as in promptfoo. An exception inside a check becomes a failing verdict, except
in the ``python`` check, whose exceptions propagate as :class:`CheckCodeError` for the
runner to record as an error of kind ``exception``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from ..textfmt import one_line
from . import code, model_graded, perf, similarity, structured, text
from ._common import CheckValueError, is_template
from .base import NORMALIZERS, CheckCodeError, CheckFn, CheckInput, Registered, Verdict

_TEXT = ("value", "normalize")
_KEY_ORDER = (
    "value",
    "path",
    "name",
    "arguments",
    "threshold",
    "max_ms",
    "callable",
    "endpoint",
    "rubric",
    "normalize",
)


def _entry(name: str, evaluate: CheckFn, keys: tuple[str, ...], required: tuple[str, ...], **flags: bool) -> Registered:
    return Registered(name, evaluate, frozenset(keys), frozenset(required), **flags)


REGISTRY: dict[str, Registered] = {
    e.name: e
    for e in (
        _entry("equals", text.equals, _TEXT, ("value",)),
        _entry("contains", text.contains, _TEXT, ("value",)),
        _entry("icontains", text.icontains, _TEXT, ("value",)),
        _entry("contains-any", text.contains_any, _TEXT, ("value",)),
        _entry("contains-all", text.contains_all, _TEXT, ("value",)),
        _entry("not-contains", text.not_contains, _TEXT, ("value",)),
        _entry("regex", text.regex, _TEXT, ("value",)),
        _entry("starts-with", text.starts_with, _TEXT, ("value",)),
        _entry("one-of", text.one_of, _TEXT, ("value",)),
        _entry("is-json", structured.is_json, ("value",), ()),
        _entry("json-schema", structured.json_schema, ("value",), ("value",)),
        _entry("json-path", structured.json_path, ("path", "value", "normalize"), ("path",)),
        _entry("tool-call", structured.tool_call, ("name", "arguments"), ("name",)),
        _entry("similar", similarity.similar, ("value", "threshold", "normalize"), ("value",)),
        _entry("latency", perf.latency, ("max_ms",), ("max_ms",)),
        _entry("python", code.python_check, ("callable", "value"), ("callable",), code=True),
        _entry(
            "llm-rubric", model_graded.llm_rubric, ("endpoint", "rubric"), ("endpoint", "rubric"), deterministic=False
        ),
    )
}

ALL_KEYS: frozenset[str] = frozenset({"type", "normalize"}.union(*(e.keys for e in REGISTRY.values())))


def get(name: str) -> Registered:
    """The registered check type ``name``; raises KeyError for an unknown name."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(_unknown_type(name)) from None


def resolve(name: str) -> tuple[Registered, bool] | None:
    """``(entry, negated)`` for a type name, ``not-`` prefix included; None if unknown."""
    entry = REGISTRY.get(name)
    if entry is not None:
        return entry, False
    base = name[4:] if name.startswith("not-") else ""
    entry = REGISTRY.get(base)
    if entry is not None and entry.deterministic and not base.startswith("not-"):
        return entry, True
    return None


def type_names() -> list[str]:
    """Every accepted type name: the registered ones, then their ``not-`` forms."""
    names = list(REGISTRY)
    names += [
        f"not-{n}"
        for n, e in REGISTRY.items()
        if e.deterministic and not n.startswith("not-") and f"not-{n}" not in REGISTRY
    ]
    return names


def _unknown_type(name: str) -> str:
    import difflib

    base = name[4:] if name.startswith("not-") else ""
    entry = REGISTRY.get(base)
    if entry is not None and not entry.deterministic:
        return f"check type '{name}' does not exist: {base} is model-graded and cannot be negated"
    close = difflib.get_close_matches(name, type_names(), n=1, cutoff=0.6)
    if close:
        return f"unknown check type '{name}' — did you mean '{close[0]}'?"
    return f"unknown check type '{name}' (known: {', '.join(REGISTRY)})"


def validate_spec(spec: Mapping[str, Any]) -> list[str]:
    """List what is wrong with one check mapping, before anything runs.

    Args:
        spec: the check as written (templates not rendered; a value holding ``{{`` is
            judged only once rendered).

    Returns:
        One human message per problem (unknown type or key, with a suggestion; missing
        required key; bad normalize step; invalid literal regex, schema, JSONPath,
        threshold…), or ``[]``. Nothing is imported or executed: a ``python`` callable
        is only checked to look like ``package.module:function``.
    """
    if not isinstance(spec, Mapping):
        return [f"a check must be a mapping like {{type: equals, value: …}}, got {type(spec).__name__}"]
    name = spec.get("type")
    if name is None:
        return ["a check needs a 'type' (e.g. {type: equals, value: …})"]
    if not isinstance(name, str):
        return [f"check 'type' must be a string, got {name!r}"]
    found = resolve(name)
    if found is None:
        return [_unknown_type(name)]
    entry = found[0]
    problems = [_unknown_key(name, key, entry) for key in spec if key != "type" and key not in entry.keys]
    problems += [
        f"check type '{name}' is missing required key '{key}'"
        for key in sorted(entry.required, key=_KEY_ORDER.index)
        if key not in spec
    ]
    if "normalize" in spec and "normalize" in entry.keys:
        problems += _normalize_problems(spec["normalize"])
    problems += _value_problems(entry.name, spec)
    return problems


def _unknown_key(name: str, key: Any, entry: Registered) -> str:
    import difflib

    takes = sorted(entry.keys, key=_KEY_ORDER.index)
    message = f"check type '{name}' takes no key '{key}' (it takes: {', '.join(takes)})"
    close = difflib.get_close_matches(str(key), takes, n=1, cutoff=0.7)
    return message + (f" — did you mean '{close[0]}'?" if close else "")


def _normalize_problems(steps: Any) -> list[str]:
    import difflib

    if isinstance(steps, str):
        steps = [steps]
    if not isinstance(steps, list):
        return [f"'normalize' must be a list of steps ({', '.join(NORMALIZERS)})"]
    problems = []
    for step in steps:
        if step not in NORMALIZERS:
            close = difflib.get_close_matches(str(step), NORMALIZERS, n=1)
            hint = f" — did you mean '{close[0]}'?" if close else f" (use: {', '.join(NORMALIZERS)})"
            problems.append(f"unknown normalize step '{step}'{hint}")
    return problems


def _value_problems(base: str, spec: Mapping[str, Any]) -> list[str]:
    """Problems visible in literal values; templated ones are judged once rendered."""
    value = spec.get("value")
    literal = "value" in spec and not is_template(value)
    try:
        if base == "regex" and literal:
            if not isinstance(value, str) or not value:
                return [f"regex value must be a non-empty string, got {value!r}"]
            text.compile_js_regex(value)
        elif base in ("contains", "icontains", "not-contains", "starts-with") and literal:
            text._needle(spec, base)
        elif base in ("contains-any", "contains-all", "one-of") and literal:
            text.values_of(spec, base)
        elif base in ("is-json", "json-schema") and literal and value not in (None, ""):
            structured.schema_validator(value)
        elif base == "json-path" and "path" in spec:
            structured.compile_path(spec["path"])
        elif base == "similar":
            similarity.threshold_of(spec)
        elif base == "python" and "callable" in spec and not code.valid_callable_name(spec["callable"]):
            return [f"python callable must look like 'package.module:function', got {spec['callable']!r}"]
        elif base == "tool-call":
            return _tool_call_problems(spec)
        elif base == "latency" and "max_ms" in spec:
            perf.max_ms_of(spec)
        elif base == "llm-rubric":
            return [
                f"llm-rubric '{key}' must be a non-empty string"
                for key in ("endpoint", "rubric")
                if key in spec and (not isinstance(spec[key], str) or not spec[key].strip())
            ]
    except CheckValueError as exc:
        return [str(exc)]
    return []


def _tool_call_problems(spec: Mapping[str, Any]) -> list[str]:
    problems = []
    if "name" in spec and (not isinstance(spec["name"], str) or not spec["name"]):
        problems.append(f"tool-call 'name' must be a non-empty string, got {spec['name']!r}")
    args = spec.get("arguments")
    if args is not None and not isinstance(args, Mapping) and not is_template(args):
        problems.append(f"tool-call 'arguments' must be a mapping, got {args!r}")
    return problems


async def run_check(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """Judge one attempt with one check.

    Args:
        spec: the check mapping with templates already rendered for the case.
        inp: the attempt's output, raw text, tool calls, latency, judge and context.

    Returns:
        ``Verdict.ok()`` (no reason), or a failing verdict with a one-line reason. An
        unknown type, an unusable spec or an exception inside a check is a failing
        verdict, never inverted by ``not-``.

    Raises:
        CheckCodeError: a ``python`` check's code raised, failed to import, or returned
            something other than a verdict.
    """
    name = str(spec.get("type"))
    found = resolve(name)
    if found is None:
        return Verdict.fail(_unknown_type(name))
    entry, negated = found
    try:
        result = entry.evaluate(spec, inp)
        if isinstance(result, Verdict):  # (every check but an async one: no awaitable test)
            pass
        elif inspect.isawaitable(result):
            result = await result
    except CheckCodeError:
        raise
    except CheckValueError as exc:
        return Verdict.fail(str(exc))
    except Exception as exc:
        return Verdict.fail(f"check {name} raised {type(exc).__name__}: {exc}")
    if negated:
        if result.passed:
            return Verdict.fail(result.reason or f"{entry.name} passed")
        return Verdict.ok()
    return Verdict.ok() if result.passed else Verdict(False, one_line(result.reason or f"{name} failed"))


# ---------------------------------------------------------------- JSON Schema (``relcheck schema``)

_TEMPLATE = {"type": "string", "description": "a template ({{ … }}), rendered for each case"}
_KEY_SCHEMAS: dict[str, dict[str, Any]] = {
    "path": {"type": "string", "description": "JSONPath into the output parsed as JSON, e.g. $.intent"},
    "name": {"type": "string", "minLength": 1, "description": "the tool the output must call"},
    "arguments": {
        "anyOf": [{"type": "object"}, _TEMPLATE],
        "description": "arguments the tool call must have (a subset match)",
    },
    "threshold": {"type": "number", "minimum": 0, "maximum": 1, "description": "similarity needed (default 0.8)"},
    "max_ms": {"type": "number", "minimum": 0, "description": "the attempt's latency limit in milliseconds"},
    "callable": {
        "type": "string",
        "pattern": "^[^:]+:[^:]+$",
        "description": "package.module:function, called with the output and the case",
    },
    "endpoint": {"type": "string", "minLength": 1, "description": "the judge: an endpoint of this pipeline"},
    "rubric": {"type": "string", "minLength": 1, "description": "what the judge checks the output against"},
    "normalize": {
        "anyOf": [
            {"enum": list(NORMALIZERS)},
            {"type": "array", "items": {"enum": list(NORMALIZERS)}},
        ],
        "description": "applied to the output and the value before comparing",
    },
}
_TEXT_VALUE = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}], "description": "the text to look for"}
_VALUE_SCHEMAS: dict[str, dict[str, Any]] = {
    "equals": {"description": "the exact output; an object, list or null is compared as JSON"},
    "contains": _TEXT_VALUE,
    "icontains": _TEXT_VALUE,
    "not-contains": _TEXT_VALUE,
    "starts-with": _TEXT_VALUE,
    "regex": {"type": "string", "minLength": 1, "description": "a JavaScript regular expression"},
    "contains-any": {
        "anyOf": [{"type": "array"}, {"type": "string", "minLength": 1}],
        "description": "a list, or a comma-separated string",
    },
    "is-json": {"anyOf": [{"type": "object"}, {"type": "string"}], "description": "optional JSON Schema to match"},
    "json-schema": {"anyOf": [{"type": "object"}, {"type": "string"}], "description": "the JSON Schema to match"},
    "json-path": {"description": "the value found at path must equal this"},
    "similar": {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "description": "the text (or texts) the output must be similar to",
    },
    "python": {"description": "passed to the callable"},
}
_VALUE_SCHEMAS["contains-all"] = _VALUE_SCHEMAS["one-of"] = _VALUE_SCHEMAS["contains-any"]


def _key_schema(entry: Registered, key: str) -> dict[str, Any]:
    return dict(_VALUE_SCHEMAS.get(entry.name, {})) if key == "value" else dict(_KEY_SCHEMAS[key])


def _summary(entry: Registered) -> str:
    doc = (entry.evaluate.__doc__ or entry.name).strip().splitlines()[0]
    return doc.replace("``", "")


def check_json_schema() -> dict[str, Any]:
    """The JSON Schema of one check: a ``oneOf`` of every type name (``not-`` forms
    included), each an object with ``type`` fixed to that name, its own keys, its required
    keys and nothing else — so an editor completes the types and, once ``type`` is written,
    that type's keys."""
    variants = []
    for name in type_names():
        entry, negated = resolve(name) or (REGISTRY[name], False)
        keys = sorted(entry.keys, key=_KEY_ORDER.index)
        what = _summary(entry)
        variants.append(
            {
                "title": name,
                "description": f"the opposite of {entry.name}: {what}" if negated else what,
                "type": "object",
                "properties": {"type": {"const": name}} | {key: _key_schema(entry, key) for key in keys},
                "required": ["type", *sorted(entry.required, key=_KEY_ORDER.index)],
                "additionalProperties": False,
            }
        )
    return {
        "title": "Check",
        "description": "a check on the step's output, keyed on type",
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": type_names()}},
        "oneOf": variants,
    }
