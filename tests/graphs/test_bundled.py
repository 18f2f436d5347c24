"""The bundled evalsets/langgraph-agent reproduces the analytic figures, inside Wilson intervals."""

from __future__ import annotations

from pathlib import Path

from statsmodels.stats.proportion import proportion_confint

from tests.helpers import ROOT

from .helpers import run, step, units

PIPELINE = ROOT / "evalsets" / "langgraph-agent" / "pipeline.yaml"
P = 0.03  # the fake model's failure rate per call
CALLS = 5  # judged model calls per unit: classify, one branch node, the agent twice, draft


def _inside(results: dict, analytic: float) -> None:
    e2e = results["end_to_end"]
    low, high = proportion_confint(e2e["passed"], e2e["total"], alpha=0.05, method="wilson")
    assert abs(e2e["ci"]["low"] - low) < 1e-9 and abs(e2e["ci"]["high"] - high) < 1e-9
    assert low <= analytic <= high, (e2e, analytic)


def test_offline_figures_without_and_with_one_retry(tmp_path: Path) -> None:
    plain, lines = run(PIPELINE, tmp_path / "plain")
    analytic = (1 - P) ** CALLS  # 85.9%
    _inside(plain, analytic)
    assert 0.80 < plain["end_to_end"]["rate"] < 0.92
    assert plain["exit_code"] == 0  # the bundled gate: end_to_end min 0.80
    # branches: every unit that passed classify ran exactly one of lookup and triage
    classify, lookup, triage = (step(plain, s) for s in ("classify", "lookup", "triage"))
    assert lookup["reached"] + triage["reached"] == classify["passed"]
    assert 0.3 < lookup["reach_share"] < 0.6 and 0.3 < triage["reach_share"] < 0.6
    # the tool loop: the agent runs twice in a unit unless its first visit failed
    agent = step(plain, "agent")
    first_visit_failed = sum(
        1 for u in units(lines).values() if any(s["step"] == "agent" and s["visits"] == 1 for s in u["steps"])
    )
    assert agent["visits"]["total"] == 2 * agent["reached"] - first_visit_failed
    for unit in units(lines).values():
        if unit["passed"]:
            assert unit["executed"]["tools"] == 1 and unit["executed"]["agent"] == 2

    # what-if and plan see branches and loops: today's plan reproduces the measured rate
    from reliability_cli.results.planning import plan
    from reliability_cli.results.schema import from_dict

    budget = plan(from_dict(plain), 0.99)
    assert abs(budget.end_to_end_now - plain["end_to_end"]["rate"]) < 1e-9
    assert budget.reachable
    whatif = {w["step"]: w for w in plain["what_if"]}
    # one more retry on a node that half the units run is worth about half as much as on classify
    gain = {k: whatif[k]["end_to_end_independent"] - plain["end_to_end"]["rate"] for k in ("classify", "lookup")}
    assert 0.3 < gain["lookup"] / gain["classify"] < 0.7

    retried, _ = run(PIPELINE, tmp_path / "retried", retries=1)
    low, high = proportion_confint(retried["end_to_end"]["passed"], 300, alpha=0.05, method="wilson")
    assert low <= budget.end_to_end_planned <= high
    analytic = (1 - P**2) ** CALLS  # 99.6%
    _inside(retried, analytic)
    assert retried["end_to_end"]["rate"] > 0.99
    for s in retried["steps"][:-1]:
        assert s["max_attempts"] == 2
        # a retry draws afresh: it recovers like a first try does
        assert s["recovery_rate"] is None or s["recovery_rate"] > 0.8
    # the first tries are the same draws as the run without retries
    assert [s["first_try_rate"] for s in retried["steps"]][:1] == [classify["first_try_rate"]]
