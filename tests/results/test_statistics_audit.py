"""Issue #12: figures that mean exactly what they say, checked against formulas and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from reliability_cli import stats
from reliability_cli.results.compare import baseline_gates, compare
from reliability_cli.results.planning import plan

from .helpers import doc_from_fail_idx, run, write_pipeline


def test_tango_at_a_zero_margin_is_mcnemars_score_test():
    for b, c, n in [(12, 4, 200), (30, 30, 500), (5, 0, 50), (0, 7, 80)]:
        assert stats.tango_paired_test(b, c, n, 0.0) == pytest.approx(norm.sf((b - c) / math.sqrt(b + c)))


def test_tango_is_monotone_in_the_margin_and_one_sided():
    ps = [stats.tango_paired_test(60, 20, 1000, m) for m in (0.0, 0.01, 0.02, 0.03, 0.04, 0.05)]
    assert ps == sorted(ps)  # a larger tolerance is harder to exceed
    assert stats.tango_paired_test(20, 60, 1000, 0.0) > 0.99  # an improvement is no regression


def _paired(rng, n, drop, discordant=0.10, base=0.9):
    """Pairs with a true drop: P(only baseline passed) − P(only candidate passed) = drop."""
    u = rng.random(n)
    b_only = u < discordant / 2 + drop / 2
    c_only = (u >= discordant / 2 + drop / 2) & (u < discordant)
    rest = ~(b_only | c_only)
    both = rest & (rng.random(n) < (base - (discordant / 2 + drop / 2)) / (1 - discordant))
    base_pass = b_only | both
    cand_pass = c_only | both
    return base_pass, cand_pass


def _gate_fails(base_pass, cand_pass, max_drop):
    base = doc_from_fail_idx(["a"], np.where(base_pass, 1, 0))
    cand = doc_from_fail_idx(["a"], np.where(cand_pass, 1, 0))
    return not all(g.passed for g in baseline_gates(base, cand, max_drop, 0.05))


@pytest.mark.slow
@pytest.mark.parametrize("drop", [0.0, 0.01, 0.02])
def test_a_true_drop_within_max_drop_fails_at_most_alpha_of_the_time(drop):
    rng = np.random.default_rng(int(drop * 1000) + 1)
    reps = 300
    failures = sum(_gate_fails(*_paired(rng, 1000, drop), max_drop=0.02) for _ in range(reps))
    # α = 0.05 family-wise; within simulation error (3 standard errors)
    assert failures / reps <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)


@pytest.mark.slow
def test_the_gate_catches_a_seven_point_drop_at_1000_units():
    rng = np.random.default_rng(7)
    reps = 100
    caught = sum(_gate_fails(*_paired(rng, 1000, 0.07, discordant=0.12), max_drop=0.02) for _ in range(reps))
    assert caught / reps >= 0.99


def test_every_baseline_gate_says_the_drop_it_can_detect():
    rng = np.random.default_rng(3)
    base_pass, cand_pass = _paired(rng, 940, 0.0)
    base = doc_from_fail_idx(["a"], np.where(base_pass, 1, 0))
    cand = doc_from_fail_idx(["a"], np.where(cand_pass, 1, 0))
    for gate in baseline_gates(base, cand, 0.02, 0.05):
        assert gate.detectable_drop is not None and 0.02 < gate.detectable_drop < 0.1
        assert f"with {gate.n_shared} paired units this gate detects drops ≥" in gate.detail
    # the formula: margin + (z_{1-α/m} + z_0.8)·√(ψ/n), m = 2 rows (end to end and the step)
    doc = compare(base, cand, 0.02, 0.05)
    row = doc.rows[0]
    psi = (row.discordant.base_only_passed + row.discordant.cand_only_passed) / row.n_shared
    expected = 0.02 + (norm.ppf(1 - 0.025) + norm.ppf(0.8)) * math.sqrt(psi / row.n_shared)
    assert row.detectable_drop == pytest.approx(expected)


def test_the_interval_shown_matches_the_verdict():
    """Each row shows the one-sided bound at its Holm level: a regressed row's bound on the
    drop clears max_drop, and a row whose bound stays within it is not regressed."""
    rng = np.random.default_rng(11)
    agree = 0
    for drop in (0.0, 0.02, 0.04, 0.06, 0.08):
        for _ in range(10):
            base_pass, cand_pass = _paired(rng, 600, drop)
            doc = compare(
                doc_from_fail_idx(["a"], np.where(base_pass, 1, 0)),
                doc_from_fail_idx(["a"], np.where(cand_pass, 1, 0)),
                0.02,
                0.05,
            )
            for r in doc.rows:
                lower_drop = -r.ci.high  # delta = −drop: the upper bound of delta
                assert r.ci.sided == "upper" and r.ci.level <= 0.05
                agree += (lower_drop > 0.02) == r.regressed
    assert agree >= 98  # of 100 rows: two different methods (score test, Newcombe) may differ at the edge


def test_newcombe_with_the_continuity_correction_covers_at_n_30():
    rng = np.random.default_rng(5)
    n, reps, covered = 30, 2000, 0
    probs = np.array([0.7, 0.1, 0.05, 0.15])  # both, only first, only second, neither
    truth = (probs[0] + probs[2]) - (probs[0] + probs[1])
    for _ in range(reps):
        both, b, c, neither = rng.multinomial(n, probs)
        low, high = stats.newcombe_paired_difference(both, b, c, neither, 0.95)
        covered += low <= truth <= high
    assert covered / reps >= 0.95


def test_trials_narrow_the_clustered_interval_and_keep_coverage():
    rng = np.random.default_rng(9)
    m, reps = 80, 600
    width = {1: [], 5: []}
    covered = 0
    for _ in range(reps):
        p_case = rng.beta(8, 1, m)  # cases differ in difficulty
        truth = float(np.mean(p_case))  # the estimand: the mean per-case rate of these cases
        for k in (1, 5):
            passes = rng.binomial(k, p_case)
            rate, (low, high) = stats.clustered_rate_ci(list(passes / k), 0.95, units=m * k)
            width[k].append(high - low)
            if k == 5:
                covered += low <= truth <= high
    assert np.mean(width[5]) < 0.8 * np.mean(width[1])  # K trials add the precision they hold
    assert covered / reps >= 0.93  # nominal 95% within simulation error
    # one trial per case is exactly Wilson over cases
    shares = [1.0] * 70 + [0.0] * 10
    _, (lo, hi) = stats.clustered_rate_ci(shares, 0.95)
    wl, wh = proportion_confint(70, 80, method="wilson")
    assert (lo, hi) == pytest.approx((wl, wh))


def test_plan_models_retry_on_and_its_prediction_holds(tmp_path):
    """A step that retries only errors cannot be lifted past its wrong answers; the plan
    says so, and running its budget lands inside the prediction's interval."""
    steps = [("wrong", 0.10, "wrong"), ("flaky", 0.20, "error")]
    pipeline = write_pipeline(tmp_path / "p", steps, 1000, seed=4)
    text = pipeline.read_text().replace(
        "defaults:\n  retry: {max_attempts: 1, backoff: {initial_s: 0}}",
        "defaults:\n  retry: {max_attempts: 1, on: [error], backoff: {initial_s: 0}}",
    )
    pipeline.write_text(text)
    measured = run(pipeline, tmp_path / "r0").results
    doc = plan(measured, 0.95, max_retries=3)
    assert not doc.reachable  # 10% wrong answers are never retried: at most about 90%
    assert doc.blocking_steps == ("wrong",) and "retry.on [error]" in doc.not_helped[0]
    budget = {s.step: s.retries for s in doc.steps}
    assert budget["flaky"] >= 1
    # run the planned budget and check the prediction
    planned = text.replace(
        "    endpoint: ep_flaky\n", f"    endpoint: ep_flaky\n    retry: {{max_attempts: {budget['flaky'] + 1}}}\n"
    )
    pipeline.write_text(planned)
    after = run(pipeline, tmp_path / "r1").results  # same seed: the first attempts are the measured ones
    predicted = doc.end_to_end_planned
    low, high = stats.wilson(after.end_to_end.passed, after.end_to_end.total, 0.99)
    assert low <= predicted <= high
    assert predicted < 0.92  # not the 0.95+ a model ignoring retry.on would promise
