"""Pure statistics for relcheck: intervals, pass@k / pass^k, exact paired tests, chains (SPEC §5-6).

No I/O. scipy and numpy are imported inside the functions that need them, so importing this
module (and starting the CLI) stays cheap. With K > 1 trials the *case* is the sample: the
clustered functions take one pass share per case and never treat n·K trials as independent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy.typing as npt


def _check_count(passed: int, n: int) -> None:
    if not 0 <= passed <= n:
        raise ValueError(f"need 0 <= passed <= n, got passed={passed}, n={n}")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _wilson(x: float, n: float, confidence: float) -> tuple[float, float]:
    """Wilson score interval for ``x`` successes in ``n`` (both may be fractional)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    p = x / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    low = 0.0 if x <= 0 else max(0.0, center - half)  # exact ends where the formula is
    return low, 1.0 if x >= n else min(1.0, center + half)


def _cp_lower(x: float, n: float, confidence: float) -> float:
    """One-sided Clopper-Pearson lower bound; ``x`` may be fractional (beta-quantile form)."""
    if x <= 0.0:
        return 0.0
    if x >= n:
        # Closed form of beta.ppf(1-c, n, 1); keeps gates consistent with min_units_for_lower_bound.
        return (1.0 - confidence) ** (1.0 / n)
    from scipy import stats as sps

    return float(sps.beta.ppf(1.0 - confidence, x, n - x + 1.0))


def wilson(passed: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Wilson score interval of ``passed`` of ``n``.

    Equals statsmodels ``proportion_confint(passed, n, 1 - confidence, method="wilson")``.

    Args:
        passed: Units that passed, 0 <= passed <= n.
        n: Units counted.
        confidence: Two-sided confidence level in (0, 1).

    Returns:
        ``(low, high)``; ``(0.0, 1.0)`` when ``n == 0``.
    """
    _check_count(passed, n)
    _check_confidence(confidence)
    if n == 0:
        return 0.0, 1.0
    return _wilson(passed, n, confidence)


def clopper_pearson_lower(passed: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact (Clopper-Pearson) lower bound, ``beta.ppf(1 - confidence, x, n - x + 1)``.

    Args:
        passed: Units that passed, 0 <= passed <= n.
        n: Units counted.
        confidence: One-sided confidence level in (0, 1).

    Returns:
        The bound: 0.0 when ``passed == 0``; the closed form ``(1 - confidence) ** (1 / n)``
        when all pass.
    """
    _check_count(passed, n)
    _check_confidence(confidence)
    return _cp_lower(passed, n, confidence)


def clopper_pearson(passed: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided exact (Clopper-Pearson) interval, as statsmodels ``method="beta"``.

    Args:
        passed: Units that passed, 0 <= passed <= n.
        n: Units counted.
        confidence: Two-sided confidence level in (0, 1).

    Returns:
        ``(low, high)``; ``(0.0, 1.0)`` when ``n == 0``.
    """
    _check_count(passed, n)
    _check_confidence(confidence)
    if n == 0:
        return 0.0, 1.0
    from scipy import stats as sps

    tail = (1.0 - confidence) / 2.0
    low = 0.0 if passed == 0 else float(sps.beta.ppf(tail, passed, n - passed + 1))
    high = 1.0 if passed == n else float(sps.beta.isf(tail, passed + 1, n - passed))
    return low, high


def min_units_for_lower_bound(threshold: float, confidence: float) -> int:
    """Smallest n whose all-pass one-sided Clopper-Pearson lower bound reaches ``threshold``.

    With n of n passing the bound is ``(1 - confidence) ** (1 / n)``, so
    n = ceil(ln(1 - confidence) / ln(threshold)); e.g. 0.97 at 0.95 needs 99 units.

    Args:
        threshold: The lower bound a gate asks for.
        confidence: One-sided confidence level in (0, 1).

    Returns:
        The number of units; 0 when ``threshold <= 0``.

    Raises:
        ValueError: If ``threshold >= 1``, which no finite number of units can clear.
    """
    _check_confidence(confidence)
    if threshold <= 0.0:
        return 0
    if threshold >= 1.0:
        raise ValueError(f"a lower bound can never reach {threshold:g}: it is below 1 for every n")
    n = max(1, math.ceil(math.log(1.0 - confidence) / math.log(threshold)))
    # The closed form decides, so rounding in the logarithms cannot be off by one.
    while n > 1 and (1.0 - confidence) ** (1.0 / (n - 1)) >= threshold:
        n -= 1
    while (1.0 - confidence) ** (1.0 / n) < threshold:
        n += 1
    return n


def _clustered(shares: Sequence[float]) -> tuple[float, int]:
    if not shares:
        raise ValueError("need at least one case")
    if any(not 0.0 <= s <= 1.0 for s in shares):
        raise ValueError("pass shares must lie in [0, 1]")
    return math.fsum(shares), len(shares)


def effective_size(shares: Sequence[float], units: int | None = None) -> tuple[float, float]:
    """(rate, effective sample size) of per-case pass shares, by the design effect.

    The rate is the mean per-case share p. Its variance over cases is s²/m (s² the sample
    variance of the shares); ``units`` independent draws would give p(1 − p)/units. The design
    effect is their ratio, and n_eff = units / deff = p(1 − p)·m / s², capped at ``units``
    (trials can never count for more than independent units) and floored at m (a case's
    trials never count for less than the case as one 0/1 sample would). With one trial per
    case, shares are 0/1 and n_eff = m exactly.

    Args:
        shares: Per-case pass shares, each in [0, 1].
        units: The units (trials) behind the shares; default one per case.

    Returns:
        ``(rate, n_eff)``.
    """
    total, m = _clustered(shares)
    units = m if units is None else max(units, m)
    rate = total / m
    if m < 2:
        return rate, float(m)
    mean = rate
    var = math.fsum((s - mean) ** 2 for s in shares) / (m - 1)
    spread = rate * (1.0 - rate)
    if var <= 0.0:
        return rate, float(units)
    return rate, min(float(units), max(float(m), spread * m / var))


def clustered_rate_ci(
    shares: Sequence[float], confidence: float = 0.95, units: int | None = None
) -> tuple[float, tuple[float, float]]:
    """Rate (mean per-case pass share) and two-sided interval over cases, for K trials per case.

    Method: Wilson at the effective sample size of :func:`effective_size` (the design-effect
    Wilson interval): K trials narrow the interval as far as their agreement within a case
    allows, never as if the n·K units were independent.

    Args:
        shares: Per-case pass shares (passed trials / trials run), each in [0, 1].
        confidence: Two-sided confidence level in (0, 1).
        units: The units (trials) behind the shares; default one per case.

    Returns:
        ``(rate, (low, high))``.
    """
    _check_confidence(confidence)
    rate, n_eff = effective_size(shares, units)
    return rate, _wilson(rate * n_eff, n_eff, confidence)


def clustered_lower_bound(shares: Sequence[float], confidence: float = 0.95, units: int | None = None) -> float:
    """One-sided lower bound of the mean per-case pass share (lower-bound gates, K trials).

    Method: one-sided Clopper-Pearson at the effective sample size of :func:`effective_size`
    with the fractional count x = rate·n_eff: exactly Clopper-Pearson on cases when every
    share is 0/1.

    Args:
        shares: Per-case pass shares, each in [0, 1].
        confidence: One-sided confidence level in (0, 1).
        units: The units (trials) behind the shares; default one per case.

    Returns:
        The lower bound of the rate.
    """
    _check_confidence(confidence)
    rate, n_eff = effective_size(shares, units)
    return _cp_lower(min(rate * n_eff, n_eff), n_eff, confidence)


def _check_k(n: int, c: int, k: int) -> None:
    _check_count(c, n)
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021), 1 - C(n-c, k) / C(n, k): some of k trials passes.

    Computed as 1 - prod_{i=n-c+1..n} (1 - k/i), which never forms large binomials.

    Args:
        n: Trials run for the case.
        c: Trials that passed.
        k: Trials drawn without replacement, 1 <= k <= n.

    Returns:
        The probability that at least one of k trials drawn passes.
    """
    _check_k(n, c, k)
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased pass^k of tau-bench, C(c, k) / C(n, k) = prod_{i<k} (c-i)/(n-i): all k trials pass.

    Args:
        n: Trials run for the case.
        c: Trials that passed.
        k: Trials drawn without replacement, 1 <= k <= n.

    Returns:
        The probability that all k trials drawn pass; 0.0 when ``c < k``.
    """
    _check_k(n, c, k)
    prod = 1.0
    for i in range(k):
        prod *= (c - i) / (n - i)
    return max(0.0, prod)


def _mean_over_cases(counts: Sequence[tuple[int, int]], k: int, fn: Any) -> float | None:
    values = [fn(n, c, k) for n, c in counts if n >= k]
    return math.fsum(values) / len(values) if values else None


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float | None:
    """Mean :func:`pass_at_k` over the cases that ran at least k trials.

    Args:
        counts: ``(n, c)`` per case: trials run and trials passed.
        k: Trials drawn.

    Returns:
        The mean, or None when no case ran k trials.
    """
    return _mean_over_cases(counts, k, pass_at_k)


def mean_pass_hat_k(counts: Sequence[tuple[int, int]], k: int) -> float | None:
    """Mean :func:`pass_hat_k` over the cases that ran at least k trials.

    Args:
        counts: ``(n, c)`` per case: trials run and trials passed.
        k: Trials drawn.

    Returns:
        The mean, or None when no case ran k trials.
    """
    return _mean_over_cases(counts, k, pass_hat_k)


def mcnemar_exact_one_sided(b: int, c: int) -> float:
    """Exact one-sided McNemar test that the candidate is worse than the baseline.

    Args:
        b: Paired units that passed in the baseline and failed in the candidate (regressions).
        c: Units that failed in the baseline and passed in the candidate.

    Returns:
        P(X >= b), X ~ Binomial(b + c, 1/2), as ``binomtest(b, b + c, 0.5, alternative="greater")``;
        1.0 when there are no discordant units.
    """
    if min(b, c) < 0:
        raise ValueError("discordant counts must be >= 0")
    if b + c == 0:
        return 1.0
    from scipy import stats as sps

    return min(1.0, float(sps.binom.sf(b - 1, b + c, 0.5)))


def mcnemar_exact_two_sided(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value, min(1, 2·P(X <= min(b, c))), X ~ Binomial(b + c, 1/2).

    Equals statsmodels ``mcnemar([[·, b], [c, ·]], exact=True).pvalue``.

    Args:
        b: Pairs where only the first passed.
        c: Pairs where only the second passed.

    Returns:
        The p-value; 1.0 when b + c == 0.
    """
    if min(b, c) < 0:
        raise ValueError("discordant counts must be >= 0")
    if b + c == 0:
        return 1.0
    from scipy import stats as sps

    return min(1.0, 2.0 * float(sps.binom.cdf(min(b, c), b + c, 0.5)))


def paired_shares_test_one_sided(diffs: Sequence[float], margin: float = 0.0, seed: int = 0) -> float:
    """One-sided paired test over cases that the mean drop exceeds ``margin`` (K trials per case).

    The sign-flip permutation test of the mean of ``diffs − margin`` (``H0``: mean drop ≤
    margin), with :func:`scipy.stats.permutation_test`: exact while 2^n ≤ 100,000 sign
    patterns, a seeded Monte-Carlo of 99,999 patterns beyond (so the same data always give the
    same p-value, and the p-value moves smoothly with n: there is no switch to another test).
    The case is the sample: trials are never counted as independent units.

    Args:
        diffs: Per-case baseline share minus candidate share, each in [-1, 1].
        margin: The tolerated drop (``max_drop``).
        seed: Seeds the Monte-Carlo patterns.

    Returns:
        The p-value; 1.0 when there is no difference to test.
    """
    from fractions import Fraction

    import numpy as np
    from scipy.stats import permutation_test

    # Shares are fractions of trials: on a common integer scale, ties stay ties.
    exact = [Fraction(d).limit_denominator(10**4) - Fraction(margin).limit_denominator(10**6) for d in diffs]
    exact = [x for x in exact if x != 0]
    scale = math.lcm(*(x.denominator for x in exact)) if exact else 1
    values = np.asarray([int(x * scale) for x in exact], dtype=np.float64)
    if len(values) == 0:
        return 1.0
    if len(values) == 1:
        return 0.5 if values[0] > 0 else 1.0
    result = permutation_test(
        (values,),
        np.mean,
        permutation_type="samples",
        alternative="greater",
        n_resamples=99_999,
        random_state=np.random.default_rng(seed),
        vectorized=True,
    )
    return float(min(1.0, result.pvalue))


def fisher_exact_one_sided(a_pass: int, a_n: int, b_pass: int, b_n: int) -> float:
    """One-sided Fisher exact test (unpaired fallback) that group b passes less often than group a.

    Args:
        a_pass: Passes in group a (the baseline), out of ``a_n`` units.
        a_n: Units in group a.
        b_pass: Passes in group b (the candidate), out of ``b_n`` units.
        b_n: Units in group b.

    Returns:
        ``fisher_exact([[a_pass, a_fail], [b_pass, b_fail]], alternative="greater")`` p-value.
    """
    _check_count(a_pass, a_n)
    _check_count(b_pass, b_n)
    from scipy import stats as sps

    table = [[a_pass, a_n - a_pass], [b_pass, b_n - b_pass]]
    return float(sps.fisher_exact(table, alternative="greater")[1])


def chain_rate(ps: Sequence[float]) -> float:
    """End-to-end rate of independent steps.

    Args:
        ps: The steps' rates.

    Returns:
        Their product (1.0 when empty).
    """
    return math.prod(ps)


def step_rate_with_retries(p: float, retries: int) -> float:
    """Step rate with independent retries, 1 − (1 − p)^(retries + 1).

    Args:
        p: Each attempt's success probability.
        retries: Retries after the first attempt.

    Returns:
        The probability that one of the attempts succeeds.
    """
    return 1.0 - (1.0 - p) ** (retries + 1)


def simulate_chain(
    steps: int, p: float, retries: int, runs: int, seed: int, confidence: float = 0.95
) -> dict[str, Any]:
    """Analytic and seeded Monte-Carlo end-to-end rate of a chain of independent steps.

    A run stops at the first step whose attempts all fail. The simulation draws, per run and
    step, the attempt of first success (geometric), in chunks of runs to bound memory; equal
    arguments give equal results.

    Args:
        steps: Steps in the chain, >= 1.
        p: Each attempt's success probability.
        retries: Retries per step.
        runs: Monte-Carlo runs, >= 1.
        seed: Seed of numpy's default generator.
        confidence: Level of the Wilson interval of the Monte-Carlo rate.

    Returns:
        ``analytic``, ``monte_carlo``, ``ci`` (Wilson of the Monte-Carlo rate), ``runs``,
        ``expected_attempts_per_run`` (analytic), ``monte_carlo_attempts_per_run`` and
        ``step_rate``.
    """
    if steps < 1 or runs < 1 or retries < 0 or not 0.0 <= p <= 1.0:
        raise ValueError("need steps >= 1, runs >= 1, retries >= 0 and 0 <= p <= 1")
    import numpy as np

    tries = retries + 1
    sr = step_rate_with_retries(p, retries)
    per_step = sr / p if p > 0 else float(tries)  # E[attempts at one step] = sum_i (1-p)^i
    reach = math.fsum(sr**j for j in range(steps))  # expected steps reached
    rng = np.random.default_rng(seed)
    chunk = max(1, 1_000_000 // steps)
    ok = attempts = 0
    for start in range(0, runs, chunk):
        size = min(chunk, runs - start)
        first = rng.geometric(p, (size, steps)) if p > 0 else np.full((size, steps), tries + 1)
        failed = first > tries
        ok += int((~failed).all(axis=1).sum())
        reached = np.cumsum(failed, axis=1) == failed  # no failed step before this one
        attempts += int((np.minimum(first, tries) * reached).sum())
    return {
        "analytic": sr**steps,
        "monte_carlo": ok / runs,
        "ci": wilson(ok, runs, confidence),
        "runs": runs,
        "expected_attempts_per_run": per_step * reach,
        "monte_carlo_attempts_per_run": attempts / runs,
        "step_rate": sr,
    }


def percentiles(values: Sequence[float] | npt.NDArray[Any]) -> dict[str, float | None]:
    """Latency-style summary of ``values``.

    Up to :data:`PERCENTILES_IN_PYTHON` finite values are summarised in plain Python, with
    numpy's formulas step for step (so the figures are numpy's to the bit, and a short run
    never imports numpy); longer or non-finite inputs go to ``numpy.percentile``.

    Args:
        values: The figures (seconds, say).

    Returns:
        ``p50``, ``p95`` (numpy linear interpolation) and ``max``; all None when empty.
    """
    if len(values) == 0:
        return {"p50": None, "p95": None, "max": None}
    if len(values) <= PERCENTILES_IN_PYTHON:
        ordered = sorted(map(float, values))
        if math.isfinite(sum(ordered)):
            return {"p50": _linear(ordered, 0.5), "p95": _linear(ordered, 0.95), "max": ordered[-1]}
    import numpy as np

    a = np.asarray(values, dtype=float)
    p50, p95 = np.percentile(a, [50, 95])
    return {"p50": float(p50), "p95": float(p95), "max": float(a.max())}


PERCENTILES_IN_PYTHON = 200_000  # sorting more in Python costs more than importing numpy


def _linear(ordered: Sequence[float], q: float) -> float:
    """numpy's ``method="linear"`` quantile of sorted finite values, as numpy computes it
    (``numpy.lib._function_base_impl._quantile``: the index, the neighbours, ``_lerp``)."""
    n = len(ordered)
    virtual = (n - 1) * q
    if virtual >= n - 1:
        below = above = -1  # numpy takes the last value (and its gamma from index -1)
    else:
        below = math.floor(virtual)
        above = below + 1
    gamma = virtual - below
    a, b = ordered[below], ordered[above]
    diff = b - a
    return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error over the tests).

    Args:
        p_values: One p-value per test.

    Returns:
        The adjusted p-values, in input order.
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    m = len(order)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (per-case differences).

    Args:
        values: The differences.
        confidence: Two-sided confidence level in (0, 1).

    Returns:
        ``(low, high)``, clipped to [-1, 1]; ``(-1.0, 1.0)`` for fewer than two values.
    """
    from scipy.stats import t

    m = len(values)
    if m < 2:
        return -1.0, 1.0
    mean = sum(values) / m
    var = sum((v - mean) ** 2 for v in values) / (m - 1)
    half = float(t.ppf(1 - (1 - confidence) / 2, m - 1)) * math.sqrt(var / m)
    return max(-1.0, mean - half), min(1.0, mean + half)


def tango_paired_test(b: int, c: int, n: int, margin: float) -> float:
    """Tango's score test (1998) that a paired drop exceeds ``margin`` (one-sided).

    Pairs: ``b`` where only the first (baseline) passed, ``c`` where only the second
    (candidate) passed, ``n`` pairs in all; the drop is (b − c)/n. ``H0``: drop ≤ margin,
    rejected for large T = (b − c − n·Δ) / √(n·(2·q̂ + Δ(1 − Δ))), q̂ the maximum-likelihood
    share of candidate-only passes under ``H0``. At Δ = 0 it is McNemar's score test.

    Args:
        b: Pairs where only the baseline passed.
        c: Pairs where only the candidate passed.
        n: Pairs in all.
        margin: The tolerated drop Δ.

    Returns:
        The one-sided p-value (1.0 when there are no pairs).
    """
    from scipy.stats import norm

    if n == 0:
        return 1.0
    d = margin
    a = 2.0 * n
    bb = (2.0 * n + b - c) * d - (b + c)
    cc = -c * d * (1.0 - d)
    q = (-bb + math.sqrt(max(0.0, bb * bb - 4.0 * a * cc))) / (2.0 * a)
    var = n * (2.0 * q + d * (1.0 - d))
    if var <= 0.0:
        return 1.0 if b - c - n * d <= 0 else 0.0
    z = (b - c - n * d) / math.sqrt(var)
    return float(norm.sf(z))


def newcombe_paired_difference(
    both: int, b: int, c: int, neither: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Newcombe's hybrid score interval (1998, method 10) for p2 − p1 of paired proportions,
    with the continuity correction of φ that the method specifies.

    φ = (AD − BC − N/2)/√(…) when AD > BC + N/2, 0 when BC ≤ AD ≤ BC + N/2, and
    (AD − BC)/√(…) when AD < BC (A = both passed, D = neither, B = only the first, C = only the
    second).

    Args:
        both: Pairs where both passed.
        b: Pairs where only the first passed.
        c: Pairs where only the second passed.
        neither: Pairs where neither passed.
        confidence: Two-sided confidence level in (0, 1).

    Returns:
        ``(low, high)`` of p2 − p1, clipped to [-1, 1].
    """
    n = both + b + c + neither
    p1, p2 = (both + b) / n, (both + c) / n
    l1, u1 = wilson(both + b, n, confidence)
    l2, u2 = wilson(both + c, n, confidence)
    denom = (both + b) * (c + neither) * (both + c) * (b + neither)
    ad, bc = both * neither, b * c
    if denom <= 0:
        phi = 0.0
    elif ad > bc + n / 2:
        phi = (ad - bc - n / 2) / math.sqrt(denom)
    elif ad >= bc:
        phi = 0.0
    else:
        phi = (ad - bc) / math.sqrt(denom)
    theta = p2 - p1
    lo = theta - math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    hi = theta + math.sqrt(max(0.0, (u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2))
    return max(-1.0, lo), min(1.0, hi)


def detectable_drop(n: int, discordant: float, margin: float, alpha: float, power: float = 0.8) -> float | None:
    """The smallest true drop a one-sided paired test at ``alpha`` detects with ``power``.

    Normal approximation for n pairs whose discordant share (pairs where exactly one run
    passed; for shares, the variance of the per-case differences) is ``discordant``: the
    drop must clear the margin by (z₁₋α + z_power)·√(discordant / n).

    Args:
        n: Pairs (or cases).
        discordant: Discordant share, or the variance of per-case differences.
        margin: The tolerated drop.
        alpha: The test's level.
        power: The power asked for.

    Returns:
        The drop (at most 1.0), or None for n = 0.
    """
    from scipy.stats import norm

    if n <= 0:
        return None
    spread = max(discordant, 1.0 / n)  # no discordance seen: at least one pair's worth
    return min(1.0, margin + float(norm.ppf(1 - alpha) + norm.ppf(power)) * math.sqrt(spread / n))


def difference_interval(rate: float, variance: float, confidence: float = 0.95) -> tuple[float, float]:
    """A normal interval ``rate ± z·√variance`` (the delta method's).

    Args:
        rate: The estimate.
        variance: Its variance.
        confidence: Two-sided confidence level in (0, 1).

    Returns:
        ``(low, high)``.
    """
    from scipy.stats import norm

    half = float(norm.ppf(1 - (1 - confidence) / 2)) * math.sqrt(max(0.0, variance))
    return rate - half, rate + half
