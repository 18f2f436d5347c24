"""Journal → results: per-step, end-to-end and what-if tables (SPEC §5).

The journal is read once, streaming: attempt lines feed attempt-level counters (outcomes,
error kinds, latency, tokens, cost), ``unit_done`` lines feed unit-level ones (reached,
passed, first try, recovered). Outputs are never held in memory; what grows with the eval
set is one small record per unit and one float per attempt for latency percentiles.
"""

from __future__ import annotations

import heapq
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import stats
from .config import EvalSet, Pipeline
from .outcomes import is_infrastructure
from .runner.journal import read_lines

SCHEMA = "relcheck.results/v1"
FAILURES_KEPT = 1000  # per step in results.json; `failures_omitted` counts the rest
UNIT_KEYS = ("case", "trial", "passed", "failed_step", "outcome", "error_kind", "attempts")
SLIM_DROP = ("output", "reason", "case", "trial", "attempt")


@dataclass
class StepTally:
    """Counters for one step in one phase (chained or isolated)."""

    id: str
    reached: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    first_pass: int = 0
    retry_recovered: int = 0
    retried: int = 0
    skipped_no_gold: int = 0
    attempts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    latencies: array = field(default_factory=lambda: array("d"))
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    priced: bool = False
    failures: list[tuple[tuple[int, int, int], dict[str, Any]]] = field(default_factory=list)  # heap by order
    failures_total: int = 0
    per_case: dict[str, list[int]] = field(default_factory=dict)  # case → [passed, reached]; trials > 1 only
    track_cases: bool = True

    def add_unit_step(self, case: str, trial: int, s: Mapping[str, Any], position: int = 0) -> None:
        final = s.get("final")
        if final == "skipped":
            self.skipped_no_gold += 1
            return
        self.reached += 1
        pc = self.per_case.setdefault(case, [0, 0]) if self.track_cases else [0, 0]
        pc[1] += 1
        if final == "pass":
            self.passed += 1
            pc[0] += 1
        elif final == "fail":
            self.failed += 1
        else:
            self.errors += 1
        if s.get("first") == "pass":
            self.first_pass += 1
        if s.get("attempts", 1) > 1:
            self.retried += 1
            if final == "pass":
                self.retry_recovered += 1
        if final != "pass":
            self.failures_total += 1
            key = (-position, -trial, -self.failures_total)  # min-heap: keeps the first FAILURES_KEPT in order
            if len(self.failures) < FAILURES_KEPT or key > self.failures[0][0]:
                entry: tuple[tuple[int, int, int], dict[str, Any]] = (key, {"case": case, "trial": trial, "outcome": final, "error_kind": s.get("error_kind"),
                               "reason": s.get("reason"), "output": s.get("output")})
                if len(self.failures) < FAILURES_KEPT:
                    heapq.heappush(self.failures, entry)
                else:
                    heapq.heapreplace(self.failures, entry)

    def add_attempt(self, a: Mapping[str, Any]) -> None:
        self.attempts += 1
        outcome = a.get("outcome", "error")
        self.outcomes[outcome] += 1
        if outcome == "error":
            self.error_kinds[a.get("error_kind") or "unknown"] += 1
        self.throttled += a.get("throttled") or 0
        self.latencies.append(float(a.get("latency_ms") or 0.0))
        self.tokens_in += a.get("tokens_in") or 0
        self.tokens_out += a.get("tokens_out") or 0
        if a.get("cost_usd") is not None:
            self.cost += a["cost_usd"]
            self.priced = True

    def to_dict(self, trials: int, confidence: float, max_attempts: int, endpoint: str) -> dict[str, Any]:
        rate, ci = _rate_ci(self.passed, self.reached, self.per_case, trials, confidence)
        return {
            "id": self.id,
            "endpoint": endpoint,
            "max_attempts": max_attempts,
            "reached": self.reached,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "rate": rate,
            "ci": ci,
            **retry_ratios(self.first_pass, self.reached, self.retry_recovered, self.retried),
            "retry_recovered": self.retry_recovered,
            # what independence predicts for a retry: it passes as often as a first try
            "retried": self.retried,
            "attempts": self.attempts,
            "attempt_outcomes": {k: self.outcomes.get(k, 0) for k in ("pass", "fail", "error")},
            "error_kinds": dict(sorted(self.error_kinds.items())),
            "throttled": self.throttled,
            "latency_ms": _round_dict(stats.percentiles(self.latencies)),
            "tokens": {"input": self.tokens_in, "output": self.tokens_out},
            "cost_usd": round(self.cost, 6) if self.priced else None,
            "failures": [f for _, f in sorted(self.failures, key=lambda e: e[0], reverse=True)],
            "failures_omitted": self.failures_total - len(self.failures),
        }


def retry_ratios(first_pass: int, reached: int, recovered: int, retried: int) -> dict[str, float | None]:
    """``first_try_rate``, ``recovery_rate`` (measured) and ``recovery_rate_independent``
    (what a retry would recover if attempts were independent: the first-try rate)."""
    first = _ratio(first_pass, reached)
    return {"first_try_rate": first, "recovery_rate": _ratio(recovered, retried),
            "recovery_rate_independent": first if retried else None}


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _round_dict(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items()}


def _ci(low_high: tuple[float, float]) -> dict[str, float]:
    return {"low": low_high[0], "high": low_high[1]}


def _rate_ci(passed: int, total: int, per_case: Mapping[str, Sequence[int]], trials: int,
             confidence: float) -> tuple[float | None, dict[str, float] | None]:
    if total == 0:
        return None, None
    if trials <= 1:
        return passed / total, _ci(stats.wilson(passed, total, confidence))
    shares = [p / n for p, n in per_case.values() if n]
    rate, interval = stats.clustered_rate_ci(shares, confidence)
    return rate, _ci(interval)


def build_results(journal: Path | Sequence[Path], pipeline: Pipeline, evalset: EvalSet, trials: int,
                  run: dict[str, Any], confidence: float, order: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Read ``journal`` (or several shard journals) and compute the results document (without gates).

    One streaming pass: an attempt line waits in ``pending`` until its unit's ``unit_done``
    line arrives (attempts of units that never finished are never counted), so memory holds
    the units in flight, not every attempt. ``order`` maps a case id to its position in the
    unsharded eval set (``index`` of each unit); by default the position in ``evalset``.
    """
    if order is None:
        order = {c.id: i for i, c in enumerate(evalset.cases)}
    clustered = trials > 1
    steps = {s.id: StepTally(s.id, track_cases=clustered) for s in pipeline.steps}
    isolated = ({s.id: StepTally(s.id, track_cases=clustered) for s in pipeline.steps}
                if run.get("isolate") else None)
    pending: dict[tuple[str, int], list[dict[str, Any]]] = {}
    table_of_units = _UnitTable(order)
    for rec in _journal_lines(journal):
        unit = rec.get("unit_done")
        if unit is None:
            if "step" in rec and "case" in rec:
                key = (rec["case"], rec["trial"])
                for name in SLIM_DROP:
                    rec.pop(name, None)
                pending.setdefault(key, []).append(rec)
            continue
        # a journal holds one unit_done per unit: one writer per run dir, and resume compacts
        for rec in pending.pop((unit["case"], unit["trial"]), ()):
            phase = rec.get("phase", "chained")
            table = steps if phase == "chained" else isolated if phase == "isolated" else None
            if table is not None and rec["step"] in table:
                table[rec["step"]].add_attempt(rec)
        position = table_of_units.position(unit["case"])
        for s in unit.get("steps", ()):
            if s["step"] in steps:
                steps[s["step"]].add_unit_step(unit["case"], unit["trial"], s, position)
        if isolated is not None:
            for s in unit.get("isolated", ()):
                if s["step"] in isolated:
                    isolated[s["step"]].add_unit_step(unit["case"], unit["trial"], s, position)
        table_of_units.add(position, unit)
    del pending
    units = table_of_units.records()
    del table_of_units
    e2e_cases: dict[str, list[int]] = {}
    for u in units:
        pc = e2e_cases.setdefault(u["case"], [0, 0])
        pc[0] += 1 if u["passed"] else 0
        pc[1] += 1
        if not clustered:
            e2e_cases.clear()  # one trial: every case is one unit, nothing to cluster
    for table in (steps, *((isolated,) if isolated is not None else ())):
        for tally in table.values():
            tally.per_case = dict(sorted(tally.per_case.items(), key=lambda kv: order.get(kv[0], len(order))))
    step_rows = []
    for plan in pipeline.steps:
        row = steps[plan.id].to_dict(trials, confidence, plan.retry.max_attempts, plan.endpoint)
        if isolated is not None:
            iso = isolated[plan.id].to_dict(trials, confidence, plan.retry.max_attempts, plan.endpoint)
            row["isolated"] = {k: iso[k] for k in ("reached", "passed", "failed", "errors", "rate", "ci",
                                                  "first_try_rate", "attempts")}
            row["isolated"]["skipped_no_gold"] = isolated[plan.id].skipped_no_gold
        step_rows.append(row)
    end_to_end = _end_to_end(units, e2e_cases, trials, confidence, step_rows, isolated is not None)
    total_cost = sum(s["cost_usd"] or 0 for s in step_rows)
    run = {**run, "units": len(units),
           "requests": sum(s["attempts"] for s in step_rows) + sum(
               s["isolated"]["attempts"] for s in step_rows if "isolated" in s),
           "cost_usd": round(total_cost, 6) if any(s["cost_usd"] is not None for s in step_rows) else None,
           "confidence": confidence}
    return {
        "schema": SCHEMA,
        "run": run,
        "steps": step_rows,
        "end_to_end": end_to_end,
        "what_if": what_if(step_rows, end_to_end),
        "gates": [],
        "units": units,
        "verdict": "pass",
        "exit_code": 0,
    }


class _UnitTable:
    """The finished units, column by column in arrays while the journal is read.

    Keeping no Python object per unit during the pass avoids interleaving long-lived small
    objects with the parser's garbage, which fragments the heap and grows RSS; the unit
    records are built once, in order, at the end. Case ids come from ``order``'s keys.
    """

    def __init__(self, order: Mapping[str, int]) -> None:
        self.order = order
        self.extra: dict[str, int] = {}  # cases the eval set does not hold, after every known one
        self.vocab: list[Any] = []
        self.codes: dict[Any, int] = {}
        self.cols = {name: array("i") for name in ("index", "trial", "passed", "failed_step", "outcome",
                                                     "error_kind", "attempts")}

    def position(self, case: str) -> int:
        found = self.order.get(case)
        if found is not None:
            return found
        return self.extra.setdefault(case, max(self.order.values(), default=-1) + 1 + len(self.extra))

    def _code(self, value: Any) -> int:
        code = self.codes.get(value)
        if code is None:
            code = self.codes[value] = len(self.vocab)
            self.vocab.append(value)
        return code

    def add(self, position: int, unit: Mapping[str, Any]) -> None:
        c = self.cols
        c["index"].append(position)
        c["trial"].append(unit["trial"])
        c["passed"].append(1 if unit["passed"] else 0)
        c["attempts"].append(unit["attempts"])
        for key in ("failed_step", "outcome", "error_kind"):
            c[key].append(self._code(unit[key]))

    def records(self) -> list[dict[str, Any]]:
        c = self.cols
        index, trial, vocab = c["index"], c["trial"], self.vocab
        ids: list[str | None] = [None] * (max(index, default=-1) + 1)  # position → case id
        for mapping in (self.order, self.extra):
            for case, p in mapping.items():
                if p < len(ids):
                    ids[p] = case
        import numpy as np

        rows = np.lexsort((np.frombuffer(trial, dtype=np.intc), np.frombuffer(index, dtype=np.intc)))
        return [{"case": ids[index[i]], "trial": trial[i], "passed": bool(c["passed"][i]),
                 "failed_step": vocab[c["failed_step"][i]], "outcome": vocab[c["outcome"][i]],
                 "error_kind": vocab[c["error_kind"][i]], "attempts": c["attempts"][i], "index": index[i]}
                for i in rows]


def _journal_lines(journal: Path | Sequence[Path]) -> Iterator[dict[str, Any]]:
    paths: Iterable[Path] = [journal] if isinstance(journal, Path) else journal
    for path in paths:
        yield from read_lines(path)


def _end_to_end(units: Sequence[Mapping[str, Any]], per_case: Mapping[str, Sequence[int]], trials: int,
                confidence: float, step_rows: Sequence[Mapping[str, Any]], isolate: bool) -> dict[str, Any]:
    passed = sum(1 for u in units if u["passed"])
    total = len(units)
    rate, ci = _rate_ci(passed, total, per_case, trials, confidence)
    infra = sum(1 for u in units if u["outcome"] == "error" and is_infrastructure(u.get("error_kind")))
    out: dict[str, Any] = {"passed": passed, "total": total, "rate": rate, "ci": ci,
                           "cases": len(per_case) if trials > 1 else total, "infra_errors": infra,
                           "error_rate": infra / total if total else None}
    if trials > 1:
        counts = [(n, c) for c, n in per_case.values()]
        out["pass_at_k"] = {str(k): stats.mean_pass_at_k(counts, k) for k in range(1, trials + 1)}
        out["pass_hat_k"] = {str(k): stats.mean_pass_hat_k(counts, k) for k in range(1, trials + 1)}
        out["flaky"] = [case for case, (c, n) in per_case.items() if 0 < c < n]
    if isolate:
        rates = [s["isolated"]["rate"] for s in step_rows]
        product = stats.chain_rate([r for r in rates if r is not None]) if all(r is not None for r in rates) else None
        out["independence_prediction"] = product
        out["independence_gap"] = (rate - product) if (rate is not None and product is not None) else None
    return out


def what_if(step_rows: Sequence[Mapping[str, Any]], e2e: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One more retry on each step: projected end to end, independent and measured."""
    rows = []
    rates = [s["rate"] for s in step_rows]
    for i, s in enumerate(step_rows):
        p, rate, rho = s["first_try_rate"], s["rate"], s["recovery_rate"]
        if p is None or rate is None:
            continue
        retries = s["max_attempts"] - 1
        indep = stats.step_rate_with_retries(p, retries + 1)
        measured = 1 - (1 - rate) * (1 - rho) if rho is not None else None
        others = [r for j, r in enumerate(rates) if j != i and r is not None]

        def project(step_rate: float | None, *, others: list[float] = others, rate: float = rate) -> float | None:
            if step_rate is None:
                return None
            if rate > 0 and e2e.get("rate") is not None:
                return min(1.0, e2e["rate"] * step_rate / rate)
            return stats.chain_rate([*others, step_rate])

        rows.append({"step": s["id"], "retries_now": retries, "retries_then": retries + 1,
                     "first_try_rate": p, "rate_now": rate, "recovery_rate": rho,
                     "step_rate_independent": indep, "step_rate_measured": measured,
                     "end_to_end_now": e2e.get("rate"),
                     "end_to_end_independent": project(indep),
                     "end_to_end_measured": project(measured)})
    return rows
