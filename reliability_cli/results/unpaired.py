"""Unpaired comparison of two results documents: eval versus production (``compare --unpaired``).

Two runs that share step names but not units (an offline eval and ``relcheck traces`` of
production) cannot be paired unit by unit. Per step, and end to end, each run gives a rate
``passed / reached`` over its own units, and the two rates are compared as independent
binomial proportions:

- the difference (candidate − baseline) with **Newcombe's hybrid score interval** (his
  method 10: Wilson score intervals of each rate, combined) at ``1 − alpha``;
- a two-sided **score test** of equal rates (the pooled z test, the test the Wilson score
  intervals come from), with **Holm**'s step-down adjustment across the rows, so that
  ``alpha`` is the family-wise level.

A row where the baseline's rate is significantly higher is one the baseline (the offline
eval) *overestimates*; significantly lower, *underestimates*. A row regresses when the
candidate's drop exceeds ``max_drop`` and is significant: the exit code of ``compare``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import stats
from ..errors import ResultsError

SCHEMA = "relcheck.compare-unpaired/v1"
E2E = "end_to_end"


def newcombe_unpaired(x1: int, n1: int, x2: int, n2: int, confidence: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``x2/n2 − x1/n1`` (independent samples).

    Newcombe RG (1998), Statistics in Medicine 17:873–890, method 10.
    """
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = stats.wilson(x1, n1, confidence)
    l2, u2 = stats.wilson(x2, n2, confidence)
    d = p2 - p1
    lo = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    hi = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return max(-1.0, lo), min(1.0, hi)


def score_test_two_sided(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided score (pooled z) test of equal proportions; 1.0 when both rates are 0 or 1.

    Equals statsmodels ``proportions_ztest([x1, x2], [n1, n2])`` (its default pools).
    """
    from scipy.stats import norm

    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return float(2 * norm.sf(abs(z)))


def compare_unpaired(
    base: Mapping[str, Any], cand: Mapping[str, Any], max_drop: float = 0.0, alpha: float = 0.05
) -> dict[str, Any]:
    """Compare ``cand`` with ``base`` step by step (shared step ids) and end to end, unpaired.

    Raises:
        ResultsError: a run with repeated trials (its units are not independent samples).
    """
    for which, doc in (("baseline", base), ("candidate", cand)):
        if (doc.get("run") or {}).get("trials", 1) > 1:
            raise ResultsError(
                f"{which} has {doc['run']['trials']} trials per case: its units are not "
                "independent samples, and --unpaired compares independent proportions",
                hint="compare a run with one trial per case",
            )
    base_steps = {s["id"]: s for s in base["steps"]}
    cand_steps = {s["id"]: s for s in cand["steps"]}
    common = [s for s in base_steps if s in cand_steps]
    be, ce = base["end_to_end"], cand["end_to_end"]
    rows = [_row(E2E, None, be["passed"], be["total"], ce["passed"], ce["total"], alpha)]
    for sid in common:
        b, c = base_steps[sid], cand_steps[sid]
        rows.append(_row(f"step:{sid}", sid, b["passed"], b["reached"], c["passed"], c["reached"], alpha))
    tested = sorted((r for r in rows if r["p_value"] is not None), key=lambda r: r["p_value"])
    running = 0.0
    for i, r in enumerate(tested):  # Holm's step-down adjustment
        running = max(running, min(1.0, (len(tested) - i) * r["p_value"]))
        r["p_adjusted"] = running
    for r in rows:
        significant = r["p_adjusted"] is not None and r["p_adjusted"] < alpha
        r["significant"] = significant
        r["estimate"] = (
            None
            if r["p_value"] is None
            else ("agrees" if not significant else "over" if r["base_rate"] > r["cand_rate"] else "under")
        )
        r["regressed"] = bool(significant and r["drop"] is not None and r["drop"] > max_drop)
    return {
        "schema": SCHEMA,
        "paired": False,
        "alpha": alpha,
        "max_drop": max_drop,
        "baseline": _describe(base),
        "candidate": _describe(cand),
        "rows": rows,
        "steps_not_compared": [s for s in base_steps if s not in cand_steps]
        + [s for s in cand_steps if s not in base_steps],
        "regressed": any(r["regressed"] for r in rows),
    }


def _row(name: str, step: str | None, x1: int, n1: int, x2: int, n2: int, alpha: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": name,
        "step": step,
        "base_passed": x1,
        "base_n": n1,
        "cand_passed": x2,
        "cand_n": n2,
        "base_rate": None,
        "cand_rate": None,
        "delta": None,
        "drop": None,
        "ci": None,
        "p_value": None,
        "p_adjusted": None,
        "test": "score-z",
        "interval": "newcombe-hybrid-score",
    }
    if n1 == 0 or n2 == 0:
        return row
    p1, p2 = x1 / n1, x2 / n2
    lo, hi = newcombe_unpaired(x1, n1, x2, n2, 1 - alpha)
    row.update(
        base_rate=p1,
        cand_rate=p2,
        delta=p2 - p1,
        drop=p1 - p2,
        ci={"low": lo, "high": hi},
        p_value=score_test_two_sided(x1, n1, x2, n2),
    )
    return row


def _describe(doc: Mapping[str, Any]) -> dict[str, Any]:
    run = doc.get("run") or {}
    return {
        "pipeline": run.get("pipeline"),
        "id": run.get("id"),
        "source": run.get("source", "eval"),
        "units": (doc.get("end_to_end") or {}).get("total"),
        "rate": (doc.get("end_to_end") or {}).get("rate"),
    }


def describe_row(r: Mapping[str, Any]) -> str:
    """One line for a row: the two rates, the difference and its interval, the verdict."""
    if r["p_value"] is None:
        return f"{r['name']}: not reached in one of the runs"
    verdict = {
        "over": "the baseline overestimates the candidate",
        "under": "the baseline underestimates the candidate",
        "agrees": "no significant difference",
    }[r["estimate"]]
    return (
        f"{r['name']}: {r['base_passed']}/{r['base_n']} = {r['base_rate']:.2%} vs {r['cand_passed']}/{r['cand_n']} = "
        f"{r['cand_rate']:.2%}; difference {r['delta'] * 100:+.1f} pts ({r['ci']['low'] * 100:+.1f}…"
        f"{r['ci']['high'] * 100:+.1f}); Holm-adjusted p={r['p_adjusted']:.3g}: {verdict}"
    )


def render_markdown(doc: Mapping[str, Any]) -> str:
    out = [
        f"## relcheck compare --unpaired: {doc['baseline'].get('source')} vs {doc['candidate'].get('source')}",
        "",
        "| row | baseline | candidate | difference | CI | p (Holm) | verdict |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for r in doc["rows"]:
        if r["p_value"] is None:
            out.append(f"| {r['name']} | — | — | — | — | — | n/a |")
            continue
        out.append(
            f"| {r['name']} | {r['base_rate']:.2%} ({r['base_n']}) | {r['cand_rate']:.2%} ({r['cand_n']}) | "
            f"{r['delta'] * 100:+.1f} pts | {r['ci']['low'] * 100:+.1f}…{r['ci']['high'] * 100:+.1f} | "
            f"{r['p_adjusted']:.3g} | {r['estimate']} |"
        )
    return "\n".join(out) + "\n"
