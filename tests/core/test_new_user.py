"""What a new user tripped over (issue 11, item 9): the cost line of ``validate``, ``init``
run twice, and "gap −0.0 pts" under ``--isolate``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import ROOT, SIX

SUPPORT = ROOT / "evalsets" / "support-agent" / "pipeline.yaml"
KEYS = {"OPENAI_API_KEY": "sk-test-not-used", "ANTHROPIC_API_KEY": "sk-ant-test-not-used"}


# ---------------------------------------------------------------- validate: the bound and the expected cost


def test_validate_gives_expected_cost_beside_the_bound_and_what_each_assumes(cli) -> None:
    code, out, err = cli("validate", SUPPORT, env=KEYS)
    assert code == 0, err
    line = re.search(r"^cost \(estimate\): expected about \$([\d.]+), at most \$([\d.]+)$", out, re.M)
    assert line, out
    expected, bound = float(line[1]), float(line[2])
    assert 0 < expected < bound
    assert "one attempt per step and judge, replies of about 256 tokens" in out
    assert "every attempt retried to max_attempts, every reply max_tokens long" in out
    assert "requests, at most $" not in out  # the bare bound is no longer printed on its own


def test_cost_figures_follow_their_assumptions(tmp_path: Path) -> None:
    from reliability_cli.runner import RunOptions
    from reliability_cli.runner.validation import validate

    (tmp_path / "cases.jsonl").write_text('{"id": "a", "vars": {"q": "' + "x" * 400 + '"}}\n')
    (tmp_path / "p.yaml").write_text(
        "version: 1\nname: priced\nevalset: cases.jsonl\n"
        "endpoints:\n  m: {type: mock, price: {input: 1.0, output: 10.0}}\n"
        "defaults:\n  retry: {max_attempts: 3}\n"
        "steps:\n  - id: s\n    endpoint: m\n    prompt: '{{ vars.q }}'\n    params: {max_tokens: 1000}\n"
    )
    result = validate(str(tmp_path / "p.yaml"), RunOptions())
    prompt = len("{{ vars.q }}") / 4
    # bound: 3 attempts, 1000 output tokens each, the prompt plus 256 tokens for its values
    assert result.max_cost_usd == round(3 * ((prompt + 256) * 1.0 + 1000 * 10.0) / 1e6, 4)
    # expected: 1 attempt, 256 output tokens, the prompt plus the case's vars (400 chars = 100 tokens)
    assert result.expected_cost_usd == round(((prompt + 100) * 1.0 + 256 * 10.0) / 1e6, 4)
    doubled = validate(str(tmp_path / "p.yaml"), RunOptions(isolate=True))
    assert doubled.expected_cost_usd == round(2 * ((prompt + 100) * 1.0 + 256 * 10.0) / 1e6, 4)


def test_the_bound_counts_the_judge(cli) -> None:
    from reliability_cli.runner import RunOptions
    from reliability_cli.runner.validation import validate

    with pytest.MonkeyPatch.context() as mp:
        for k, v in KEYS.items():
            mp.setenv(k, v)
        result = validate(str(SUPPORT), RunOptions())
    # gpt-4o judge at $10/M output: 40 units × 2 attempts × 4096 tokens alone is $3.28
    assert result.max_cost_usd is not None and result.max_cost_usd > 3.28


def test_no_cost_line_without_prices(cli) -> None:
    code, out, _ = cli("validate", SIX)
    assert code == 0 and "cost" not in out


# ---------------------------------------------------------------- init run twice


def test_init_twice_suggests_running_it_or_a_new_directory(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("init", "bot")[0] == 0
    code, _, err = cli("init", "bot")
    assert code == 2 and "already exists" in err
    assert "relcheck eval bot/pipeline.yaml" in err
    assert "relcheck init bot-2" in err and "relcheck init bot\n" not in err + "\n"
    (tmp_path / "bot-2").mkdir()
    _, _, err = cli("init", "bot")
    assert "relcheck init bot-3" in err
    assert cli("init", "bot-3")[0] == 0  # the suggestion works


def test_init_twice_in_the_current_directory(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("init")[0] == 0
    code, _, err = cli("init", ".")
    assert code == 2
    assert "relcheck eval pipeline.yaml" in err and "relcheck init my-pipeline" in err
    assert not re.search(r"relcheck init \.?(;|\n|$)", err)


# ---------------------------------------------------------------- never "−0.0 pts"


@pytest.mark.parametrize("delta", [-0.0, -0.0004, -0.00049, 0.0004, -1e-12])
def test_points_never_prints_negative_zero(delta: float) -> None:
    from reliability_cli.textfmt import points

    assert points(delta) == "+0.0 pts"


def test_gap_and_its_interval_never_print_negative_zero() -> None:
    from reliability_cli.textfmt import independence_gap

    text = independence_gap({"independence_gap": -0.0004, "independence_gap_ci": {"low": -0.0003, "high": 0.0002}})
    assert text == "gap +0.0 pts (CI +0.0…+0.0 pts: consistent with independent steps)"
    assert independence_gap({"independence_gap": -0.0002}) == "gap +0.0 pts"


def test_isolate_reports_print_no_negative_zero(cli, tmp_path: Path) -> None:
    code, out, err = cli(
        "eval", SIX, "--isolate", "--limit", "60", "--out", tmp_path / "r", "--no-progress",
        "--markdown", tmp_path / "r.md", "--html", tmp_path / "r.html",
    )  # fmt: skip
    assert code in (0, 1), err
    assert "gap " in out
    for text in (out, (tmp_path / "r.md").read_text(), (tmp_path / "r.html").read_text()):
        assert not re.search(r"[-−]0\.0 pts", text)
