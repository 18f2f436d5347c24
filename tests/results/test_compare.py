"""Paired comparison and the baseline gate: McNemar, per-case shares, simulated regressions and noise."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binomtest

from reliability_cli import stats
from reliability_cli.results.compare import baseline_gates, compare
from reliability_cli.results.schema import GateOverrides

from .helpers import doc_from_fail_idx, run, simulate_fail_idx, write_pipeline

SIX = [f"s{i}" for i in range(6)]


def _paired_docs(b: int, c: int, both: int, neither: int) -> tuple[dict, dict]:
    """One step; exactly b units pass only in the baseline, c only in the candidate."""
    base = [1] * both + [1] * b + [0] * c + [0] * neither
    cand = [1] * both + [0] * b + [1] * c + [0] * neither
    return doc_from_fail_idx(["a"], base), doc_from_fail_idx(["a"], cand)


@pytest.mark.parametrize(
    "b,c", [(0, 0), (0, 5), (5, 0), (1, 1), (3, 9), (9, 3), (12, 2), (40, 25), (0, 60), (60, 0), (137, 98)]
)
def test_mcnemar_p_equals_scipy_binomtest(b, c):
    doc = compare(*_paired_docs(b, c, both=200, neither=7), max_drop=0.0, alpha=0.05)
    row = next(r for r in doc.rows if r.name == "step:a")
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5, alternative="greater").pvalue
    assert row.p_value == pytest.approx(expected, abs=1e-9)
    assert row.test == "mcnemar-exact"
    assert row.n_shared == 200 + b + c + 7
    assert row.drop == pytest.approx((b - c) / row.n_shared)
    assert row.ci.low <= row.delta <= row.ci.high
    # two identical rows (end to end = the only step): Holm doubles the smallest p
    assert row.p_adjusted == pytest.approx(min(1.0, 2 * expected), abs=1e-9)


def test_units_that_did_not_reach_a_step_are_left_out_of_its_row():
    steps = ["a", "b"]
    # unit 0: both pass; unit 1: base fails at a (b unreached); unit 2: cand fails at a; unit 3: both fail b
    base = doc_from_fail_idx(steps, [2, 0, 2, 1])
    cand = doc_from_fail_idx(steps, [2, 2, 0, 1])
    rows = {r.name: r for r in compare(base, cand).rows}
    assert rows["step:a"].n_shared == 4
    assert rows["step:b"].n_shared == 2  # units 0 and 3 reached b in both runs
    assert rows["step:b"].base_rate == 0.5 and rows["step:b"].cand_rate == 0.5


def test_only_units_both_runs_share_are_compared():
    base = doc_from_fail_idx(["a"], [1] * 50 + [0] * 50)
    cand = doc_from_fail_idx(["a"], [1] * 50)  # cases c00000..c00049, all passing in both
    doc = compare(base, cand)
    assert doc.shared_units == 50 and doc.baseline_only_units == 50
    assert doc.rows[0].drop == 0


def test_k_trials_compare_per_case_shares_never_pooled_units():
    rng = np.random.default_rng(5)
    trials, cases = 5, 200
    base = doc_from_fail_idx(SIX, simulate_fail_idx([0.97] * 6, cases * trials, rng), trials=trials)
    cand = doc_from_fail_idx(
        SIX, simulate_fail_idx([0.97, 0.97, 0.85, 0.97, 0.97, 0.97], cases * trials, rng), trials=trials
    )
    doc = compare(base, cand, max_drop=0.02, alpha=0.05)
    assert doc.paired_on == "cases"
    row = next(r for r in doc.rows if r.name == "step:s2")
    assert row.test == "sign-flip" and row.n_shared == cases and 0 < row.n_units < cases * trials

    # recompute the per-case differences by hand
    def shares(d):
        out = {}
        for u in d.units:
            if u.passed or SIX.index(u.failed_step) >= 2:
                p, n = out.get(u.case, (0, 0))
                out[u.case] = (p + (u.passed or SIX.index(u.failed_step) > 2), n + 1)
        return {k: p / n for k, (p, n) in out.items()}

    sb, sc = shares(base), shares(cand)
    diffs = [sb[k] - sc[k] for k in sb if k in sc]
    assert row.drop == pytest.approx(sum(diffs) / len(diffs), abs=1e-12)
    assert row.p_value == pytest.approx(stats.paired_shares_test_one_sided(diffs), abs=1e-12)
    assert row.regressed


def test_a_step_dropping_from_97_to_90_percent_on_1000_units_fails_the_baseline_gate(tmp_path):
    """Run the mock pipeline in-process: baseline step b at 3% wrong, candidate at 10%."""
    base_p = write_pipeline(tmp_path / "base", [("a", 0.03, "wrong"), ("b", 0.03, "wrong"), ("c", 0.03, "wrong")], 1000)
    cand_p = write_pipeline(tmp_path / "cand", [("a", 0.03, "wrong"), ("b", 0.10, "wrong"), ("c", 0.03, "wrong")], 1000)
    base = run(base_p, tmp_path / "run-base", seed=11, concurrency=64)
    assert base.exit_code == 0
    cand = run(
        cand_p,
        tmp_path / "run-cand",
        seed=11,
        concurrency=64,
        gate_overrides=GateOverrides(
            baseline_path=str(tmp_path / "run-base" / "results.json"), max_drop=0.02, alpha=0.05
        ),
    )
    gates = {g["name"]: g for g in cand.results.to_dict()["gates"]}
    b_rate = next(s for s in cand.results.to_dict()["steps"] if s["id"] == "b")["rate"]
    assert 0.87 < b_rate < 0.93
    assert not gates["baseline:step:b"]["passed"]
    assert gates["baseline:step:b"]["observed"] > 0.02 and gates["baseline:step:b"]["p_value"] < 1e-6
    assert gates["baseline:step:a"]["passed"] and gates["baseline:step:c"]["passed"]
    assert cand.exit_code == 1 and cand.results.to_dict()["verdict"] == "fail"
    saved = json.loads((tmp_path / "run-cand" / "results.json").read_text())
    assert any(g["name"] == "baseline:end_to_end" for g in saved["gates"])


def test_seeded_noise_alone_passes_the_baseline_gate_in_at_least_95_of_100_seeds():
    """Six steps at 97% on 1,000 units; the candidate differs from the baseline only by its seed."""
    rates = [0.97] * 6
    base = doc_from_fail_idx(SIX, simulate_fail_idx(rates, 1000, np.random.default_rng(0)))
    passes = 0
    for seed in range(1, 101):
        cand = doc_from_fail_idx(SIX, simulate_fail_idx(rates, 1000, np.random.default_rng(seed)))
        passes += all(g.passed for g in baseline_gates(base, cand, max_drop=0.02, alpha=0.05))
    print(f"noise: {passes}/100 seeds pass the baseline gate")
    assert passes >= 95
    # and the same gate catches the 97% → 90% drop in every seed
    caught = 0
    for seed in range(101, 121):
        cand = doc_from_fail_idx(
            SIX, simulate_fail_idx([0.97, 0.97, 0.90, 0.97, 0.97, 0.97], 1000, np.random.default_rng(seed))
        )
        caught += not all(g.passed for g in baseline_gates(base, cand, max_drop=0.02, alpha=0.05))
    assert caught == 20


def test_seeded_noise_of_the_real_mock_pipeline_passes(tmp_path):
    steps = [(s, 0.03, "wrong") for s in SIX]
    pipeline = write_pipeline(tmp_path / "p", steps, 1000)
    base = run(pipeline, tmp_path / "r0", seed=0, concurrency=64)
    passed = 0
    for seed in (1, 2, 3):
        cand = run(
            pipeline,
            tmp_path / f"r{seed}",
            seed=seed,
            concurrency=64,
            gate_overrides=GateOverrides(baseline_path=str(tmp_path / "r0" / "results.json"), max_drop=0.02),
        )
        passed += cand.exit_code == 0
        assert len([g for g in cand.results.to_dict()["gates"] if g["name"].startswith("baseline:")]) == 7
    assert base.exit_code == 0 and passed == 3


def test_no_shared_units_fails_the_gate_with_a_reason():
    base = doc_from_fail_idx(["a"], [1] * 10, case_prefix="x")
    cand = doc_from_fail_idx(["a"], [1] * 10, case_prefix="y")
    (gate,) = baseline_gates(base, cand, 0.02, 0.05)
    assert not gate.passed and "shared" in gate.detail


# ---------------------------------------------------------------------- CLI


def _write(path, doc):
    path.write_text(json.dumps(doc if isinstance(doc, dict) else doc.to_dict()))
    return path


def test_compare_command_exit_codes(tmp_path, cli):
    rng = np.random.default_rng(1)
    fail = simulate_fail_idx([0.97] * 6, 1000, rng)
    base = _write(tmp_path / "base.json", doc_from_fail_idx(SIX, fail))
    same = _write(tmp_path / "same.json", doc_from_fail_idx(SIX, fail))
    worse = np.where((np.arange(1000) % 10 == 0) & (fail > 2), 2, fail)  # 10% more fail at s2
    bad = _write(tmp_path / "worse.json", doc_from_fail_idx(SIX, worse))

    code, out, _ = cli("compare", base, same)
    assert code == 0 and "no significant regression" in out
    code, out, _ = cli(
        "compare", base, bad, "--max-drop", "0.02", "--json", tmp_path / "c.json", "--markdown", tmp_path / "c.md"
    )
    assert code == 1 and "REGRESSED" in out and "step:s2" in out
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["regressed"] and {r["name"] for r in doc["rows"] if r["regressed"]} >= {"step:s2"}
    assert "regressed" in (tmp_path / "c.md").read_text()
    # a drop within --max-drop is not a regression
    code, _, _ = cli("compare", base, bad, "--max-drop", "0.5")
    assert code == 0
    code, _, err = cli("compare", base, tmp_path / "missing.json")
    assert code == 2 and "no such results file" in err
    _write(tmp_path / "junk.json", {"schema": "other"})
    code, _, err = cli("compare", base, tmp_path / "junk.json")
    assert code == 2 and "not a relcheck results file" in err
    other = _write(tmp_path / "other.json", doc_from_fail_idx(SIX, fail, case_prefix="z"))
    code, _, err = cli("compare", base, other)
    assert code == 2 and "shares no unit" in err
