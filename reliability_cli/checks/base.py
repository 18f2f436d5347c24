"""The one protocol every check implements, and the input it judges.

A check is a function ``evaluate(spec, inp) -> Verdict`` (or an ``async def`` returning one),
registered under its ``type`` name in :mod:`reliability_cli.checks.registry`. ``spec`` is the
check's mapping from the pipeline or eval set with templates already rendered for the case
(the runner renders ``value``, ``arguments`` and ``rubric``; per-case checks from an eval set
are literal and never rendered). ``normalize`` has not been applied yet: checks that compare
text call :func:`normalize` themselves on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from ..records import ToolCall
from ..textfmt import one_line


class CheckCodeError(Exception):
    """A ``python`` check's code raised, failed to import, or returned something unusable."""


@dataclass(frozen=True)
class CheckInput:
    """What a check sees of one attempt."""

    output: Any  # parsed output: str for ``parse: text``; the JSON value for ``parse: json``;
    # a mapping or list where a mock ``reply`` or ``python`` endpoint returned one
    text: str  # the raw text of the response (json.dumps of a structured output)
    tool_calls: Sequence[ToolCall] = ()
    latency_ms: float = 0.0
    judge: Any = None  # for llm-rubric: async callable(endpoint_name, messages) -> str
    context: Mapping[str, Any] = field(default_factory=dict)  # template context (read-only)


@dataclass(frozen=True)
class Verdict:
    """A check's result: ``passed`` and, when it did not pass, a one-line reason."""

    passed: bool
    reason: str | None = None

    @classmethod
    def ok(cls) -> Verdict:
        return cls(True, None)

    @classmethod
    def fail(cls, reason: str) -> Verdict:
        return cls(False, one_line(reason))


class Held(Verdict):
    """A passing verdict whose reason (what held) is worked out when it is first read.

    The runner reads it only under ``not-`` (to quote it in the failure); for every other
    passing check it is dropped, so formatting it per attempt would be wasted. Reads, ``==``,
    ``hash`` and ``repr`` are those of ``Verdict(True, one_line(make()))``.
    """

    def __init__(self, make: Callable[[], str]) -> None:  # (no dataclass __init__: reason is derived)
        object.__setattr__(self, "passed", True)
        object.__setattr__(self, "_make", make)

    @property  # type: ignore[override]
    def reason(self) -> str:
        cached: str | None = self.__dict__.get("_reason")
        if cached is None:
            cached = one_line(self.__dict__["_make"]())
            object.__setattr__(self, "_reason", cached)
        return cached

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Verdict):
            return (self.passed, self.reason) == (other.passed, other.reason)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.passed, self.reason))

    def __repr__(self) -> str:
        return f"Verdict(passed=True, reason={self.reason!r})"


CheckFn = Callable[[Mapping[str, Any], CheckInput], Union[Verdict, Awaitable[Verdict]]]


@dataclass(frozen=True)
class Registered:
    name: str
    evaluate: CheckFn
    keys: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    deterministic: bool = True  # False: model-graded (cannot promise promptfoo's verdicts)
    code: bool = False  # True: runs user code, refused in eval sets


NORMALIZERS = ("strip", "lower", "collapse-space")
_SPACE = re.compile(r"\s+")


def normalize(text: str, steps: Sequence[str] | None) -> str:
    """Apply ``normalize: [strip, lower, collapse-space]`` in the order given."""
    for step in steps or ():
        if step == "strip":
            text = text.strip()
        elif step == "lower":
            text = text.lower()
        elif step == "collapse-space":
            text = _SPACE.sub(" ", text).strip()
    return text
