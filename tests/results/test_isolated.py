"""Isolated mode: each step measured on every unit with gold upstream outputs."""

from __future__ import annotations

import pytest

from reliability_cli.reports import render

from .helpers import run, write_pipeline


def test_isolated_mode_measures_step_two_on_all_units(tmp_path):
    pipeline = write_pipeline(tmp_path / "p", [("first", 0.6, "wrong"), ("second", 0.05, "wrong")], 400)
    outcome = run(pipeline, tmp_path / "r", isolate=True, concurrency=32)
    steps = {s["id"]: s for s in outcome.results.to_dict()["steps"]}
    second = steps["second"]
    assert second["reached"] < 220  # chained: only units that passed `first`
    iso = second["isolated"]
    assert iso["reached"] == 400 and iso["skipped_no_gold"] == 0
    assert iso["ci"]["low"] <= 0.95 <= iso["ci"]["high"]
    assert steps["first"]["isolated"]["reached"] == 400
    e2e = outcome.results.to_dict()["end_to_end"]
    assert e2e["independence_prediction"] == pytest.approx(
        steps["first"]["isolated"]["rate"] * iso["rate"])
    assert e2e["independence_gap"] == pytest.approx(e2e["rate"] - e2e["independence_prediction"])
    assert outcome.results.to_dict()["run"]["requests"] > 400 + 400  # both passes were called
    text = render(outcome.results, "terminal", width=80)
    assert "Isolated pass" in text and "independence" in text
    line = next(t for t in text.splitlines() if t.startswith("second") and f"{iso['passed']}/400" in t)
    assert f"{iso['rate'] * 100:.1f}%" in line
    md = render(outcome.results, "markdown")
    assert "| isolated |" in md.replace("isolated |", "| isolated |", 1) or "isolated" in md


def test_recovery_rate_against_independence(tmp_path):
    pipeline = write_pipeline(tmp_path / "p", [("a", 0.2, "wrong")], 300)
    outcome = run(pipeline, tmp_path / "r", retries=1)
    (step,) = outcome.results.to_dict()["steps"]
    assert step["recovery_rate"] is not None
    assert step["recovery_rate_independent"] == pytest.approx(step["first_try_rate"])
    (w,) = outcome.results.to_dict()["what_if"]
    assert w["step_rate_independent"] == pytest.approx(1 - (1 - step["first_try_rate"]) ** 3)
