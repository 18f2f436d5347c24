"""A passing text check formats what held only when it is read; it reads as the eager verdict."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from reliability_cli.checks import CheckInput, run_check
from reliability_cli.checks.base import Held, Verdict
from reliability_cli.checks.text import contains, contains_any, equals, not_contains, one_of

OUT = CheckInput(output=' Alice said "yes"\n', text="")


@pytest.mark.parametrize(
    ("check", "spec", "reason"),
    [
        (equals, {"value": 'Alice said "yes"', "normalize": ["strip"]}, 'output equals "Alice said \\"yes\\""'),
        (contains, {"value": "Alice"}, 'output contains "Alice"'),
        (contains_any, {"value": ["Bob", "Alice"]}, 'output contains "Alice"'),
        (not_contains, {"value": "Bob"}, 'output does not contain "Bob"'),
        (one_of, {"value": 'alice said "yes",no', "normalize": ["strip", "lower"]}, None),
    ],
)
def test_the_lazy_reason_reads_as_the_eager_one(check, spec, reason) -> None:  # type: ignore[no-untyped-def]
    verdict = check(spec, OUT)
    assert type(verdict) is Held and verdict.passed
    if reason is not None:
        eager = Verdict(True, reason)
        assert verdict.reason == reason
        assert verdict == eager and eager == verdict and hash(verdict) == hash(eager)
        assert repr(verdict) == repr(eager) and dataclasses.asdict(verdict) == dataclasses.asdict(eager)
        assert verdict != Verdict(True, "something else") and verdict != Verdict(False, reason)


def test_not_quotes_what_held() -> None:
    verdict = asyncio.run(run_check({"type": "not-contains", "value": "Alice"}, OUT))
    assert verdict == Verdict(False, 'output contains "Alice"')
    assert asyncio.run(run_check({"type": "contains", "value": "Alice"}, OUT)) == Verdict(True, None)
