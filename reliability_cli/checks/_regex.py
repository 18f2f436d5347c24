"""Regular-expression matching with a time bound, for every check that matches a pattern.

Stdlib ``re`` cannot be interrupted: ``^(a+)+$`` on ``'a' * 41 + 'b'`` backtracks for hours.
Patterns are therefore checked by ``re`` (its syntax, its error messages) and matched by the
``regex`` module, which is ``re``-compatible and takes a timeout. The ``regex`` check gives
each output ``REGEX_TIMEOUT_S``; a ``json-schema`` check (``pattern``, ``patternProperties``)
or a ``json-path`` check (``=~`` filters, ``sub()``) shares ``REGEX_TIMEOUT_S`` among all the
matches it makes on one output (see ``budget``). Past it, matching raises ``RegexTimeout``,
which each check turns into a failing verdict with a reason naming the timeout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from time import monotonic as _clock
from typing import Any

#: One check's matching on one output may take this long; past it the check fails (even
#: under a ``not-`` prefix, like an invalid pattern) with a reason naming the timeout.
REGEX_TIMEOUT_S = 1.0

_deadline: ContextVar[float | None] = ContextVar("relcheck_regex_deadline", default=None)


class RegexTimeout(Exception):
    """A match did not finish within the check's time (catastrophic backtracking)."""

    def __init__(self, pattern: str, length: int, seconds: float) -> None:
        super().__init__(pattern, length, seconds)
        self.pattern, self.length, self.seconds = pattern, length, seconds


@contextmanager
def budget() -> Iterator[None]:
    """Share ``REGEX_TIMEOUT_S`` among every ``search`` made inside the block (one check)."""
    token = _deadline.set(_clock() + REGEX_TIMEOUT_S)
    try:
        yield
    finally:
        _deadline.reset(token)


def compile_python(pattern: str) -> Any:
    """A ``regex``-module pattern for a pattern in Python ``re`` syntax (raises ``re.error``)."""
    return _compile(pattern)


@lru_cache(maxsize=512)
def _compile(pattern: str) -> Any:
    import regex as regex_module  # (imported when a pattern is first matched)

    re.compile(pattern)  # re's syntax and messages (raises re.error)
    try:
        return regex_module.compile(pattern)
    except regex_module.error as exc:  # pragma: no cover - re accepted it
        raise re.error(str(exc)) from None


def search(compiled: Any, text: str) -> bool:
    """``compiled.search(text)`` within the time left (raises ``RegexTimeout``)."""
    deadline = _deadline.get()
    left = REGEX_TIMEOUT_S if deadline is None else deadline - _clock()
    if left <= 0:
        raise RegexTimeout(compiled.pattern, len(text), REGEX_TIMEOUT_S)
    try:
        return compiled.search(text, timeout=left) is not None
    except TimeoutError:
        raise RegexTimeout(compiled.pattern, len(text), REGEX_TIMEOUT_S) from None


def sub(compiled: Any, repl: str, text: str) -> str:
    """``compiled.sub(repl, text)`` within the time left (raises ``RegexTimeout``)."""
    deadline = _deadline.get()
    left = REGEX_TIMEOUT_S if deadline is None else deadline - _clock()
    if left <= 0:
        raise RegexTimeout(compiled.pattern, len(text), REGEX_TIMEOUT_S)
    try:
        return str(compiled.sub(repl, text, timeout=left))
    except TimeoutError:
        raise RegexTimeout(compiled.pattern, len(text), REGEX_TIMEOUT_S) from None
