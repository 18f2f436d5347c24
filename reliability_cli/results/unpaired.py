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
from dataclasses import dataclass, replace
from typing import Any, Literal

from .. import stats
from ..errors import ResultsError
from .schema import Results

SCHEMA = "relcheck.compare-unpaired/v1"
E2E = "end_to_end"
#: how the baseline's rate stands to the candidate's, significantly or not
Estimate = Literal["over", "under", "agrees"]


@dataclass(frozen=True)
class UnpairedSummary:
    """One side of an unpaired comparison: which run, where it came from, its units and rate."""

    pipeline: str | None
    id: str | None
    source: str
    units: int
    rate: float | None


@dataclass(frozen=True)
class DifferenceInterval:
    """Newcombe's two-sided interval of ``delta`` at ``1 − alpha``."""

    low: float
    high: float


@dataclass(frozen=True)
class UnpairedRow:
    """One row: end to end, or a step both runs have; rates are ``passed / reached``.

    ``delta`` is candidate − baseline and ``drop`` its negation (``None`` when a run never
    reached the row); ``estimate`` says whether the baseline over- or underestimates the
    candidate significantly; ``regressed`` when the candidate is significantly lower by
    more than ``max_drop``.
    """

    name: str
    step: str | None
    base_passed: int
    base_n: int
    cand_passed: int
    cand_n: int
    base_rate: float | None = None
    cand_rate: float | None = None
    delta: float | None = None
    drop: float | None = None
    ci: DifferenceInterval | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    test: str = "score-z"
    interval: str = "newcombe-hybrid-score"
    significant: bool = False
    estimate: Estimate | None = None
    regressed: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["ci"] = None if self.ci is None else vars(self.ci).copy()
        return out


@dataclass(frozen=True)
class UnpairedComparison:
    """What ``relcheck compare --unpaired`` computes."""

    alpha: float
    max_drop: float
    baseline: UnpairedSummary
    candidate: UnpairedSummary
    rows: tuple[UnpairedRow, ...]
    steps_not_compared: tuple[str, ...]

    @property
    def regressed(self) -> bool:
        """Whether some row regressed: the exit code of ``compare --unpaired``."""
        return any(r.regressed for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """The ``relcheck.compare-unpaired/v1`` document (``compare --unpaired --json``)."""
        return {
            "schema": SCHEMA,
            "paired": False,
            "alpha": self.alpha,
            "max_drop": self.max_drop,
            "baseline": vars(self.baseline).copy(),
            "candidate": vars(self.candidate).copy(),
            "rows": [r.to_dict() for r in self.rows],
            "steps_not_compared": list(self.steps_not_compared),
            "regressed": self.regressed,
        }


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


def compare_unpaired(base: Results, cand: Results, max_drop: float = 0.0, alpha: float = 0.05) -> UnpairedComparison:
    """Compare ``cand`` with ``base`` step by step (shared step ids) and end to end, unpaired.

    Raises:
        ResultsError: a run with repeated trials (its units are not independent samples).
    """
    for which, doc in (("baseline", base), ("candidate", cand)):
        if doc.run.trials > 1:
            raise ResultsError(
                f"{which} has {doc.run.trials} trials per case: its units are not "
                "independent samples, and --unpaired compares independent proportions",
                hint="compare a run with one trial per case",
            )
    base_steps = {s.id: s for s in base.steps}
    cand_steps = {s.id: s for s in cand.steps}
    common = [s for s in base_steps if s in cand_steps]
    be, ce = base.end_to_end, cand.end_to_end
    rows = [_row(E2E, None, be.passed, be.total, ce.passed, ce.total, alpha)]
    for sid in common:
        b, c = base_steps[sid], cand_steps[sid]
        rows.append(_row(f"step:{sid}", sid, b.passed, b.reached, c.passed, c.reached, alpha))
    tested = sorted((i for i, r in enumerate(rows) if r.p_value is not None), key=lambda i: rows[i].p_value or 0.0)
    running = 0.0
    for rank, i in enumerate(tested):  # Holm's step-down adjustment
        running = max(running, min(1.0, (len(tested) - rank) * (rows[i].p_value or 0.0)))
        rows[i] = replace(rows[i], p_adjusted=running)
    return UnpairedComparison(
        alpha=alpha,
        max_drop=max_drop,
        baseline=_describe(base),
        candidate=_describe(cand),
        rows=tuple(_verdict(r, alpha, max_drop) for r in rows),
        steps_not_compared=tuple(
            [s for s in base_steps if s not in cand_steps] + [s for s in cand_steps if s not in base_steps]
        ),
    )


def _verdict(r: UnpairedRow, alpha: float, max_drop: float) -> UnpairedRow:
    significant = r.p_adjusted is not None and r.p_adjusted < alpha
    estimate: Estimate | None = None
    if r.p_value is not None and r.base_rate is not None and r.cand_rate is not None:
        estimate = "agrees" if not significant else "over" if r.base_rate > r.cand_rate else "under"
    return replace(
        r,
        significant=significant,
        estimate=estimate,
        regressed=bool(significant and r.drop is not None and r.drop > max_drop),
    )


def _row(name: str, step: str | None, x1: int, n1: int, x2: int, n2: int, alpha: float) -> UnpairedRow:
    row = UnpairedRow(name=name, step=step, base_passed=x1, base_n=n1, cand_passed=x2, cand_n=n2)
    if n1 == 0 or n2 == 0:
        return row
    p1, p2 = x1 / n1, x2 / n2
    lo, hi = newcombe_unpaired(x1, n1, x2, n2, 1 - alpha)
    return replace(
        row,
        base_rate=p1,
        cand_rate=p2,
        delta=p2 - p1,
        drop=p1 - p2,
        ci=DifferenceInterval(low=lo, high=hi),
        p_value=score_test_two_sided(x1, n1, x2, n2),
    )


def _describe(doc: Results) -> UnpairedSummary:
    return UnpairedSummary(
        pipeline=doc.run.pipeline,
        id=doc.run.id,
        source=doc.run.source or "eval",
        units=doc.end_to_end.total,
        rate=doc.end_to_end.rate,
    )
