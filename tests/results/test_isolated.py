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
    assert e2e["independence_prediction"] == pytest.approx(steps["first"]["isolated"]["rate"] * iso["rate"])
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
    # one model with plan: anchored to today's measured rate, one more retry as a fresh draw
    assert w["step_rate_independent"] == pytest.approx(1 - (1 - step["rate"]) * (1 - step["first_try_rate"]))


def test_two_retries_are_modelled_as_two_retries(tmp_path):
    """Issue #12's reproduction: six steps failing 40% of attempts, two retries each."""
    steps = [(f"s{i}", 0.4, "wrong") for i in range(6)]
    pipeline = write_pipeline(tmp_path / "p", steps, 1000, seed=7002)
    outcome = run(pipeline, tmp_path / "r", retries=2)
    for s in outcome.results.steps:
        p = s.first_try_rate
        # over r = 2 retries independence predicts 1 - (1 - p)^2 ≈ 0.84, not p ≈ 0.6
        assert s.recovery_rate_independent == pytest.approx(1 - (1 - p) ** 2)
        assert s.recovery_rate == pytest.approx(0.84, abs=0.08)  # the attempts are independent
    projected = []
    for w in outcome.results.what_if:
        s = outcome.results.step(w.step)
        q = 1 - (1 - s.recovery_rate) ** 0.5  # per-retry recovery from the measured rate over 2 retries
        assert w.step_rate_measured == pytest.approx(1 - (1 - s.rate) * (1 - q))
        assert w.step_rate_measured == pytest.approx(1 - 0.4**4, abs=0.035)
        projected.append(w.step_rate_measured)
    # the true rate with three retries is 1 - 0.4^4 = 0.9744; the old model said about 0.991
    assert sum(projected) / len(projected) == pytest.approx(1 - 0.4**4, abs=0.01)
