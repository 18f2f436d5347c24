"""Deterministic inputs for the compare and plan views and their JSON golden files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reliability_cli.results import schema
from tests.helpers import results_from

from .helpers import doc_from_fail_idx, simulate_fail_idx

SIX = ["extract", "classify", "lookup", "plan", "draft", "verify"]
GOLDEN = Path(__file__).parent / "golden"


def paired_pair(tmp: Path) -> tuple[Path, Path]:
    """One trial per case: the candidate loses about 7 points at ``lookup`` and gains at ``draft``."""
    rng = np.random.default_rng(1)
    fail = simulate_fail_idx([0.99, 0.98, 0.97, 0.99, 0.95, 0.99], 1000, rng)
    worse = np.where((np.arange(1000) % 14 == 0) & (fail > 2), 2, fail)  # more fail at lookup
    better = np.where((worse == 4) & (np.arange(1000) % 2 == 0), 6, worse)  # fewer fail at draft
    base = doc_from_fail_idx(SIX, fail)
    cand = doc_from_fail_idx(SIX[:5] + ["review"], better)
    return _write(tmp / "base.json", base), _write(tmp / "cand.json", cand)


def improved_pair(tmp: Path) -> tuple[Path, Path]:
    """The candidate is better everywhere (an improvement must read as a gain)."""
    rng = np.random.default_rng(2)
    fail = simulate_fail_idx([0.97] * 6, 1000, rng)
    better = np.where((fail < 6) & (np.arange(1000) % 3 == 0), 6, fail)
    return _write(tmp / "base.json", doc_from_fail_idx(SIX, fail)), _write(
        tmp / "cand.json", doc_from_fail_idx(SIX, better)
    )


def trials_pair(tmp: Path) -> tuple[Path, Path]:
    """Three trials per case: compared per case (sign-flip, exact over 2^14 sign patterns)."""
    rng = np.random.default_rng(5)
    base = doc_from_fail_idx(SIX, simulate_fail_idx([0.97] * 6, 42, rng), trials=3)
    cand = doc_from_fail_idx(SIX, simulate_fail_idx([0.97, 0.97, 0.6, 0.97, 0.97, 0.97], 42, rng), trials=3)
    return _write(tmp / "base.json", base), _write(tmp / "cand.json", cand)


def unpaired_pair(tmp: Path) -> tuple[Path, Path]:
    """An eval and production traces: agree at extract, over at lookup, under at classify."""
    base = results_from(
        [
            {"id": "extract", "passed": 990, "reached": 1000},
            {"id": "classify", "passed": 900, "reached": 990},
            {"id": "lookup", "passed": 890, "reached": 900},
            {"id": "only_eval", "passed": 5, "reached": 5},
        ],
        {"passed": 890, "total": 1000, "rate": 0.89},
        {"source": "eval", "id": "ev-1", "pipeline": "support"},
    )
    cand = results_from(
        [
            {"id": "extract", "passed": 395, "reached": 400},
            {"id": "classify", "passed": 390, "reached": 395},
            {"id": "lookup", "passed": 300, "reached": 390},
        ],
        {"passed": 300, "total": 400, "rate": 0.75},
        {"source": "traces", "id": "tr-1", "pipeline": "support"},
    )
    return _write(tmp / "eval.json", base), _write(tmp / "traces.json", cand)


def plan_results(tmp: Path, cost: float | None = 2.0, weak: float = 0.9) -> Path:
    """Six steps, one weak, one with measured retries; priced."""
    rows = []
    for i, sid in enumerate(SIX):
        p = weak if sid == "lookup" else 0.97
        retries = 1 if sid == "draft" else 0
        rate = 1 - (1 - p) * 0.5 if retries else p
        rows.append(
            {
                "id": sid,
                "max_attempts": retries + 1,
                "reached": 1000,
                "passed": round(rate * 1000),
                "first_try_rate": p,
                "rate": rate,
                "recovery_rate": 0.5 if retries else None,
                "latency_ms": {"p50": 120.0 + 10 * i},
                "attempts": 1000,
                "cost_usd": cost,
            }
        )
    e2e = 1.0
    for r in rows:
        e2e *= r["rate"]
    return _write(tmp / "results.json", results_from(rows, {"rate": e2e, "total": 1000, "passed": round(e2e * 1000)}))


def _write(path: Path, results: schema.Results) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    schema.write(results, path)
    return path
