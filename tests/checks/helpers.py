"""Small helpers for the check tests: run one check on one output."""

from __future__ import annotations

import asyncio
from typing import Any

from reliability_cli.checks import CheckInput, Verdict, run_check


def check(spec: dict[str, Any], output: Any = "", text: str | None = None, **fields: Any) -> Verdict:
    """Run ``spec`` on ``output`` (raw text defaults to the output, or its JSON)."""
    if text is None:
        import json

        text = output if isinstance(output, str) else json.dumps(output)
    return asyncio.run(run_check(spec, CheckInput(output=output, text=text, **fields)))


def passes(spec: dict[str, Any], output: Any = "", **fields: Any) -> bool:
    return check(spec, output, **fields).passed


def reason(spec: dict[str, Any], output: Any = "", **fields: Any) -> str:
    verdict = check(spec, output, **fields)
    assert not verdict.passed, f"expected {spec} to fail on {output!r}"
    assert verdict.reason and "\n" not in verdict.reason
    return verdict.reason
