from __future__ import annotations
import math
def wilson(passed, n, confidence=0.95):
    if n == 0: return (0.0, 1.0)
    from scipy.stats import norm
    z = norm.ppf(1 - (1 - confidence) / 2); p = passed / n
    d = 1 + z*z/n; c = (p + z*z/(2*n))/d; h = z*math.sqrt(p*(1-p)/n + z*z/(4*n*n))/d
    return (max(0.0, c-h), min(1.0, c+h))
def clopper_pearson_lower(passed, n, confidence=0.95):
    if passed == 0: return 0.0
    from scipy.stats import beta
    return float(beta.ppf(1-confidence, passed, n-passed+1))
def min_units_for_lower_bound(t, c):
    n = 1
    while (1-c)**(1/n) < t: n += 1
    return n
def clustered_rate_ci(shares, confidence=0.95):
    m = sum(shares)/len(shares); return m, wilson(round(m*len(shares)), len(shares), confidence)
def clustered_lower_bound(shares, confidence=0.95):
    return clopper_pearson_lower(round(sum(shares)), len(shares), confidence)
def pass_at_k(n, c, k):
    if n - c < k: return 1.0
    return 1.0 - math.comb(n-c, k)/math.comb(n, k)
def pass_hat_k(n, c, k): return math.comb(c, k)/math.comb(n, k)
def mean_pass_at_k(counts, k):
    v=[pass_at_k(n,c,k) for n,c in counts if n>=k]; return sum(v)/len(v) if v else None
def mean_pass_hat_k(counts, k):
    v=[pass_hat_k(n,c,k) for n,c in counts if n>=k]; return sum(v)/len(v) if v else None
def chain_rate(ps):
    out = 1.0
    for p in ps: out *= p
    return out
def step_rate_with_retries(p, retries): return 1 - (1-p)**(retries+1)
def percentiles(values):
    if not len(values): return {"p50": None, "p95": None, "max": None}
    import numpy as np
    a = np.asarray(values, dtype=float)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "max": float(a.max())}
def simulate_chain(steps, p, retries, runs, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    sr = step_rate_with_retries(p, retries)
    ok = (rng.random((runs, steps)) < sr).all(axis=1).sum()
    return {"analytic": sr**steps, "monte_carlo": ok/runs, "ci": wilson(int(ok), runs), "runs": runs, "expected_attempts_per_run": 0.0, "step_rate": sr}
