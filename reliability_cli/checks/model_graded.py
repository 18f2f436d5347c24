"""The ``llm-rubric`` check: a judge model grades the output against a rubric.

Keys: ``endpoint`` (the judge: a pipeline endpoint name) and ``rubric`` (templated). The
judge is asked, with promptfoo's default rubric prompt (``src/prompts/grading.ts``,
``DEFAULT_GRADING_PROMPT``), for a JSON object ``{"reason": str, "pass": bool, "score": num}``.
The reply is read leniently:

1. the first JSON object anywhere in the reply that has ``pass`` or ``score`` (so code
   fences and preambles are fine). ``pass`` may be a boolean or a string (``true``, ``yes``,
   ``pass``, ``y`` pass, as in promptfoo's ``matchesLlmRubric``); without ``pass``, a numeric
   ``score`` passes at 0.5 or more;
2. else a reply that starts with ``PASS`` or ``FAIL`` (the rest is the reason);
3. else the check fails, quoting the reply.

The judge is ``inp.judge(endpoint_name, messages) -> str``, an async callable the runner
provides (it records the judge's call, which is not counted as a pipeline step). Verdicts
are model-graded: relcheck cannot promise promptfoo's verdicts, and ``not-llm-rubric`` is
not offered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ._common import CheckValueError, excerpt, held, subject
from .base import CheckInput, Verdict

SYSTEM_PROMPT = """\
You are grading output according to a user-specified rubric. If the statement in the rubric \
is true, then the output passes the test. You respond with a JSON object with this \
structure: {reason: string, pass: boolean, score: number}

Examples:

<Output>Hello world</Output>
<Rubric>Content contains a greeting</Rubric>
{"reason": "the content contains the word 'Hello'", "pass": true, "score": 1.0}

<Output>Avast ye swabs, repel the invaders!</Output>
<Rubric>Does not speak like a pirate</Rubric>
{"reason": "'avast ye' is a common pirate term", "pass": false, "score": 0.0}"""

_TRUTHY = re.compile(r"^(true|yes|pass|y)$", re.IGNORECASE)
_LEADING = re.compile(r"^\W*(PASS|FAIL)(?:ED)?\b\W*(.*)$", re.IGNORECASE | re.DOTALL)


def judge_messages(output: str, rubric: str) -> list[dict[str, str]]:
    """The chat messages sent to the judge."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"<Output>\n{output}\n</Output>\n<Rubric>\n{rubric}\n</Rubric>"},
    ]


def parse_judgement(reply: str) -> tuple[bool, str] | None:
    """``(passed, reason)`` from the judge's reply, or ``None`` when it says neither."""
    for obj in _json_objects(reply):
        if "pass" not in obj and "score" not in obj:
            continue
        reason = obj.get("reason")
        reason = reason if isinstance(reason, str) else ""
        if "pass" in obj:
            raw = obj["pass"]
            passed = raw if isinstance(raw, bool) else bool(_TRUTHY.match(str(raw).strip()))
            return passed, reason
        score = obj["score"]
        if isinstance(score, (int, float)) and not isinstance(score, bool):
            return score >= 0.5, reason
    match = _LEADING.match(reply.strip())
    if match:
        return match.group(1).upper() == "PASS", match.group(2).strip()
    return None


def _json_objects(text: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    start = text.find("{")
    while start != -1 and len(found) < 8:
        try:
            obj, end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        start = text.find("{", end)
    return found


async def llm_rubric(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """Ask the judge endpoint whether the output satisfies ``rubric``."""
    endpoint, rubric = spec.get("endpoint"), spec.get("rubric")
    if not isinstance(endpoint, str) or not endpoint:
        raise CheckValueError(f"llm-rubric needs the judge's endpoint name, got {excerpt(endpoint)}")
    if not isinstance(rubric, str) or not rubric.strip():
        raise CheckValueError(f"llm-rubric needs a non-empty rubric, got {excerpt(rubric)}")
    if inp.judge is None:
        raise CheckValueError("llm-rubric has no judge to call (the runner gave none)")
    reply = await inp.judge(endpoint, judge_messages(subject(inp), rubric))
    text = reply if isinstance(reply, str) else json.dumps(reply, default=str)
    judged = parse_judgement(text)
    if judged is None:
        return Verdict.fail(f"judge reply could not be read as pass/fail: {excerpt(text)}")
    passed, reason = judged
    if passed:
        return held(f"judge: {reason or 'pass'}")
    return Verdict.fail(f"judge: {reason or 'fail'} (rubric {excerpt(rubric)})")
