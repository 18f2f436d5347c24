"""Which step a trace record stands for: the format's default name, or a pipeline's ``traces:``.

Without a pipeline, a record's step is the name its reader gives it (OTel:
``gen_ai.operation.name`` with the tool, agent or model; LangSmith: ``name``, inside a
LangGraph node ``node/name``; Langfuse: ``type name``); records with none (a non-GenAI
span, a Langfuse event) are not steps. With a pipeline, each step's ``match:`` (a mapping,
or a list of alternatives) is tried in the order the ``traces:`` section lists them (put the
more specific first) and the first that matches wins; a record no step matches is not counted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..config import models as m
from .records import TraceRecord

_Pattern = Any  # str | int | float | bool | m.RegexPattern


class StepMapper:
    """``step_of(record)`` → a step id or ``None``."""

    def __init__(self, traces: Mapping[str, m.TraceStep] | None = None) -> None:
        self.rules: list[tuple[str, list[list[tuple[str, str | None, Any]]]]] | None = None
        if traces is not None:
            self.rules = []
            for step_id in traces:
                spec = traces[step_id].match
                matches = spec if isinstance(spec, list) else [spec]
                self.rules.append((step_id, [_compile(one) for one in matches]))

    def step_of(self, rec: TraceRecord) -> str | None:
        if self.rules is None:
            return rec.default_step
        for step_id, alternatives in self.rules:
            for tests in alternatives:
                if all(_test(_field(rec, where, key), pattern) for where, key, pattern in tests):
                    return step_id
        return None


def _compile(match: m.TraceMatch) -> list[tuple[str, str | None, Any]]:
    tests: list[tuple[str, str | None, Any]] = []
    for where in ("name", "step", "kind"):
        value = getattr(match, where)
        if value is not None:
            tests.append((where, None, _pattern(value)))
    for key, value in match.attributes.items():
        tests.append(("attributes", key, _pattern(value)))
    return tests


def _pattern(value: _Pattern) -> Any:
    if isinstance(value, m.RegexPattern):
        return re.compile(value.regex)
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        return str(value)
    except RecursionError:  # a value nested past the stack matches no pattern
        return ""


def _field(rec: TraceRecord, where: str, key: str | None) -> Any:
    if where == "name":
        return rec.name
    if where == "step":
        return rec.default_step
    if where == "kind":
        return rec.kind
    return rec.attributes.get(key) if key is not None else None


def _test(value: Any, pattern: Any) -> bool:
    if value is None:
        return False
    text = _text(value)
    if isinstance(pattern, re.Pattern):
        return pattern.search(text) is not None
    return text == pattern
