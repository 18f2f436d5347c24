"""stats.py against scipy, statsmodels and the closed-form formulas."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import beta, binomtest, fisher_exact
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from reliability_cli import stats

GRID = [(x, n) for n in (1, 2, 3, 5, 10, 37, 100, 1000) for x in sorted({0, 1, 2, n // 2, n - 1, n}) if x <= n]
CONFIDENCES = [0.8, 0.9, 0.95, 0.99]


def test_module_imports_no_scipy_or_numpy():
    code = (
        "import sys, reliability_cli.stats; "
        "bad = [m for m in ('scipy', 'numpy', 'statsmodels') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("passed,n", GRID)
@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_wilson_matches_statsmodels(passed, n, confidence):
    lo, hi = proportion_confint(passed, n, alpha=1 - confidence, method="wilson")
    got = stats.wilson(passed, n, confidence)
    assert got == pytest.approx((lo, hi), abs=1e-9)
    assert 0.0 <= got[0] <= passed / n <= got[1] <= 1.0


def test_wilson_with_no_units_is_uninformative():
    assert stats.wilson(0, 0) == (0.0, 1.0)
    assert stats.clopper_pearson(0, 0) == (0.0, 1.0)
    assert stats.clopper_pearson_lower(0, 0) == 0.0


@pytest.mark.parametrize("bad", [(-1, 5), (6, 5), (1, -1)])
def test_counts_are_validated(bad):
    with pytest.raises(ValueError):
        stats.wilson(*bad)
    with pytest.raises(ValueError):
        stats.clopper_pearson_lower(*bad)


@pytest.mark.parametrize("passed,n", GRID)
@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_clopper_pearson_matches_statsmodels_beta(passed, n, confidence):
    assert stats.clopper_pearson(passed, n, confidence) == pytest.approx(
        proportion_confint(passed, n, alpha=1 - confidence, method="beta"), abs=1e-9
    )
    # one-sided at c is the lower end of the two-sided interval at alpha = 2(1 - c)
    two_sided_lo, _ = proportion_confint(passed, n, alpha=2 * (1 - confidence), method="beta")
    expected = 0.0 if passed == 0 else beta.ppf(1 - confidence, passed, n - passed + 1)
    lower = stats.clopper_pearson_lower(passed, n, confidence)
    assert lower == pytest.approx(expected, abs=1e-9)
    assert lower == pytest.approx(two_sided_lo, abs=1e-9)


def test_min_units_for_lower_bound_099_at_95():
    need = stats.min_units_for_lower_bound(0.97, 0.95)
    assert need == 99
    assert stats.clopper_pearson_lower(99, 99, 0.95) >= 0.97
    assert stats.clopper_pearson_lower(98, 98, 0.95) < 0.97  # 98 all-pass units do not clear
    assert beta.ppf(0.05, 99, 1) >= 0.97 > beta.ppf(0.05, 98, 1)


@pytest.mark.parametrize("threshold", [0.01, 0.5, 0.8, 0.9, 0.95, 0.97, 0.99, 0.999])
@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_min_units_is_the_first_n_that_clears(threshold, confidence):
    n = stats.min_units_for_lower_bound(threshold, confidence)
    assert stats.clopper_pearson_lower(n, n, confidence) >= threshold
    assert n == 1 or stats.clopper_pearson_lower(n - 1, n - 1, confidence) < threshold
    assert n == math.ceil(math.log(1 - confidence) / math.log(threshold))


def test_min_units_edges():
    assert stats.min_units_for_lower_bound(0.0, 0.95) == 0
    with pytest.raises(ValueError):
        stats.min_units_for_lower_bound(1.0, 0.95)


@pytest.mark.parametrize("passed,m", [(0, 5), (3, 5), (5, 5), (17, 40), (40, 40), (0, 1), (1, 1)])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_clustered_with_0_1_shares_is_wilson_and_cp_over_cases(passed, m, k):
    # K identical trials per case: shares are 0/1, and the sample is the m cases, not m·K trials
    shares = [1.0] * passed + [0.0] * (m - passed)
    rate, (lo, hi) = stats.clustered_rate_ci(shares, 0.95)
    assert rate == pytest.approx(passed / m, abs=1e-12)
    assert (lo, hi) == pytest.approx(stats.wilson(passed, m, 0.95), abs=1e-12)
    assert stats.clustered_lower_bound(shares, 0.95) == pytest.approx(
        stats.clopper_pearson_lower(passed, m, 0.95), abs=1e-12
    )
    if k > 1 and 0 < passed < m:
        pooled_lo, pooled_hi = stats.wilson(passed * k, m * k, 0.95)
        assert hi - lo > pooled_hi - pooled_lo  # never as narrow as n·K independent trials


@pytest.mark.parametrize("shares", [[0.5] * 10, [0.2, 0.4, 1.0, 0.6, 0.0, 1.0], [1 / 3] * 3 + [2 / 3] * 4, [0.9] * 50])
def test_clustered_with_fractional_shares_is_never_narrower_than_wilson_over_cases(shares):
    m = len(shares)
    rate, (lo, hi) = stats.clustered_rate_ci(shares, 0.95)
    assert rate == pytest.approx(sum(shares) / m)
    assert lo <= rate <= hi
    x = rate * m  # Wilson over cases at the same rate (fractional count)
    lo_ref, hi_ref = proportion_confint(x, m, alpha=0.05, method="wilson")
    assert (lo, hi) == pytest.approx((lo_ref, hi_ref), abs=1e-9)
    assert stats.clustered_lower_bound(shares, 0.95) == pytest.approx(beta.ppf(0.05, x, m - x + 1), abs=1e-9)
    for k in (2, 5):  # pooling rate·m·K successes of m·K would be narrower
        p_lo, p_hi = proportion_confint(x * k, m * k, alpha=0.05, method="wilson")
        assert hi - lo > p_hi - p_lo


def test_clustered_rejects_bad_shares():
    with pytest.raises(ValueError):
        stats.clustered_rate_ci([])
    with pytest.raises(ValueError):
        stats.clustered_lower_bound([1.2])


PASS_K_GRID = [(n, c, k) for n in range(1, 13) for c in range(n + 1) for k in range(1, n + 1)]


@pytest.mark.parametrize("n,c,k", PASS_K_GRID)
def test_pass_at_k_and_pass_hat_k_match_comb(n, c, k):
    assert stats.pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)
    assert stats.pass_hat_k(n, c, k) == pytest.approx(math.comb(c, k) / math.comb(n, k), abs=1e-12)


def test_pass_at_k_large_n_is_stable():
    n, c, k = 2000, 37, 100
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert stats.pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-9)
    assert stats.pass_hat_k(n, 1500, k) == pytest.approx(math.comb(1500, k) / math.comb(n, k), abs=1e-12)


def test_pass_at_k_validates():
    for args in [(3, 1, 0), (3, 1, 4), (3, 4, 1)]:
        with pytest.raises(ValueError):
            stats.pass_at_k(*args)


def test_mean_pass_k_average_over_cases_with_enough_trials():
    counts = [(5, 0), (5, 2), (5, 5), (3, 1)]
    for k in (1, 2, 3):
        assert stats.mean_pass_at_k(counts, k) == pytest.approx(
            np.mean([1 - math.comb(n - c, k) / math.comb(n, k) for n, c in counts])
        )
        assert stats.mean_pass_hat_k(counts, k) == pytest.approx(
            np.mean([math.comb(c, k) / math.comb(n, k) for n, c in counts])
        )
    assert stats.mean_pass_at_k(counts, 5) == pytest.approx((0 + 1 + 1) / 3)  # (3, 1) cannot draw 5
    assert stats.mean_pass_hat_k(counts, 6) is None
    assert stats.mean_pass_at_k(counts, 1) == pytest.approx(np.mean([0, 0.4, 1, 1 / 3]))


MCNEMAR_GRID = [(b, c) for b in range(0, 13) for c in range(0, 13)] + [(40, 25), (3, 90), (150, 170)]


@pytest.mark.parametrize("b,c", MCNEMAR_GRID)
def test_mcnemar_matches_statsmodels_and_binomtest(b, c):
    table = [[7, b], [c, 11]]
    assert stats.mcnemar_exact_two_sided(b, c) == pytest.approx(mcnemar(table, exact=True).pvalue, abs=1e-9)
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5, alternative="greater").pvalue
    assert stats.mcnemar_exact_one_sided(b, c) == pytest.approx(expected, abs=1e-9)


def test_mcnemar_one_sided_direction():
    assert stats.mcnemar_exact_one_sided(10, 0) == pytest.approx(0.5**10)  # 10 regressions
    assert stats.mcnemar_exact_one_sided(0, 10) == 1.0  # 10 improvements
    assert stats.mcnemar_exact_one_sided(0, 0) == 1.0


@pytest.mark.parametrize(
    "a_pass,a_n,b_pass,b_n",
    [
        (0, 0, 0, 5),
        (5, 5, 0, 5),
        (10, 12, 3, 13),
        (1, 10, 9, 10),
        (0, 10, 10, 10),
        (30, 31, 12, 52),
        (3, 3, 3, 3),
        (0, 4, 0, 4),
    ],
)
def test_fisher_matches_scipy(a_pass, a_n, b_pass, b_n):
    table = [[a_pass, a_n - a_pass], [b_pass, b_n - b_pass]]
    expected = fisher_exact(table, alternative="greater")[1]
    assert stats.fisher_exact_one_sided(a_pass, a_n, b_pass, b_n) == pytest.approx(expected, abs=1e-9)


def _brute_sign_flip(diffs):
    d = [x for x in diffs if x != 0]
    obs = sum(d)
    hits = sum(
        1
        for signs in itertools.product((1, -1), repeat=len(d))
        if sum(s * abs(x) for s, x in zip(signs, d)) >= obs - 1e-12
    )
    return hits / 2 ** len(d)


@pytest.mark.parametrize(
    "diffs",
    [
        [1.0],
        [1.0, -1.0],
        [0.5, 0.5, 0.0, -0.25],
        [1 / 3, 2 / 3, -1 / 3, 0.0, 1.0],
        [0.2, -0.2, 0.2, -0.2, 0.4, 0.6, -0.4, 0.8, 1.0, -1.0, 0.1, 0.3],
    ],
)
def test_paired_shares_small_is_the_exact_sign_flip_test(diffs):
    assert stats.paired_shares_test_one_sided(diffs) == pytest.approx(_brute_sign_flip(diffs), abs=1e-12)


def test_paired_shares_ties_are_counted_exactly():
    # 0.1 + 0.2 != 0.3 in floating point, yet sums 0.6, 0.4, 0.2 and two exact ties of 0 reach it
    diffs = [0.1, 0.2, -0.3]
    assert stats.paired_shares_test_one_sided(diffs) == pytest.approx(5 / 8)


def test_paired_shares_clear_regression_and_no_change():
    rng = np.random.default_rng(1)
    regression = list(np.clip(rng.normal(0.4, 0.2, 15), -1, 1))
    assert stats.paired_shares_test_one_sided(regression) < 0.05
    assert stats.paired_shares_test_one_sided([0.0] * 30) == 1.0
    assert stats.paired_shares_test_one_sided([]) == 1.0
    assert stats.paired_shares_test_one_sided([-d for d in regression]) > 0.5  # an improvement


def test_paired_shares_counts_cases_not_trials():
    # 3 cases fully regressed over 10 trials each: 3 independent signs, not 30 — p = 1/8
    assert stats.paired_shares_test_one_sided([1.0, 1.0, 1.0]) == pytest.approx(1 / 8)
    assert stats.mcnemar_exact_one_sided(30, 0) < 1e-8  # what pooling n·K units would claim


def _exact_sign_flip_numpy(diffs):
    sums = np.zeros(1)
    for d in diffs:
        sums = np.concatenate([sums + abs(d), sums - abs(d)])
    return float(np.mean(sums >= sum(diffs) - 1e-9))


def test_paired_shares_beyond_2_to_16_is_a_seeded_monte_carlo_of_the_same_test():
    rng = np.random.default_rng(3)
    twenty = [(int(rng.integers(0, 8)) - int(rng.integers(1, 8))) / 7 for _ in range(20)]  # K = 7
    exact = _exact_sign_flip_numpy(twenty)
    p = stats.paired_shares_test_one_sided(twenty)
    assert p == stats.paired_shares_test_one_sided(twenty)  # seeded: the same data, the same p
    assert abs(p - exact) < 4 * (exact * (1 - exact) / 99_999) ** 0.5 + 1e-4  # Monte-Carlo error only
    # no jump at the switch from exact to Monte-Carlo: 16 values (exact) and 17 (sampled) agree
    sixteen = twenty[:16]
    assert stats.paired_shares_test_one_sided(sixteen) == pytest.approx(_brute_sign_flip(sixteen), abs=1e-12)
    seventeen = twenty[:17]
    exact17 = _exact_sign_flip_numpy(seventeen)
    assert (
        abs(stats.paired_shares_test_one_sided(seventeen) - exact17)
        < 4 * (exact17 * (1 - exact17) / 99_999) ** 0.5 + 1e-4
    )
    assert stats.paired_shares_test_one_sided([0.5] * 25) < 1e-4
    assert stats.paired_shares_test_one_sided([-0.5] * 25) == 1.0


def test_paired_shares_test_honours_the_margin():
    # every case dropped by exactly the margin: no evidence of a drop beyond it
    assert stats.paired_shares_test_one_sided([0.02] * 40, margin=0.02) == 1.0
    diffs = [0.2, 0.1, 0.0, 0.3, -0.1, 0.2, 0.1, 0.2]
    shifted = [d - 0.05 for d in diffs]
    assert stats.paired_shares_test_one_sided(diffs, margin=0.05) == pytest.approx(_brute_sign_flip(shifted), abs=1e-12)
    assert stats.paired_shares_test_one_sided(diffs, margin=0.05) > stats.paired_shares_test_one_sided(diffs)


def test_paired_shares_exact_up_to_16_nonzero_matches_brute_force():
    rng = np.random.default_rng(3)
    diffs = [float(x) for x in np.round(rng.uniform(-0.5, 1.0, 12), 1)] + [0.0] * 30
    assert stats.paired_shares_test_one_sided(diffs) == pytest.approx(_brute_sign_flip(diffs), abs=1e-12)


def test_chain_rates():
    assert stats.chain_rate([0.97] * 6) == pytest.approx(0.97**6, abs=1e-12)
    assert stats.chain_rate([0.97] * 6) == pytest.approx(0.833, abs=5e-4)
    step = stats.step_rate_with_retries(0.97, 1)
    assert step == pytest.approx(1 - 0.03**2, abs=1e-12)
    assert stats.chain_rate([step] * 6) == pytest.approx((1 - 0.03**2) ** 6, abs=1e-12)
    assert stats.chain_rate([step] * 6) == pytest.approx(0.9946, abs=5e-5)
    assert stats.chain_rate([]) == 1.0
    assert stats.step_rate_with_retries(0.5, 0) == 0.5


@pytest.mark.parametrize(
    "steps,p,retries,runs", [(6, 0.97, 0, 200_000), (6, 0.97, 1, 200_000), (3, 0.5, 2, 50_000), (1000, 0.999, 0, 3_000)]
)
def test_simulate_chain(steps, p, retries, runs):
    r = stats.simulate_chain(steps, p, retries, runs, seed=42)
    step = 1 - (1 - p) ** (retries + 1)
    assert r["step_rate"] == pytest.approx(step)
    assert r["analytic"] == pytest.approx(step**steps, abs=1e-12)
    assert r["runs"] == runs
    lo, hi = r["ci"]
    assert lo <= r["analytic"] <= hi  # seeded: deterministic, and inside its own interval
    assert (lo, hi) == pytest.approx(stats.wilson(round(r["monte_carlo"] * runs), runs))
    reach = sum(step**j for j in range(steps))
    per_step = sum((1 - p) ** i for i in range(retries + 1))
    assert r["expected_attempts_per_run"] == pytest.approx(reach * per_step, rel=1e-12)
    assert r["monte_carlo_attempts_per_run"] == pytest.approx(r["expected_attempts_per_run"], rel=0.02)
    assert stats.simulate_chain(steps, p, retries, runs, seed=42) == r


def test_simulate_chain_known_values_and_edges():
    assert stats.simulate_chain(6, 0.97, 0, 10, 0)["analytic"] == pytest.approx(0.832972, abs=1e-6)
    assert stats.simulate_chain(6, 0.97, 1, 10, 0)["analytic"] == pytest.approx(0.99461, abs=1e-5)
    zero = stats.simulate_chain(4, 0.0, 2, 100, 0)
    assert zero["monte_carlo"] == 0.0 and zero["expected_attempts_per_run"] == 3.0
    assert zero["monte_carlo_attempts_per_run"] == 3.0
    one = stats.simulate_chain(4, 1.0, 2, 100, 0)
    assert one["monte_carlo"] == 1.0 and one["expected_attempts_per_run"] == 4.0
    a, b = stats.simulate_chain(6, 0.9, 0, 1000, 1), stats.simulate_chain(6, 0.9, 0, 1000, 2)
    assert a["monte_carlo"] != b["monte_carlo"]  # the seed matters
    with pytest.raises(ValueError):
        stats.simulate_chain(0, 0.5, 0, 10, 0)


def test_simulate_chain_chunks_runs_deterministically():
    runs = 2 * (1_000_000 // 1000) + 7  # three chunks at 1000 steps
    r = stats.simulate_chain(1000, 0.9995, 1, runs, seed=5)
    assert r == stats.simulate_chain(1000, 0.9995, 1, runs, seed=5)
    assert r["ci"][0] <= r["analytic"] <= r["ci"][1]


def test_percentiles():
    values = [120.0, 5.0, 33.5, 80.0, 81.0, 9.0, 1000.0]
    got = stats.percentiles(values)
    assert got == {
        "p50": pytest.approx(np.percentile(values, 50)),
        "p95": pytest.approx(np.percentile(values, 95)),
        "max": 1000.0,
    }
    assert stats.percentiles([]) == {"p50": None, "p95": None, "max": None}
    assert stats.percentiles([7]) == {"p50": 7.0, "p95": 7.0, "max": 7.0}
