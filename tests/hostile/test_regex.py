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


@pytest.mark.parametrize(
    "spec, where",
    [
        ({"type": "json-schema", "value": {"type": "string", "pattern": "^(a|a)*$"}}, "the schema's pattern"),
        (
            {
                "type": "json-schema",
                "value": {"type": "object", "patternProperties": {"^(a|a)*$": {"type": "string"}}},
            },
            "the schema's patternProperties key",
        ),
        ({"type": "json-path", "path": '$.items[?name =~ "^(a|a)*$"]'}, "the JSONPath filter's regex"),
    ],
)
def test_regexes_in_schemas_and_jsonpath_filters_are_bounded_too(short_timeout, spec, where):
    """jsonschema's ``pattern``/``patternProperties`` and jsonpath-ng's ``=~`` call stdlib
    ``re`` with no timeout: relcheck matches them with the same budget as the regex check."""
    outputs = {
        "the schema's pattern": json.dumps(SUBJECT),
        "the schema's patternProperties key": json.dumps({SUBJECT: "x"}),
        "the JSONPath filter's regex": json.dumps({"items": [{"name": SUBJECT}]}),
    }
    verdict = judge(spec, outputs[where])
    assert not verdict.passed
    assert f"{where} " in verdict.reason and "did not finish within 0.05 s" in verdict.reason


def test_bounded_schema_and_jsonpath_regexes_still_match():
    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": "^o-[0-9]+$"}}}
    assert judge({"type": "json-schema", "value": schema}, '{"id": "o-17"}').passed
    failed = judge({"type": "json-schema", "value": schema}, '{"id": "x-17"}')
    assert not failed.passed and "does not match" in failed.reason
    props = {"type": "object", "patternProperties": {"^n_": {"type": "number"}}}
    assert judge({"type": "json-schema", "value": props}, '{"n_a": 1, "s": "x"}').passed
    assert not judge({"type": "json-schema", "value": props}, '{"n_a": "1"}').passed
    path = '$.items[?name =~ "^ab"].id'
    assert judge(
        {"type": "json-path", "path": path, "value": 2}, '{"items": [{"name": "x", "id": 1}, {"name": "abc", "id": 2}]}'
    ).passed
    assert not judge({"type": "json-path", "path": path}, '{"items": [{"name": "xab", "id": 1}]}').passed
