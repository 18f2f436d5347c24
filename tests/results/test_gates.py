"""Gates use the right statistics; lower-bound feasibility and the error budget exit 3."""

from __future__ import annotations

import pytest
from scipy.stats import beta, fisher_exact
from statsmodels.stats.proportion import proportion_confint

from reliability_cli import stats
from reliability_cli.results import analysis, gates
from reliability_cli.results.schema import GateOverrides, GateSettings

from .helpers import doc_from_fail_idx, run, write_pipeline

GRID = [(k, n) for n in (1, 2, 5, 10, 37, 100, 1000) for k in sorted({0, 1, n // 2, n - 1, n}) if 0 <= k <= n]


@pytest.mark.parametrize("passed,n", GRID)
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_lower_bound_gate_uses_one_sided_clopper_pearson(passed, n, confidence):
    doc = doc_from_fail_idx(["a"], [1] * passed + [0] * (n - passed))
    cfg = GateSettings(end_to_end_min=0.5, mode="lower-bound", confidence=confidence)
    (gate,) = gates.apply(doc, cfg).gates
    expected = 0.0 if passed == 0 else beta.ppf(1 - confidence, passed, n - passed + 1)
    assert gate.bound == pytest.approx(expected, abs=1e-9)
    assert gate.passed == (expected >= 0.5)


@pytest.mark.parametrize("passed,n", GRID)
def test_reported_intervals_are_wilson(passed, n):
    _, ci = analysis.rate_ci(passed, n, {}, 1, 0.95)
    lo, hi = proportion_confint(passed, n, alpha=0.05, method="wilson")
    assert ci.low == pytest.approx(lo, abs=1e-9) and ci.high == pytest.approx(hi, abs=1e-9)


@pytest.mark.parametrize(
    "a,b,c,d", [(0, 0, 0, 5), (5, 0, 0, 5), (10, 2, 3, 10), (1, 9, 9, 1), (0, 10, 10, 0), (30, 1, 12, 40)]
)
def test_fisher_matches_scipy(a, b, c, d):
    expected = fisher_exact([[a, b], [c, d]], alternative="greater")[1]
    # (a_pass, a_n, b_pass, b_n) for the table [[a_pass, a_fail], [b_pass, b_fail]]
    assert stats.fisher_exact_one_sided(a, a + b, c, c + d) == pytest.approx(expected, abs=1e-9)


def test_min_units_for_lower_bound_is_the_first_feasible_n():
    need = stats.min_units_for_lower_bound(0.97, 0.95)
    assert need == 99
    assert beta.ppf(0.05, need, 1) >= 0.97 > beta.ppf(0.05, need - 1, 1)


def test_too_few_cases_for_a_lower_bound_gate_exit_3_before_any_call(tmp_path, cli):
    pipeline = write_pipeline(
        tmp_path / "p", [("a", 0.0, "wrong")], 98, gates="end_to_end: {min: 0.97}\nmode: lower-bound\nconfidence: 0.95"
    )
    out = tmp_path / "run"
    code, stdout, stderr = cli("eval", pipeline, "--out", out, "--no-progress")
    assert code == 3
    assert "98 cases can never clear a lower-bound gate of 0.97" in stderr and "99" in stderr
    assert not out.exists()  # refused before the run directory, let alone a call
    # one more case and a perfect pipeline clear it
    pipeline = write_pipeline(
        tmp_path / "q", [("a", 0.0, "wrong")], 99, gates="end_to_end: {min: 0.97}\nmode: lower-bound\nconfidence: 0.95"
    )
    code, stdout, _ = cli("eval", pipeline, "--out", tmp_path / "run2", "--no-progress")
    assert code == 0, stdout
    assert "lower bound 0.97" in stdout


def test_lower_bound_flag_overrides_yaml(tmp_path, cli):
    pipeline = write_pipeline(tmp_path / "p", [("a", 0.0, "wrong")], 50)
    code, _, stderr = cli("eval", pipeline, "--out", tmp_path / "r", "--mode", "lower-bound", "--min-step", "a=0.95")
    assert code == 3 and "50 cases" in stderr


def test_infrastructure_errors_above_max_error_rate_exit_3(tmp_path):
    pipeline = write_pipeline(
        tmp_path / "p",
        [("a", 0.3, "error"), ("b", 0.0, "wrong")],
        200,
        gates="end_to_end: {min: 0.1}\nmax_error_rate: 0.10",
    )
    outcome = run(pipeline, tmp_path / "r")
    e2e = outcome.results.to_dict()["end_to_end"]
    assert e2e["error_rate"] > 0.10
    assert outcome.exit_code == 3 and outcome.results.to_dict()["verdict"] == "error"
    # the same run with a looser budget gives a verdict
    outcome = run(pipeline, tmp_path / "r2", gate_overrides=GateOverrides(max_error_rate=0.9))
    assert outcome.exit_code == 0


def test_clustered_lower_bound_with_trials_uses_cases(tmp_path):
    pipeline = write_pipeline(
        tmp_path / "p", [("a", 0.0, "wrong")], 120, gates="end_to_end: {min: 0.97}\nmode: lower-bound"
    )
    outcome = run(pipeline, tmp_path / "r", trials=3)
    (gate,) = outcome.results.to_dict()["gates"]
    # design effect: 3 agreeing trials per case count as 360 units, over 120 cases
    assert gate["bound"] == pytest.approx(stats.clustered_lower_bound([1.0] * 120, 0.95, units=360), abs=1e-12)
    assert "n=120 cases, 360 units" in gate["detail"]


def test_lower_bound_gate_of_one_is_refused_before_any_call():
    from reliability_cli.errors import RunAborted

    cfg = GateSettings(end_to_end_min=1.0, mode="lower-bound")
    with pytest.raises(RunAborted) as exc:
        gates.precheck(cfg, 10_000, 1)
    assert exc.value.exit_code == 3 and "can never pass" in str(exc.value)
