"""The python check (trusted code) and llm-rubric (a judge model)."""

from __future__ import annotations

import asyncio
import json
import textwrap

import pytest

from reliability_cli.checks import CheckCodeError, CheckInput, run_check
from reliability_cli.checks.model_graded import parse_judgement

from .helpers import check, passes, reason

MODULE = """
import asyncio

def is_upper(output, context):
    return output.isupper()

def with_reason(output, context):
    return (output == context["value"], f"wanted {context['value']}, got {output}")

async def async_check(output, context):
    await asyncio.sleep(0)
    return output == context["vars"]["want"]

def boom(output, context):
    raise ValueError("kaboom")

def weird(output, context):
    return "yes"

def grading_result(output, context):
    return {"pass": False, "reason": "promptfoo style"}

def sees_context(output, context):
    return context["text"] == "RAW" and context["latency_ms"] == 5.0 and context["step"]["id"] == "s"

not_callable = 3
"""


@pytest.fixture
def checks_module(tmp_path, monkeypatch):
    (tmp_path / "relcheck_test_checks.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "relcheck_test_checks"


def test_python_bool(checks_module):
    spec = {"type": "python", "callable": f"{checks_module}:is_upper"}
    assert passes(spec, "LOUD")
    assert reason(spec, "quiet") == f"python check {checks_module}:is_upper returned False"
    assert passes({**spec, "type": "not-python"}, "quiet")


def test_python_bool_and_reason(checks_module):
    spec = {"type": "python", "callable": f"{checks_module}:with_reason", "value": "a"}
    assert passes(spec, "a")
    assert reason(spec, "b") == "wanted a, got b"
    assert reason({**spec, "type": "not-python"}, "a") == "wanted a, got a"


def test_python_async_and_context(checks_module):
    spec = {"type": "python", "callable": f"{checks_module}:async_check"}
    assert passes(spec, "x", context={"vars": {"want": "x"}})
    assert not passes(spec, "y", context={"vars": {"want": "x"}})
    seen = {"type": "python", "callable": f"{checks_module}:sees_context"}
    assert passes(seen, "out", text="RAW", latency_ms=5.0, context={"step": {"id": "s"}})


def test_python_grading_result_mapping(checks_module):
    assert reason({"type": "python", "callable": f"{checks_module}:grading_result"}, "x") == ("promptfoo style")


def test_python_exception_propagates_as_check_code_error(checks_module):
    with pytest.raises(CheckCodeError, match="raised ValueError: kaboom"):
        check({"type": "python", "callable": f"{checks_module}:boom"}, "x")
    with pytest.raises(CheckCodeError, match="kaboom"):
        check({"type": "not-python", "callable": f"{checks_module}:boom"}, "x")


def test_python_bad_return_import_and_target(checks_module):
    with pytest.raises(CheckCodeError, match="expected bool or"):
        check({"type": "python", "callable": f"{checks_module}:weird"}, "x")
    with pytest.raises(CheckCodeError, match="cannot import"):
        check({"type": "python", "callable": "no_such_module_xyz:fn"}, "x")
    with pytest.raises(CheckCodeError, match="cannot import"):
        check({"type": "python", "callable": f"{checks_module}:missing"}, "x")
    with pytest.raises(CheckCodeError, match="not callable"):
        check({"type": "python", "callable": f"{checks_module}:not_callable"}, "x")


# ------------------------------------------------------------------ llm-rubric


class FakeJudge:
    def __init__(self, reply):
        self.reply = reply
        self.calls = []

    async def __call__(self, endpoint, messages):
        await asyncio.sleep(0)
        self.calls.append((endpoint, messages))
        return self.reply


def _rubric(reply, output="Hello there", rubric="greets the user"):
    judge = FakeJudge(reply)
    spec = {"type": "llm-rubric", "endpoint": "judge", "rubric": rubric}
    text = output if isinstance(output, str) else json.dumps(output)
    verdict = asyncio.run(run_check(spec, CheckInput(output=output, text=text, judge=judge)))
    return verdict, judge


def test_llm_rubric_pass_and_prompt():
    verdict, judge = _rubric('{"reason": "it greets", "pass": true, "score": 1}')
    assert verdict.passed
    endpoint, messages = judge.calls[0]
    assert endpoint == "judge"
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "rubric" in messages[0]["content"] and '"pass"' in messages[0]["content"]
    assert messages[1]["content"] == "<Output>\nHello there\n</Output>\n<Rubric>\ngreets the user\n</Rubric>"


def test_llm_rubric_fail_reason():
    verdict, _ = _rubric('{"pass": false, "reason": "no greeting"}')
    assert not verdict.passed
    assert verdict.reason == 'judge: no greeting (rubric "greets the user")'


def test_llm_rubric_lenient_parsing():
    assert _rubric('Sure!\n```json\n{"pass": true, "reason": "ok"}\n```')[0].passed
    assert _rubric('{"pass": "yes", "reason": "ok"}')[0].passed
    assert not _rubric('{"pass": "no"}')[0].passed
    assert not _rubric('{"score": 0.2, "reason": "weak"}')[0].passed
    assert _rubric('{"score": 0.9}')[0].passed
    assert _rubric("PASS - the reply greets")[0].passed
    verdict = _rubric("**FAIL**: rude")[0]
    assert not verdict.passed and "rude" in verdict.reason


def test_llm_rubric_garbage_reply_fails():
    verdict, _ = _rubric("I think it is fine, probably.")
    assert not verdict.passed
    assert verdict.reason.startswith("judge reply could not be read as pass/fail:")
    assert not _rubric("")[0].passed
    assert not _rubric('{"unrelated": 1}')[0].passed


def test_llm_rubric_judge_error_fails_the_check():
    async def broken(endpoint, messages):
        raise RuntimeError("judge endpoint judge: http_500")

    spec = {"type": "llm-rubric", "endpoint": "judge", "rubric": "r"}
    verdict = asyncio.run(run_check(spec, CheckInput(output="x", text="x", judge=broken)))
    assert verdict.reason == "check llm-rubric raised RuntimeError: judge endpoint judge: http_500"


def test_llm_rubric_structured_output_is_sent_as_text():
    _, judge = _rubric('{"pass": true}', output={"a": 1})
    assert '<Output>\n{"a": 1}\n</Output>' in judge.calls[0][1][1]["content"]


def test_parse_judgement_first_object_with_pass():
    assert parse_judgement('{"note": 1} then {"pass": false, "reason": "r"}') == (False, "r")
    assert parse_judgement("no verdict here") is None
