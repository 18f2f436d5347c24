"""A catastrophic regex in a check cannot hang a run (issue 10, item 17): matching has a
timeout, and a check that times out fails with a reason saying so (``not-regex`` too, as an
invalid pattern does). The same bound covers the patterns of ``json-schema`` checks
(``pattern``, ``patternProperties``, and the keys ``additionalProperties`` and
``unevaluatedProperties`` skip) and ``json-path`` checks (``=~`` filters, ``sub()``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest

from reliability_cli.checks import CheckInput, _regex, run_check

SUBJECT = "a" * 40 + "b"


def judge(spec: dict, output: str):
    return asyncio.run(run_check(spec, CheckInput(output=output, text=output)))


@pytest.fixture
def short_timeout(monkeypatch):
    monkeypatch.setattr(_regex, "REGEX_TIMEOUT_S", 0.05)


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


# ------------------------------------------------- json-schema and json-path patterns

CATASTROPHIC = "^(a|a)*$"  # exponential for a backtracker, re's and the regex module's alike
LONG = "a" * 41 + "b"
D2020 = "https://json-schema.org/draft/2020-12/schema"
D2019 = "https://json-schema.org/draft/2019-09/schema"

STRUCTURED_CASES = {
    "pattern": ({"type": "json-schema", "value": {"type": "string", "pattern": CATASTROPHIC}}, json.dumps(LONG)),
    "issue-pattern": ({"type": "json-schema", "value": {"type": "string", "pattern": "^(a+)+$"}}, json.dumps(LONG)),
    "is-json-pattern": ({"type": "is-json", "value": {"type": "string", "pattern": CATASTROPHIC}}, json.dumps(LONG)),
    "patternProperties": (
        {"type": "json-schema", "value": {"type": "object", "patternProperties": {CATASTROPHIC: {}}}},
        json.dumps({LONG: 1}),
    ),
    "additionalProperties": (
        {
            "type": "json-schema",
            "value": {"type": "object", "patternProperties": {CATASTROPHIC: {}}, "additionalProperties": False},
        },
        json.dumps({LONG: 1}),
    ),
    "unevaluatedProperties-2020": (
        {
            "type": "json-schema",
            "value": {
                "$schema": D2020,
                "allOf": [{"patternProperties": {CATASTROPHIC: {}}}],
                "unevaluatedProperties": False,
            },
        },
        json.dumps({LONG: 1}),
    ),
    "unevaluatedProperties-2019": (
        {
            "type": "json-schema",
            "value": {"$schema": D2019, "patternProperties": {CATASTROPHIC: {}}, "unevaluatedProperties": False},
        },
        json.dumps({LONG: 1}),
    ),
    "filter": (
        {"type": "json-path", "path": f'$.items[?(@.name =~ "{CATASTROPHIC}")]'},
        json.dumps({"items": [{"name": LONG}]}),
    ),
    "issue-filter": (
        {"type": "json-path", "path": '$.items[?(@.name =~ "^(a+)+$")]'},
        json.dumps({"items": [{"name": LONG}]}),
    ),
    "not-filter": (
        {"type": "not-json-path", "path": f'$.items[?(@.name =~ "{CATASTROPHIC}")]'},
        json.dumps({"items": [{"name": LONG}]}),
    ),
    "sub": ({"type": "json-path", "path": f"$.name.`sub(/{CATASTROPHIC}/, x)`"}, json.dumps({"name": LONG})),
    # ordinary patterns still match as before
    "pattern-ok": ({"type": "json-schema", "value": {"type": "string", "pattern": "^a+b$"}}, json.dumps(LONG)),
    "pattern-no": ({"type": "json-schema", "value": {"type": "string", "pattern": "^a+c$"}}, json.dumps(LONG)),
    "additional-no": (
        {"type": "json-schema", "value": {"patternProperties": {"^x": {}}, "additionalProperties": False}},
        json.dumps({"xa": 1, "b": 2}),
    ),
    "unevaluated-no": (
        {
            "type": "json-schema",
            "value": {"$schema": D2020, "patternProperties": {"^x": {}}, "unevaluatedProperties": False},
        },
        json.dumps({"xa": 1, "b": 2}),
    ),
    "filter-ok": (
        {"type": "json-path", "path": '$.items[?(@.name =~ "^a+b$")].name', "value": LONG},
        json.dumps({"items": [{"name": "c"}, {"name": LONG}]}),
    ),
    "sub-ok": ({"type": "json-path", "path": "$.name.`sub(/a+/, x)`", "value": "xb"}, json.dumps({"name": LONG})),
}

_JUDGE_ALL = textwrap.dedent("""
    import asyncio, json, sys
    from reliability_cli.checks import CheckInput, _regex, run_check
    _regex.REGEX_TIMEOUT_S = 0.05
    out = {}
    for name, (spec, output) in json.load(sys.stdin).items():
        verdict = asyncio.run(run_check(spec, CheckInput(output=output, text=output)))
        out[name] = [verdict.passed, verdict.reason]
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def structured_verdicts() -> dict:
    """Every case judged in one subprocess: stdlib ``re`` would backtrack for hours, so the
    generous timeout only guards against a hang (the assertions are on the verdicts)."""
    done = subprocess.run(
        [sys.executable, "-c", _JUDGE_ALL],
        input=json.dumps(STRUCTURED_CASES),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("case", "where"),
    [
        ("pattern", "schema pattern"),
        ("is-json-pattern", "schema pattern"),
        ("patternProperties", "schema pattern"),
        ("additionalProperties", "schema pattern"),
        ("unevaluatedProperties-2020", "schema pattern"),
        ("unevaluatedProperties-2019", "schema pattern"),
        ("filter", "JSONPath regex"),
        ("not-filter", "JSONPath regex"),
        ("sub", "JSONPath regex"),
    ],
)
def test_a_catastrophic_structured_pattern_fails_with_a_timeout_reason(structured_verdicts, case, where):
    passed, reason = structured_verdicts[case]
    assert not passed  # not-json-path too: an unusable check never passes
    assert (
        reason == f'{where} "{CATASTROPHIC}" did not finish within 0.05 s on a string of 42 characters '
        "(catastrophic backtracking?)"
    )


def test_the_issues_pattern_is_answered_in_structured_checks(structured_verdicts):
    """``^(a+)+$`` against ``'a' * 41 + 'b'``, the issue's reproduction: an ordinary verdict."""
    assert structured_verdicts["issue-pattern"] == [
        False,
        f"JSON does not match the schema: at $: '{LONG}' does not match '^(a+)+$'",
    ]
    passed, reason = structured_verdicts["issue-filter"]
    assert not passed and reason.startswith('path $.items[?(@.name =~ "^(a+)+$")] matched nothing')


def test_ordinary_structured_patterns_match_as_before(structured_verdicts):
    assert structured_verdicts["pattern-ok"] == [True, None]
    assert structured_verdicts["pattern-no"][1].endswith(f"'{LONG}' does not match '^a+c$'")
    assert structured_verdicts["additional-no"][1].endswith("'b' does not match any of the regexes: '^x'")
    assert structured_verdicts["unevaluated-no"][1].endswith(
        "Unevaluated properties are not allowed ('b' was unexpected)"
    )
    assert structured_verdicts["filter-ok"] == [True, None]
    assert structured_verdicts["sub-ok"] == [True, None]


def test_one_checks_matches_share_its_time(monkeypatch):
    """Inside ``budget()`` (one json-schema or json-path check on one output) every match gets
    only the time left, and none starts once it is used up: fifty strings cannot take fifty
    timeouts. A fake clock advances 0.02 s per match."""
    monkeypatch.setattr(_regex, "REGEX_TIMEOUT_S", 0.05)
    now = [100.0]
    monkeypatch.setattr(_regex, "_clock", lambda: now[0])
    given: list[float] = []

    class Slow:
        pattern = "slow"

        def search(self, text, timeout):
            given.append(round(timeout, 6))
            now[0] += 0.02
            return None

    with _regex.budget(), pytest.raises(_regex.RegexTimeout) as raised:
        for _ in range(50):
            _regex.search(Slow(), LONG)
    assert given == [0.05, 0.03, 0.01]
    assert (raised.value.pattern, raised.value.length, raised.value.seconds) == ("slow", 42, 0.05)
    given.clear()
    for _ in range(3):  # outside a budget (the regex check), each output gets the full time
        _regex.search(Slow(), LONG)
    assert given == [0.05, 0.05, 0.05]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ('$.items[?(@.name =~ "(")]', "missing ), unterminated subpattern at position 0"),
        ("$.items[?(@.name =~ 5)]", "the =~ operator needs a string pattern, got 5"),
    ],
)
def test_a_bad_filter_pattern_is_an_invalid_path(path, message):
    from reliability_cli.checks.registry import validate_spec

    verdict = judge({"type": "json-path", "path": path}, "{}")
    assert not verdict.passed and message in verdict.reason
    assert any(message in p for p in validate_spec({"type": "json-path", "path": path}))
