"""A catastrophic regex in a check cannot hang a run (issue 10, item 17): matching has a
timeout, and a check that times out fails with a reason saying so (``not-regex`` too, as an
invalid pattern does)."""

from __future__ import annotations

import asyncio
import json

import pytest

from reliability_cli.checks import CheckInput, run_check
from reliability_cli.checks import text as text_checks

SUBJECT = "a" * 40 + "b"


def judge(spec: dict, output: str):
    return asyncio.run(run_check(spec, CheckInput(output=output, text=output)))


@pytest.fixture
def short_timeout(monkeypatch):
    monkeypatch.setattr(text_checks, "REGEX_TIMEOUT_S", 0.05)


@pytest.mark.parametrize("kind", ["regex", "not-regex"])
def test_a_catastrophic_pattern_fails_with_a_timeout_reason(short_timeout, kind):
    verdict = judge({"type": kind, "value": "^(a|a)*$"}, SUBJECT)  # exponential for a backtracker
    assert not verdict.passed
    assert "did not finish within 0.05 s" in verdict.reason and "41 characters" in verdict.reason


def test_the_issues_pattern_is_answered(short_timeout):
    """``^(a+)+$`` on 41 characters (the reproduction in the issue): answered, not hung."""
    assert not judge({"type": "regex", "value": "^(a+)+$"}, SUBJECT).passed
    assert judge({"type": "not-regex", "value": "^(a+)+$"}, SUBJECT).passed
    assert judge({"type": "regex", "value": "^(a+)+$"}, "a" * 41).passed


def test_syntax_and_messages_stay_re_s():
    """Patterns are validated by stdlib re (same syntax, same messages), matched by regex."""
    assert judge({"type": "regex", "value": r"^(?<word>\w+)$"}, "héllo").passed  # JS named group
    assert (
        judge({"type": "regex", "value": "a$"}, "a").passed
        and not judge({"type": "regex", "value": "a$"}, "a\n").passed
    )
    bad = judge({"type": "regex", "value": "([a-z"}, "x")
    assert "unterminated character set at position 1" in bad.reason


def test_a_run_with_a_catastrophic_check_finishes(tmp_path, short_timeout):
    from reliability_cli.runner import RunOptions, run_eval

    (tmp_path / "cases.jsonl").write_text(json.dumps({"id": "c0"}) + "\n")
    (tmp_path / "pipeline.yaml").write_text(f"""version: 1
name: redos
evalset: cases.jsonl
endpoints:
  sim: {{type: mock, reply: "{SUBJECT}"}}
steps:
  - id: a
    endpoint: sim
    checks:
      - {{type: regex, value: "^(a|a)*$"}}
""")
    outcome = run_eval(str(tmp_path / "pipeline.yaml"), RunOptions(out=str(tmp_path / "run")))
    data = outcome.results.to_dict()
    assert data["units"][0]["outcome"] == "fail"
    assert "did not finish within" in json.dumps(data["steps"][0])
