"""``relcheck plan``: the cheapest per-step retry budget that reaches a target (SPEC §5).

Each step is modelled from what the run measured:

- the first attempt passes with the step's ``first_try_rate`` p;
- each retry recovers a still-failing unit with probability q: from the measured
  ``recovery_rate`` ρ when retries ran (ρ over r₀ retries gives q = 1 − (1 − ρ)^(1/r₀)),
  else under independence (a retry is a fresh draw: q = p);
- at the budget the run used, the model is anchored to the measured step rate.

The chained end-to-end rate is the product of the step rates (chained rates are conditional
on reaching the step, so at today's budgets the product *is* the measured end-to-end rate).
A budget's cost is its expected calls per unit: a step is called only by units that reached
it, and a retry only by units still failing. The search is exhaustive when the grid is
small, greedy by marginal gain per extra call otherwise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..records import is_retryable_error
from ..stats import chain_rate
from .schema import Results, StepRow

EXHAUSTIVE_LIMIT = 200_000


@dataclass(frozen=True)
class StepModel:
    """One step's measured behaviour, enough to project any retry budget."""

    id: str
    retries_now: int
    first_try_rate: float
    rate_now: float
    per_retry_recovery: float
    model: str  # "measured" or "independent"
    p50_ms: float | None
    usd_per_attempt: float | None
    #: graph pipelines: the share of units still passing here that run the node (a branch) …
    reach_given_alive: float = 1.0
    #: … and its executions per unit that runs it (a loop); each visit is judged and retried
    visits: float = 1.0
    #: the share of failed first attempts the step's ``retry.on`` retries (1: all of them)
    retryable: float = 1.0

    def _visit_failure(self, retries: int) -> float:
        """A visit's failure: the part retries cannot touch, plus the retried part that is
        still failing after ``retries`` retries (each recovering ``per_retry_recovery``)."""
        keep = 1 - self.per_retry_recovery
        v = self.visits
        first = 1 - self.first_try_rate ** (1 / v)
        stuck = first * (1 - self.retryable)  # failures retry.on does not retry
        if retries >= self.retries_now:  # anchored to the rate measured at today's budget
            now = 1 - self.rate_now ** (1 / v)
            stuck = min(stuck, now)
            return stuck + (now - stuck) * keep ** (retries - self.retries_now)
        return stuck + (first - stuck) * keep**retries

    @property
    def helped_by_retries(self) -> bool:
        return self.retryable > 0 and self.per_retry_recovery > 0

    def failure(self, retries: int) -> float:
        """Probability that the step's final attempt does not pass with ``retries`` retries
        (for a node visited several times per unit: that some visit does not)."""
        if self.visits == 1:
            return self._visit_failure(retries)
        return 1 - (1 - self._visit_failure(retries)) ** self.visits

    def rate(self, retries: int) -> float:
        return 1 - self.failure(retries)

    def expected_attempts(self, retries: int) -> float:
        """Expected attempts of a unit that reaches the step."""
        keep = 1 - self.per_retry_recovery
        retried = (1 - self.first_try_rate ** (1 / self.visits)) * self.retryable  # first tries retried
        return self.visits * (1 + retried * sum(keep**j for j in range(retries)))


def step_models(results: Results) -> list[StepModel]:
    """A :class:`StepModel` per step of ``results``; steps no unit reached are skipped."""
    models = []
    alive = results.end_to_end.total
    for s in results.steps:
        p, rate = s.first_try_rate, s.rate
        reach, visits = 1.0, 1.0
        if s.survivors is not None:  # a graph pipeline: branches and loops (analysis._graph_columns)
            reach = min(1.0, s.reached / alive) if alive else 1.0
            visits = max(1.0, (s.visits.per_unit if s.visits else None) or 1.0)
            alive = s.survivors
        if p is None or rate is None:
            continue
        r0 = max(0, s.max_attempts - 1)
        rho = s.recovery_rate
        if rho is not None and r0 >= 1:
            q, model = 1 - (1 - rho) ** (1 / r0), "measured"
        else:  # a retry is a fresh draw: it passes like a first try (of one visit, in a loop)
            q, model = p ** (1 / visits), "independent"
        cost = s.cost_usd
        models.append(
            StepModel(
                id=s.id,
                retries_now=r0,
                first_try_rate=p,
                rate_now=rate,
                per_retry_recovery=q,
                model=model,
                p50_ms=s.latency_ms.p50,
                usd_per_attempt=(cost / s.attempts) if (cost is not None and s.attempts) else None,
                reach_given_alive=reach,
                visits=visits,
                retryable=retryable_share(s),
            )
        )
    return models


def retryable_share(step: StepRow) -> float:
    """Of the step's attempts that did not pass, the share its ``retry.on`` retries: failed
    checks with ``fail``, retryable error kinds with ``error`` (SPEC §4). 1 when none failed."""
    outcomes = step.attempt_outcomes
    failed = outcomes.get("fail", 0) + outcomes.get("error", 0)
    if failed == 0:
        return 1.0
    retried = outcomes.get("fail", 0) if "fail" in step.retry_on else 0
    if "error" in step.retry_on:
        retried += sum(n for kind, n in step.error_kinds.items() if is_retryable_error(kind))
    return retried / failed


def why_not_helped(model: StepModel, step: StepRow) -> str:
    """One line: why retries cannot lift this step."""
    if model.retryable <= 0:
        on = ", ".join(step.retry_on) or "nothing"
        return (
            f"{step.id}: retry.on [{on}] retries none of its failures "
            f"({step.attempt_outcomes.get('fail', 0)} failed checks, {step.errors} errors)"
        )
    return f"{step.id}: its retries never recovered a unit (recovery rate 0)"


def independent(model: StepModel) -> StepModel:
    """``model`` with a retry as a fresh draw: it passes like a first try (of one visit)."""
    return replace(model, per_retry_recovery=model.first_try_rate ** (1 / model.visits), model="independent")


def project_one_more_retry(results: Results, model: StepModel) -> tuple[float, float | None]:
    """(step rate, end-to-end rate) with one more retry on ``model``'s step, others as they are.

    The end-to-end projection scales the measured end-to-end rate by the change in the share
    of units that survive the step (on a branch, only the units that run it change).
    """
    now, then = model.rate(model.retries_now), model.rate(model.retries_now + 1)
    e2e = results.end_to_end.rate
    reach = model.reach_given_alive
    survive_now, survive_then = 1 - reach * (1 - now), 1 - reach * (1 - then)
    if e2e is None:
        return then, None
    if survive_now > 0:
        return then, min(1.0, e2e * survive_then / survive_now)
    others = [m.rate(m.retries_now) for m in step_models(results) if m.id != model.id]
    return then, chain_rate([*others, survive_then])


def _evaluate(models: Sequence[StepModel], budget: Sequence[int]) -> tuple[float, float, list[float]]:
    """(end-to-end rate, expected calls per unit, reach probability per step)."""
    alive, calls, reach = 1.0, 0.0, []
    for m, r in zip(models, budget):
        runs = alive * m.reach_given_alive
        reach.append(runs)
        calls += runs * m.expected_attempts(r)
        alive -= runs * m.failure(r)
    return alive, calls, reach


@dataclass(frozen=True)
class PlanStep:
    """One step of a plan: today's retries and rate, the planned ones, and what they cost."""

    step: str
    retries_now: int
    retries: int
    max_attempts: int
    first_try_rate: float
    rate_now: float
    rate_planned: float
    model: str  # "measured" or "independent"
    per_retry_recovery: float
    retryable: float
    expected_attempts: float
    reach: float
    extra_calls_per_unit: float

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class Plan:
    """What ``relcheck plan`` computes: the budget, its projected rate and its cost.

    When the target is out of reach, the budget is the best one within ``max_retries`` and
    ``reachable`` is false; ``blocking_steps`` are those retries cannot lift, and
    ``not_helped`` says why for each.
    """

    target: float
    reachable: bool
    method: Literal["exhaustive", "greedy", "none"]
    max_retries: int
    steps: tuple[PlanStep, ...]
    end_to_end_measured: float | None
    end_to_end_now: float | None
    end_to_end_planned: float | None
    calls_per_unit_now: float
    calls_per_unit_planned: float
    extra_calls_per_unit: float
    units: int
    extra_calls: float
    extra_latency_ms_per_unit: float
    extra_cost_usd: float | None
    blocking_steps: tuple[str, ...]
    not_helped: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The plan as ``relcheck plan --json`` writes it."""
        out = dict(vars(self))
        out["steps"] = [s.to_dict() for s in self.steps]
        out["blocking_steps"] = list(self.blocking_steps)
        out["not_helped"] = list(self.not_helped)
        return out


def plan(results: Results, target: float, max_retries: int = 3) -> Plan:
    """The per-step retry budget that reaches ``target`` end to end with the fewest expected calls.

    Args:
        results: a results document.
        target: the end-to-end rate to reach, in (0, 1].
        max_retries: the most retries considered on any one step.

    Returns:
        The :class:`Plan`: per step the retries now and planned, both rates and the model;
        end to end now and planned; the extra calls, latency and USD.
    """
    models = step_models(results)
    units = results.end_to_end.total
    now = [m.retries_now for m in models]
    e2e_now, calls_now, reach_now = _evaluate(models, now)
    measured_e2e = results.end_to_end.rate
    grid = (max_retries + 1) ** len(models)
    if not models:
        best: list[int] = []
        method: Literal["exhaustive", "greedy", "none"] = "none"
    elif grid <= EXHAUSTIVE_LIMIT:
        best, method = _exhaustive(models, target, max_retries), "exhaustive"
    else:
        best, method = _greedy(models, target, max_retries), "greedy"
    e2e, calls, reach = _evaluate(models, best)
    reachable = e2e >= target - 1e-12
    rows: list[PlanStep] = []
    extra_ms = 0.0
    extra_usd: float | None = 0.0
    for m, r, pr, pr_now, r_now in zip(models, best, reach, reach_now, now):
        delta_attempts = pr * m.expected_attempts(r) - pr_now * m.expected_attempts(r_now)
        if m.p50_ms is not None:
            extra_ms += delta_attempts * m.p50_ms
        if m.usd_per_attempt is not None and extra_usd is not None:
            extra_usd += delta_attempts * m.usd_per_attempt * units
        rows.append(
            PlanStep(
                step=m.id,
                retries_now=r_now,
                retries=r,
                max_attempts=r + 1,
                first_try_rate=m.first_try_rate,
                rate_now=m.rate_now,
                rate_planned=m.rate(r),
                model=m.model,
                per_retry_recovery=m.per_retry_recovery,
                retryable=m.retryable,
                expected_attempts=m.expected_attempts(r),
                reach=pr,
                extra_calls_per_unit=delta_attempts,
            )
        )
    priced = any(m.usd_per_attempt is not None for m in models)
    blocking = [m for m in models if m.rate(max_retries) < 1 and not m.helped_by_retries]
    return Plan(
        target=target,
        reachable=reachable,
        method=method,
        max_retries=max_retries,
        steps=tuple(rows),
        end_to_end_measured=measured_e2e,
        end_to_end_now=e2e_now if models else None,
        end_to_end_planned=e2e if models else None,
        calls_per_unit_now=calls_now,
        calls_per_unit_planned=calls,
        extra_calls_per_unit=calls - calls_now,
        units=units,
        extra_calls=(calls - calls_now) * units,
        extra_latency_ms_per_unit=extra_ms,
        extra_cost_usd=(extra_usd if priced else None),
        blocking_steps=tuple(m.id for m in blocking),
        not_helped=tuple(why_not_helped(m, results.step(m.id)) for m in blocking),
    )


def _exhaustive(models: Sequence[StepModel], target: float, max_retries: int) -> list[int]:
    best: tuple[float, float] | None = None  # (calls, -e2e) when reachable; else (inf, -e2e)
    choice: list[int] = [max_retries] * len(models)
    fallback: tuple[float, float] | None = None
    fallback_choice = list(choice)
    for budget in itertools.product(range(max_retries + 1), repeat=len(models)):
        e2e, calls, _ = _evaluate(models, budget)
        if e2e >= target - 1e-12:
            key = (calls, -e2e)
            if best is None or key < best:
                best, choice = key, list(budget)
        elif best is None:
            key = (-e2e, calls)
            if fallback is None or key < fallback:
                fallback, fallback_choice = key, list(budget)
    return choice if best is not None else fallback_choice


def _greedy(models: Sequence[StepModel], target: float, max_retries: int) -> list[int]:
    budget = [0] * len(models)
    e2e, calls, _ = _evaluate(models, budget)
    while e2e < target - 1e-12:
        options = []
        for i in range(len(models)):
            if budget[i] >= max_retries:
                continue
            trial = budget[:i] + [budget[i] + 1] + budget[i + 1 :]
            e2, c2, _ = _evaluate(models, trial)
            if e2 <= e2e:
                continue
            gain = math.log(e2) - math.log(e2e) if e2e > 0 else math.inf
            options.append((gain / max(c2 - calls, 1e-12), i, e2, c2))
        if not options:
            break
        _, i, e2e, calls = max(options)
        budget[i] += 1
    return budget
