"""The bundled six-step agent reproduces SPEC's numbers, deterministically."""

from __future__ import annotations

import json

import pytest

from reliability_cli import stats
from tests.helpers import SIX, journal_text, strip_volatile


@pytest.fixture(scope="module")
def six_runs(tmp_path_factory):
    from reliability_cli.runner import RunOptions, run_eval

    base = tmp_path_factory.mktemp("six")
    plain = run_eval(str(SIX), RunOptions(out=str(base / "plain")))
    retried = run_eval(str(SIX), RunOptions(out=str(base / "retry"), retries=1))
    return plain, retried


def test_formulas():
    assert stats.chain_rate([0.97] * 6) == pytest.approx(0.97**6)
    assert round(0.97**6, 3) == 0.833
    assert stats.chain_rate([stats.step_rate_with_retries(0.97, 1)] * 6) == pytest.approx((1 - 0.03**2) ** 6)
    assert round((1 - 0.03**2) ** 6, 4) == 0.9946


def test_six_steps_lose_about_17_percent(six_runs):
    plain, _ = six_runs
    e2e = plain.results.to_dict()["end_to_end"]
    assert e2e["total"] == 1200
    assert e2e["ci"]["low"] <= 0.97**6 <= e2e["ci"]["high"]
    assert plain.exit_code == 0
    for step in plain.results.to_dict()["steps"]:
        assert step["ci"]["low"] <= 0.97 <= step["ci"]["high"], step["id"]
        assert step["attempts"] == step["reached"]  # no retries configured
        assert step["recovery_rate"] is None
    # chained: every later step is reached only by units that passed the earlier one
    steps = plain.results.to_dict()["steps"]
    for earlier, later in zip(steps, steps[1:]):
        assert later["reached"] == earlier["passed"]


def test_one_retry_wins_them_back(six_runs):
    _, retried = six_runs
    e2e = retried.results.to_dict()["end_to_end"]
    target = (1 - 0.03**2) ** 6
    assert e2e["ci"]["low"] <= target <= e2e["ci"]["high"]
    assert e2e["rate"] > 0.98
    recovered = sum(s["retry_recovered"] for s in retried.results.to_dict()["steps"])
    assert recovered > 100  # about 3% of 6 × 1200 attempts failed first and were retried
    for s in retried.results.to_dict()["steps"]:
        assert s["max_attempts"] == 2
        assert s["recovery_rate"] is not None and s["recovery_rate"] > 0.9


def test_same_draws_as_spec_formula(six_runs):
    """Attempt outcomes follow SHA-256("{seed}|{case}|{trial}|{step}|{attempt}") < fail_rate."""
    import hashlib

    plain, _ = six_runs
    lines = journal_text(plain.run_dir / "attempts.jsonl").splitlines()
    checked = 0
    for line in lines[1:400]:
        rec = json.loads(line)
        if "step" not in rec:
            continue
        key = f"7|{rec['case']}|{rec['trial']}|{rec['step']}|{rec['attempt']}".encode()
        draw = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
        assert (rec["outcome"] == "fail") == (draw < 0.03)
        checked += 1
    assert checked > 100


def test_identical_whatever_the_concurrency(tmp_path):
    from reliability_cli.runner import RunOptions, run_eval

    one = run_eval(str(SIX), RunOptions(out=str(tmp_path / "c1"), concurrency=1, limit=300, trials=2))
    many = run_eval(str(SIX), RunOptions(out=str(tmp_path / "c64"), concurrency=64, limit=300, trials=2))
    a = json.dumps(strip_volatile(one.results.to_dict()), sort_keys=True)
    b = json.dumps(strip_volatile(many.results.to_dict()), sort_keys=True)
    assert a == b
    assert (
        one.results.to_dict()["end_to_end"]["pass_at_k"]["2"] >= one.results.to_dict()["end_to_end"]["pass_at_k"]["1"]
    )


def test_trials_are_clustered_by_case(tmp_path):
    from reliability_cli.runner import RunOptions, run_eval

    r = run_eval(str(SIX), RunOptions(out=str(tmp_path / "k3"), limit=200, trials=3)).results.to_dict()
    e2e = r["end_to_end"]
    assert e2e["total"] == 600 and e2e["cases"] == 200
    shares: dict[str, list[int]] = {}
    for u in r["units"]:
        shares.setdefault(u["case"], []).append(int(u["passed"]))
    mean = sum(sum(v) / len(v) for v in shares.values()) / len(shares)
    assert e2e["rate"] == pytest.approx(mean)
    counts = [(len(v), sum(v)) for v in shares.values()]
    for k in (1, 2, 3):
        assert e2e["pass_at_k"][str(k)] == pytest.approx(stats.mean_pass_at_k(counts, k), abs=1e-12)
        assert e2e["pass_hat_k"][str(k)] == pytest.approx(stats.mean_pass_hat_k(counts, k), abs=1e-12)
    assert sorted(e2e["flaky"]) == sorted(c for c, v in shares.items() if 0 < sum(v) < len(v))
    # units are in eval-set order, then trial
    assert [u["trial"] for u in r["units"][:6]] == [1, 2, 3, 1, 2, 3]
