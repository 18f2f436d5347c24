"""``plan``: the cheapest retry budget that reaches a target."""

from __future__ import annotations

import json

import pytest

from reliability_cli.results.planning import plan
from reliability_cli.results.schema import Results
from tests.helpers import results_from


def _results(
    p: float,
    steps: int = 6,
    retries: int = 0,
    recovery: float | None = None,
    units: int = 1000,
    p50: float = 100.0,
    cost: float | None = None,
    tweak: dict[int, dict] | None = None,
) -> Results:
    rate = 1 - (1 - p) * ((1 - recovery) if recovery is not None else 1) ** retries if retries else p
    rows = [
        {
            "id": f"s{i}",
            "max_attempts": retries + 1,
            "first_try_rate": p,
            "rate": rate,
            "recovery_rate": recovery if retries else None,
            "latency_ms": {"p50": p50},
            "attempts": units,
            "cost_usd": cost,
            **(tweak or {}).get(i, {}),
        }
        for i in range(steps)
    ]
    return results_from(rows, {"rate": rate**steps, "total": units})


def test_six_steps_at_97_percent_need_one_retry_each_for_99():
    doc = plan(_results(0.97), 0.99)
    assert doc.reachable and doc.method == "exhaustive"
    assert [s.retries for s in doc.steps] == [1] * 6
    assert doc.end_to_end_now == pytest.approx(0.97**6)
    assert doc.end_to_end_planned == pytest.approx((1 - 0.03**2) ** 6)
    # expected extra calls: each step's retry runs for the 3% that failed, among units reaching it
    reach, extra = 1.0, 0.0
    reach_now = 1.0
    for _ in range(6):
        extra += reach * 1.03 - reach_now * 1.0
        reach *= 1 - 0.03**2
        reach_now *= 0.97
    assert doc.extra_calls_per_unit == pytest.approx(extra)
    assert doc.extra_calls == pytest.approx(extra * 1000)
    assert doc.extra_latency_ms_per_unit == pytest.approx(extra * 100.0)
    assert doc.extra_cost_usd is None


def test_cheapest_budget_prefers_the_weak_step():
    res = _results(0.999, steps=3, tweak={1: {"first_try_rate": 0.9, "rate": 0.9}})
    doc = plan(res, 0.985)  # 0.999² × (1 − 0.1²) = 0.988
    assert [s.retries for s in doc.steps] == [0, 1, 0]
    assert [s.retries for s in plan(res, 0.99).steps] == [0, 2, 0]  # 0.988 < 0.99


def test_measured_recovery_is_used_where_retries_ran():
    doc = plan(_results(0.9, steps=1, retries=1, recovery=0.5), 0.99, max_retries=5)
    (s,) = doc.steps
    assert s.model == "measured" and s.per_retry_recovery == pytest.approx(0.5)
    # failure 0.1·0.5^r ≤ 0.01 needs r ≥ 4 (independence would say 2)
    assert s.retries == 4


def test_unreachable_target_is_reported(cli, tmp_path):
    res = _results(0.5, steps=4)
    doc = plan(res, 0.999, max_retries=2)
    assert not doc.reachable and doc.end_to_end_planned < 0.999
    assert [s.retries for s in doc.steps] == [2] * 4
    path = tmp_path / "r.json"
    path.write_text(json.dumps(res.to_dict()))
    code, out, _ = cli("plan", path, "--target", "0.999", "--max-retries", "2")
    assert code == 1 and "NOT reachable" in out
    code, out, _ = cli("plan", path, "--target", "0.5", "--json", tmp_path / "p.json")
    assert code == 0 and "Target reachable" in out
    assert json.loads((tmp_path / "p.json").read_text())["reachable"]


def test_usd_cost_from_price_per_attempt():
    doc = plan(_results(0.97, cost=2.0), 0.99)  # 1000 attempts per step cost 2 USD: 0.002 per attempt
    assert doc.extra_cost_usd == pytest.approx(doc.extra_calls_per_unit * 1000 * 0.002)


def test_greedy_for_large_grids():
    doc = plan(_results(0.97, steps=12), 0.99, max_retries=3)
    assert doc.method == "greedy" and doc.reachable
    assert doc.end_to_end_planned >= 0.99
