"""Paired comparison of two results documents: per step and end to end (SPEC §6, §7).

Two runs are compared only on the units both ran, paired unit by unit, so the noise of
"which cases happened to be drawn" cancels out. Each row tests ``H0: drop ≤ max_drop`` (the
drop is baseline rate − candidate rate on the shared units), one-sided, so ``max_drop`` is a
tolerance the verdict honours: a true drop within it fails at most ``alpha`` of the time.

- one trial per case: exact one-sided McNemar on the discordant units when ``max_drop`` is 0
  (baseline passed and candidate failed, ``b``; the reverse, ``c``); Tango's score test for
  paired proportions against the margin when it is not;
- K trials per case: the case is the sample; the sign-flip permutation test
  (:func:`scipy.stats.permutation_test`) of the per-case share differences shifted by the
  margin. Repeated trials of one case are never pooled as independent samples.

At a step, a unit counts only when both runs *reached* the step (chained mode skips later
steps after a failure). ``alpha`` is the family-wise level over the rows of one comparison
(Holm's step-down adjustment), so a pipeline with seven rows does not fail seven times as
often on noise alone. Each row's interval is the one-sided bound of ``delta`` at the level
Holm tests that row at (Newcombe's hybrid score interval, method 10 with the continuity
correction of φ; a t bound over cases with trials), so it matches the decision; the one
exception is a row whose own bound clears ``max_drop`` after Holm's step-down has already
stopped at a row with a smaller p, which is not rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import stats
from ..errors import ResultsError
from . import units as unit_steps
from .schema import GateRow, Results

SCHEMA = "relcheck.compare/v1"
E2E = "end_to_end"


def compare(base: Results, cand: Results, max_drop: float = 0.0, alpha: float = 0.05) -> dict[str, Any]:
    """Compare ``cand`` with ``base`` on their shared units.

    Returns:
        ``{"rows": [{name, step, base_rate, cand_rate, delta, drop, ci, p_value, p_adjusted,
        test, n_shared, regressed, …}], "regressed": bool, …}``; ``delta`` is candidate −
        baseline, ``drop`` its negation; ``ci`` is the two-sided ``1 − alpha`` interval of
        ``delta``.

    Raises:
        ResultsError: a results document whose units cannot be read.
    """
    bt, ct = _unit_table(base, "baseline"), _unit_table(cand, "candidate")
    base_steps, cand_steps = base.step_ids, cand.step_ids
    common = [s for s in cand_steps if s in base_steps]
    joined = bt.merge(ct, on=["case", "trial"], how="inner", suffixes=("_b", "_c"))
    clustered = _max_trial(bt) > 1 or _max_trial(ct) > 1
    rows: list[dict[str, Any]] = []
    if len(joined):
        everyone = joined["passed_b"] | True
        rows.append(
            _row(E2E, None, joined, joined["passed_b"], joined["passed_c"], everyone, everyone, clustered, max_drop)
        )
        for step in common:
            ib, ic = base_steps.index(step), cand_steps.index(step)
            fb, fc = joined["fail_idx_b"], joined["fail_idx_c"]
            rows.append(_row(f"step:{step}", step, joined, fb > ib, fc > ic, fb >= ib, fc >= ic, clustered, max_drop))
    _decide(rows, max_drop, alpha)
    return {
        "schema": SCHEMA,
        "baseline": _describe(base, len(bt)),
        "candidate": _describe(cand, len(ct)),
        "paired_on": "cases" if clustered else "units",
        "shared_units": int(len(joined)),
        "baseline_only_units": int(len(bt) - len(joined)),
        "candidate_only_units": int(len(ct) - len(joined)),
        "steps_not_compared": [s for s in base_steps if s not in common] + [s for s in cand_steps if s not in common],
        "max_drop": max_drop,
        "alpha": alpha,
        "rows": rows,
        "regressed": any(r["regressed"] for r in rows),
    }


def baseline_gates(baseline: Results, results: Results, max_drop: float, alpha: float) -> list[GateRow]:
    """The baseline gate rows of ``results``: one per step and one end to end."""
    doc = compare(baseline, results, max_drop, alpha)
    if doc["shared_units"] == 0:
        return [
            GateRow(
                name="baseline",
                threshold=max_drop,
                observed=None,
                bound=None,
                passed=False,
                detail="no unit (case, trial) is shared with the baseline: nothing to compare "
                "(different eval set, --filter-tag or --shard?)",
            )
        ]
    return [
        GateRow(
            name=f"baseline:{r['name']}",
            threshold=max_drop,
            observed=r["drop"],
            bound=None,
            passed=not r["regressed"],
            detail=row_detail(r, max_drop, alpha),
            p_value=r["p_value"],
            p_adjusted=r["p_adjusted"],
            n_shared=r["n_shared"],
            base_rate=r["base_rate"],
            cand_rate=r["cand_rate"],
            detectable_drop=r["detectable_drop"],
        )
        for r in doc["rows"]
    ]


def row_detail(r: Mapping[str, Any], max_drop: float, alpha: float) -> str:
    """One line: the drop, the two rates, the test and the verdict."""
    if r["n_shared"] == 0:
        return "no shared unit reached this step in both runs"
    unit = "cases" if r["test"] == "sign-flip" else "units"
    p = r["p_adjusted"]
    change = "drop" if r["drop"] >= 0 else "gain"
    head = (
        f"{change} {abs(r['drop']) * 100:.2f} pts ({r['base_rate']:.4f} → {r['cand_rate']:.4f} on "
        f"{r['n_shared']} shared {unit}); {r['test']} p={_p(p)} (H0: drop ≤ {max_drop:g})"
    )
    power = (
        ""
        if r["detectable_drop"] is None
        else f"; with {r['n_shared']} paired {unit} this gate detects drops ≥ {r['detectable_drop'] * 100:.1f} pts"
    )
    if r.get("regressed"):
        return f"{head} < {alpha:g}: drop significantly above max_drop {max_drop:g}, a regression{power}"
    return f"{head}: not a significant drop beyond max_drop{power}"


def _p(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


# ---------------------------------------------------------------------- internals


def _unit_table(doc: Results, which: str) -> Any:
    """``units`` as a DataFrame: case, trial, passed, fail_idx (the step index where it failed)."""
    import pandas as pd

    steps = doc.step_ids
    rows = [(u.case, u.trial, u.passed, unit_steps.failed_index(u, steps)) for u in doc.units]
    table = pd.DataFrame(rows, columns=["case", "trial", "passed", "fail_idx"])
    if table.duplicated(["case", "trial"]).any():
        dup = table[table.duplicated(["case", "trial"])].iloc[0]
        raise ResultsError(f"{which}: unit {dup['case']}[{dup['trial']}] appears twice")
    return table


def _max_trial(table: Any) -> int:
    return int(table["trial"].max()) if len(table) else 1


def _describe(doc: Results, units: int) -> dict[str, Any]:
    return {
        "pipeline": doc.run.pipeline,
        "id": doc.run.id,
        "trials": doc.run.trials,
        "units": units,
        "rate": doc.end_to_end.rate,
    }


def _row(
    name: str, step: str | None, joined: Any, pb: Any, pc: Any, rb: Any, rc: Any, clustered: bool, margin: float
) -> dict[str, Any]:
    """One row; ``pb``/``pc`` passed and ``rb``/``rc`` reached, per shared unit, in each run.

    One trial: units that reached the step in both runs, paired. K trials: per case, the
    share of its trials that passed among those that reached the step, in each run; a case
    counts when both runs reached the step in at least one of its trials.
    """
    row: dict[str, Any] = {
        "name": name,
        "step": step,
        "base_rate": None,
        "cand_rate": None,
        "delta": None,
        "drop": None,
        "ci": None,
        "p_value": None,
        "p_adjusted": None,
        "test": _test_name(clustered, margin),
        "n_shared": 0,
        "n_units": 0,
        "regressed": False,
        "detectable_drop": None,
    }
    if clustered:
        frame = joined[["case"]].assign(
            pb=(pb & rb).to_numpy(), rb=rb.to_numpy(), pc=(pc & rc).to_numpy(), rc=rc.to_numpy()
        )
        sums = frame.groupby("case", sort=False).sum()
        sums = sums[(sums["rb"] > 0) & (sums["rc"] > 0)]
        row["n_units"] = int(sums["rb"].sum() + sums["rc"].sum()) // 2
        if len(sums) == 0:
            return row
        shares = sums.assign(b=sums["pb"] / sums["rb"], c=sums["pc"] / sums["rc"])
        diffs = (shares["b"] - shares["c"]).tolist()
        m = len(diffs)
        base_rate, cand_rate = float(shares["b"].mean()), float(shares["c"].mean())
        drop = sum(diffs) / m
        p = stats.paired_shares_test_one_sided(diffs, margin)
        spread = sum(d * d for d in diffs) / m
        row.update(n_shared=m, _bound=lambda level: -stats.t_interval(diffs, 1 - 2 * level)[0])
    else:
        both_reached = (rb & rc).to_numpy(dtype=bool)
        b_arr, c_arr = pb.to_numpy(dtype=bool)[both_reached], pc.to_numpy(dtype=bool)[both_reached]
        n = len(b_arr)
        row["n_units"] = n
        if n == 0:
            return row
        both = int((b_arr & c_arr).sum())
        b = int((b_arr & ~c_arr).sum())
        c = int((~b_arr & c_arr).sum())
        neither = n - both - b - c
        base_rate, cand_rate = (both + b) / n, (both + c) / n
        drop = (b - c) / n
        p = stats.mcnemar_exact_one_sided(b, c) if margin == 0 else stats.tango_paired_test(b, c, n, margin)
        spread = (b + c) / n
        row.update(
            n_shared=n,
            discordant={"base_only_passed": b, "cand_only_passed": c},
            _bound=lambda level: stats.newcombe_paired_difference(both, b, c, neither, 1 - 2 * level)[1],
        )
    row.update(
        base_rate=base_rate,
        cand_rate=cand_rate,
        delta=cand_rate - base_rate,
        drop=drop,
        p_value=float(p),
        _spread=spread,
    )
    return row


def _test_name(clustered: bool, margin: float) -> str:
    if clustered:
        return "sign-flip"
    return "mcnemar-exact" if margin == 0 else "tango-score"


def _decide(rows: Sequence[dict[str, Any]], max_drop: float, alpha: float) -> None:
    """Holm over the rows: adjusted p-values, verdicts, and each row's one-sided bound.

    Holm tests the row of rank j (0-based, by p) at ``alpha / (m − j)``. The interval a row
    shows is the one-sided bound of ``delta`` (candidate − baseline) at that same level, so
    it says what the verdict decided: a row regresses when its drop is significantly above
    ``max_drop``.
    """
    tested = [r for r in rows if r["p_value"] is not None]
    adjusted = stats.holm([r["p_value"] for r in tested])
    order = sorted(range(len(tested)), key=lambda i: tested[i]["p_value"])
    m = len(tested)
    for rank, i in enumerate(order):
        r = tested[i]
        level = alpha / (m - rank)
        r["p_adjusted"] = adjusted[i]
        r["regressed"] = bool(adjusted[i] < alpha)
        bound = r.pop("_bound")(level)  # one-sided bound of delta at the row's Holm level
        r["ci"] = {"low": -1.0, "high": min(1.0, bound), "level": level, "sided": "upper"}
        r["detectable_drop"] = stats.detectable_drop(r["n_shared"], r.pop("_spread"), max_drop, alpha / m)
