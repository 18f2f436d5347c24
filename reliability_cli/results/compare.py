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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .. import stats
from ..errors import ResultsError
from . import units as unit_steps
from .schema import GateRow, Results

SCHEMA = "relcheck.compare/v1"
E2E = "end_to_end"


@dataclass(frozen=True)
class RunSummary:
    """One side of a comparison: which run, how many units, its end-to-end rate."""

    pipeline: str | None
    id: str | None
    trials: int
    units: int
    rate: float | None


@dataclass(frozen=True)
class DeltaBound:
    """The one-sided bound of ``delta`` at the level Holm tests the row at (``low`` is −1)."""

    low: float
    high: float
    level: float
    sided: Literal["upper"] = "upper"


@dataclass(frozen=True)
class Discordant:
    """One trial per case: units that passed in one run only."""

    base_only_passed: int
    cand_only_passed: int


@dataclass(frozen=True)
class CompareRow:
    """One row: end to end, or one step both runs have.

    ``delta`` is candidate − baseline, ``drop`` its negation (both ``None`` when no shared
    unit reached the row); ``regressed`` when the drop is significantly above ``max_drop``.
    """

    name: str
    step: str | None
    test: str
    base_rate: float | None = None
    cand_rate: float | None = None
    delta: float | None = None
    drop: float | None = None
    ci: DeltaBound | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    n_shared: int = 0
    n_units: int = 0
    regressed: bool = False
    detectable_drop: float | None = None
    discordant: Discordant | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as ``relcheck.compare/v1`` writes it (``discordant`` only when counted)."""
        out: dict[str, Any] = {
            "name": self.name,
            "step": self.step,
            "base_rate": self.base_rate,
            "cand_rate": self.cand_rate,
            "delta": self.delta,
            "drop": self.drop,
            "ci": None if self.ci is None else vars(self.ci).copy(),
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "test": self.test,
            "n_shared": self.n_shared,
            "n_units": self.n_units,
            "regressed": self.regressed,
            "detectable_drop": self.detectable_drop,
        }
        if self.discordant is not None:
            out["discordant"] = vars(self.discordant).copy()
        return out


@dataclass(frozen=True)
class Comparison:
    """What ``relcheck compare`` computes: the paired rows and what was (not) shared."""

    baseline: RunSummary
    candidate: RunSummary
    paired_on: Literal["units", "cases"]
    shared_units: int
    baseline_only_units: int
    candidate_only_units: int
    steps_not_compared: tuple[str, ...]
    max_drop: float
    alpha: float
    rows: tuple[CompareRow, ...] = field(default_factory=tuple)

    @property
    def regressed(self) -> bool:
        """Whether some row regressed: the exit code of ``compare``."""
        return any(r.regressed for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """The ``relcheck.compare/v1`` document (``compare --json``)."""
        return {
            "schema": SCHEMA,
            "baseline": vars(self.baseline).copy(),
            "candidate": vars(self.candidate).copy(),
            "paired_on": self.paired_on,
            "shared_units": self.shared_units,
            "baseline_only_units": self.baseline_only_units,
            "candidate_only_units": self.candidate_only_units,
            "steps_not_compared": list(self.steps_not_compared),
            "max_drop": self.max_drop,
            "alpha": self.alpha,
            "rows": [r.to_dict() for r in self.rows],
            "regressed": self.regressed,
        }


def compare(base: Results, cand: Results, max_drop: float = 0.0, alpha: float = 0.05) -> Comparison:
    """Compare ``cand`` with ``base`` on their shared units.

    Returns:
        The :class:`Comparison`: a row end to end and one per step both runs have, each
        with both rates, ``delta`` (candidate − baseline), the one-sided bound of ``delta``
        at its Holm level, the p-values and the verdict.

    Raises:
        ResultsError: a results document whose units cannot be read.
    """
    bt, ct = _unit_table(base, "baseline"), _unit_table(cand, "candidate")
    base_steps, cand_steps = base.step_ids, cand.step_ids
    common = [s for s in cand_steps if s in base_steps]
    joined = bt.merge(ct, on=["case", "trial"], how="inner", suffixes=("_b", "_c"))
    clustered = _max_trial(bt) > 1 or _max_trial(ct) > 1
    pending: list[_Pending] = []
    if len(joined):
        everyone = joined["passed_b"] | True
        pending.append(
            _row(E2E, None, joined, joined["passed_b"], joined["passed_c"], everyone, everyone, clustered, max_drop)
        )
        for step in common:
            ib, ic = base_steps.index(step), cand_steps.index(step)
            fb, fc = joined["fail_idx_b"], joined["fail_idx_c"]
            pending.append(
                _row(f"step:{step}", step, joined, fb > ib, fc > ic, fb >= ib, fc >= ic, clustered, max_drop)
            )
    return Comparison(
        baseline=_describe(base, len(bt)),
        candidate=_describe(cand, len(ct)),
        paired_on="cases" if clustered else "units",
        shared_units=int(len(joined)),
        baseline_only_units=int(len(bt) - len(joined)),
        candidate_only_units=int(len(ct) - len(joined)),
        steps_not_compared=tuple(
            [s for s in base_steps if s not in common] + [s for s in cand_steps if s not in common]
        ),
        max_drop=max_drop,
        alpha=alpha,
        rows=tuple(_decide(pending, max_drop, alpha)),
    )


def baseline_gates(baseline: Results, results: Results, max_drop: float, alpha: float) -> list[GateRow]:
    """The baseline gate rows of ``results``: one per step and one end to end."""
    doc = compare(baseline, results, max_drop, alpha)
    if doc.shared_units == 0:
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
            name=f"baseline:{r.name}",
            threshold=max_drop,
            observed=r.drop,
            bound=None,
            passed=not r.regressed,
            detail=row_detail(r, max_drop, alpha),
            p_value=r.p_value,
            p_adjusted=r.p_adjusted,
            n_shared=r.n_shared,
            base_rate=r.base_rate,
            cand_rate=r.cand_rate,
            detectable_drop=r.detectable_drop,
        )
        for r in doc.rows
    ]


def change_text(drop: float, digits: int = 2) -> str:
    """A drop in rate in words, so that an improvement never reads as a drop.

    ``0.0233`` → ``drop 2.33 pts``; ``-0.0027`` → ``gain 0.27 pts``; a change that rounds
    to zero at ``digits`` → ``no change (0.00 pts)``.
    """
    points = round(abs(drop) * 100, digits)
    if points == 0:
        return f"no change ({0:.{digits}f} pts)"
    return f"{'drop' if drop > 0 else 'gain'} {points:.{digits}f} pts"


def row_detail(r: CompareRow, max_drop: float, alpha: float) -> str:
    """One sentence: the change, the two rates, the test and the verdict."""
    if r.n_shared == 0 or r.drop is None or r.base_rate is None or r.cand_rate is None:
        return "no shared unit reached this step in both runs"
    unit = "cases" if r.test == "sign-flip" else "units"
    head = (
        f"{change_text(r.drop)} ({r.base_rate:.4f} → {r.cand_rate:.4f} on "
        f"{r.n_shared} shared {unit}); {r.test} p={p_text(r.p_adjusted)} (H0: drop ≤ {max_drop:g})"
    )
    power = (
        ""
        if r.detectable_drop is None
        else f"; with {r.n_shared} paired {unit} this gate detects drops ≥ {r.detectable_drop * 100:.1f} pts"
    )
    if r.regressed:
        return f"{head} < {alpha:g}: drop significantly above max_drop {max_drop:g}, a regression{power}"
    return f"{head}: not a significant drop beyond max_drop{power}"


def p_text(p: float | None) -> str:
    """A p-value for people: ``0.042``, ``0.00084``, ``7.7e-38``; ``—`` when there is none."""
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


def _describe(doc: Results, units: int) -> RunSummary:
    return RunSummary(
        pipeline=doc.run.pipeline, id=doc.run.id, trials=doc.run.trials, units=units, rate=doc.end_to_end.rate
    )


@dataclass(frozen=True)
class _Pending:
    """A row before Holm: its own p-value, and what its bound and power need."""

    row: CompareRow
    bound: Callable[[float], float] | None = None  # the one-sided bound of delta at a level
    spread: float = 0.0


def _row(
    name: str, step: str | None, joined: Any, pb: Any, pc: Any, rb: Any, rc: Any, clustered: bool, margin: float
) -> _Pending:
    """One row; ``pb``/``pc`` passed and ``rb``/``rc`` reached, per shared unit, in each run.

    One trial: units that reached the step in both runs, paired. K trials: per case, the
    share of its trials that passed among those that reached the step, in each run; a case
    counts when both runs reached the step in at least one of its trials.
    """
    empty = CompareRow(name=name, step=step, test=_test_name(clustered, margin))
    discordant = None
    bound: Callable[[float], float]
    if clustered:
        frame = joined[["case"]].assign(
            pb=(pb & rb).to_numpy(), rb=rb.to_numpy(), pc=(pc & rc).to_numpy(), rc=rc.to_numpy()
        )
        sums = frame.groupby("case", sort=False).sum()
        sums = sums[(sums["rb"] > 0) & (sums["rc"] > 0)]
        n_units = int(sums["rb"].sum() + sums["rc"].sum()) // 2
        if len(sums) == 0:
            return _Pending(replace(empty, n_units=n_units))
        shares = sums.assign(b=sums["pb"] / sums["rb"], c=sums["pc"] / sums["rc"])
        diffs = (shares["b"] - shares["c"]).tolist()
        n_shared = len(diffs)
        base_rate, cand_rate = float(shares["b"].mean()), float(shares["c"].mean())
        drop = sum(diffs) / n_shared
        p = stats.paired_shares_test_one_sided(diffs, margin)
        spread = sum(d * d for d in diffs) / n_shared

        def bound(level: float) -> float:
            return -stats.t_interval(diffs, 1 - 2 * level)[0]

    else:
        both_reached = (rb & rc).to_numpy(dtype=bool)
        b_arr, c_arr = pb.to_numpy(dtype=bool)[both_reached], pc.to_numpy(dtype=bool)[both_reached]
        n_shared = n_units = len(b_arr)
        if n_shared == 0:
            return _Pending(empty)
        both = int((b_arr & c_arr).sum())
        b = int((b_arr & ~c_arr).sum())
        c = int((~b_arr & c_arr).sum())
        neither = n_shared - both - b - c
        base_rate, cand_rate = (both + b) / n_shared, (both + c) / n_shared
        drop = (b - c) / n_shared
        p = stats.mcnemar_exact_one_sided(b, c) if margin == 0 else stats.tango_paired_test(b, c, n_shared, margin)
        spread = (b + c) / n_shared
        discordant = Discordant(base_only_passed=b, cand_only_passed=c)

        def bound(level: float) -> float:
            return stats.newcombe_paired_difference(both, b, c, neither, 1 - 2 * level)[1]

    row = replace(
        empty,
        base_rate=base_rate,
        cand_rate=cand_rate,
        delta=cand_rate - base_rate,
        drop=drop,
        p_value=float(p),
        n_shared=n_shared,
        n_units=n_units,
        discordant=discordant,
    )
    return _Pending(row, bound, spread)


def _test_name(clustered: bool, margin: float) -> str:
    if clustered:
        return "sign-flip"
    return "mcnemar-exact" if margin == 0 else "tango-score"


def _decide(pending: Sequence[_Pending], max_drop: float, alpha: float) -> list[CompareRow]:
    """Holm over the rows: adjusted p-values, verdicts, and each row's one-sided bound.

    Holm tests the row of rank j (0-based, by p) at ``alpha / (m − j)``. The interval a row
    shows is the one-sided bound of ``delta`` (candidate − baseline) at that same level, so
    it says what the verdict decided: a row regresses when its drop is significantly above
    ``max_drop``.
    """
    tested = [(i, r.row.p_value, r.bound) for i, r in enumerate(pending) if r.row.p_value is not None and r.bound]
    p_values = [p for _, p, _ in tested]
    adjusted = stats.holm(p_values)
    order = sorted(range(len(tested)), key=lambda j: p_values[j])
    m = len(tested)
    rows = [r.row for r in pending]
    for rank, j in enumerate(order):
        i, _, bound = tested[j]
        item = pending[i]
        level = alpha / (m - rank)
        rows[i] = replace(
            item.row,
            p_adjusted=adjusted[j],
            regressed=bool(adjusted[j] < alpha),
            ci=DeltaBound(low=-1.0, high=min(1.0, bound(level)), level=level),
            detectable_drop=stats.detectable_drop(item.row.n_shared, item.spread, max_drop, alpha / m),
        )
    return rows
