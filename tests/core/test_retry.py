"""Retry policy (SPEC §4): what is retried, what is not, and how it is counted."""

from __future__ import annotations

import json
import textwrap

import pytest

from reliability_cli.endpoints import is_retryable_error
from reliability_cli.results.schema import GateOverrides
from reliability_cli.runner import RunOptions, run_eval


def pipeline(tmp_path, failure: str, on: str, fail_rate: float = 0.3, attempts: int = 3):
    p = tmp_path / "p.yaml"
    p.write_text(
        textwrap.dedent(f"""\
        version: 1
        name: retry
        seed: 3
        endpoints:
          sim: {{type: mock, fail_rate: {fail_rate}, failure: {failure}, reply: "{{{{ expect.a }}}}"}}
        defaults:
          retry: {{backoff: {{initial_s: 0}}}}
          timeout_s: 5
        steps:
          - id: a
            endpoint: sim
            prompt: "{{{{ vars.q }}}}"
            checks: [{{type: equals, value: "{{{{ expect.a }}}}"}}]
            retry: {{max_attempts: {attempts}, on: [{on}]}}
        gates:
          max_error_rate: 1.0
        """)
    )
    e = tmp_path / "c.jsonl"
    e.write_text(
        "".join(json.dumps({"id": f"c{i}", "vars": {"q": "x"}, "expect": {"a": "ok"}}) + "\n" for i in range(300))
    )
    return str(p), str(e)


@pytest.mark.parametrize(
    ("failure", "on", "retried"),
    [
        ("wrong", "fail", True),
        ("wrong", "error", False),
        ("error", "error", True),
        ("error", "fail", False),
        ("timeout", "error", True),
        ("malformed", "error", True),
    ],
)
def test_what_is_retried(tmp_path, failure, on, retried):
    p, e = pipeline(tmp_path, failure, on)
    r = run_eval(p, RunOptions(evalsets=[e], out=str(tmp_path / "r"))).results.to_dict()
    step = r["steps"][0]
    first_failures = step["reached"] - round(step["first_try_rate"] * step["reached"])
    assert first_failures > 50
    if retried:
        assert step["attempts"] > step["reached"]
        assert step["retry_recovered"] > 0
        # measured recovery matches independence for a memoryless mock: 1 - 0.3^2 given a retry budget of 2
        assert step["recovery_rate"] == pytest.approx(1 - 0.3**2, abs=0.08)
    else:
        assert step["attempts"] == step["reached"]
        assert step["recovery_rate"] is None
    kinds = step["error_kinds"]
    expected_kind = {"error": "http_500", "timeout": "timeout", "malformed": "parse"}.get(failure)
    if expected_kind:
        assert set(kinds) == {expected_kind}
        assert kinds[expected_kind] == step["attempt_outcomes"]["error"]
    assert sum(step["attempt_outcomes"].values()) == step["attempts"]


def test_retries_flag_overrides_max_attempts(tmp_path):
    p, e = pipeline(tmp_path, "wrong", "fail", attempts=1)
    r = run_eval(p, RunOptions(evalsets=[e], out=str(tmp_path / "r"), retries=2)).results.to_dict()
    assert r["steps"][0]["max_attempts"] == 3
    assert max(u["attempts"] for u in r["units"]) == 3


@pytest.mark.parametrize(
    ("kind", "retry"),
    [
        ("timeout", True),
        ("connect", True),
        ("protocol", True),
        ("parse", True),
        ("exception", True),
        ("http_500", True),
        ("http_503", True),
        ("http_408", True),
        ("http_409", True),
        ("http_425", True),
        ("http_400", False),
        ("http_401", False),
        ("http_403", False),
        ("http_404", False),
        ("http_422", False),
        ("template", False),
        ("replay_miss", False),
    ],
)
def test_retryable_error_kinds(kind, retry):
    assert is_retryable_error(kind) is retry


def test_infrastructure_errors_above_budget_exit_3(tmp_path):
    p, e = pipeline(tmp_path, "error", "fail", fail_rate=0.5, attempts=1)
    out = run_eval(
        p, RunOptions(evalsets=[e], out=str(tmp_path / "r"), gate_overrides=GateOverrides(max_error_rate=0.1))
    )
    assert out.exit_code == 3 and out.results.to_dict()["verdict"] == "error"
    assert out.results.to_dict()["end_to_end"]["error_rate"] > 0.4
