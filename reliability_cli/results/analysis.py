"""Journal → results: per-step, end-to-end and what-if tables (SPEC §5).

The journal is read once, streaming, and aggregated with pandas chunk by chunk
(:data:`CHUNK_LINES` lines at a time), so memory is bounded whatever the journal's size:

- attempt lines become an attempts frame: outcomes, error kinds, throttling, tokens and cost
  are summed per (phase, step) with ``groupby``; latencies are kept as one float per attempt
  for exact percentiles. An attempt counts only once its unit's ``unit_done`` line has been
  read; the attempts of units still in flight at a chunk's end are carried to the next one,
  and those of units that never finished are never counted.
- ``unit_done`` lines become a unit-step frame: reached, passed, first try, retried and
  recovered per step; the first :data:`FAILURES_KEPT` failures per step in eval-set order;
  per-case shares when K > 1.
- the units themselves are kept column by column in arrays (one small record per unit) and
  become ``results.json``'s ``units`` through one sorted frame at the end.

Outputs are never held in memory beyond the failures kept.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import stats
from ..config import EvalSet, Pipeline
from ..journal import read_lines
from ..records import is_infrastructure

if TYPE_CHECKING:
    import pandas as pd

SCHEMA = "relcheck.results/v1"
FAILURES_KEPT = 1000  # per step in results.json; `failures_omitted` counts the rest
CHUNK_LINES = 20_000  # journal lines per pandas chunk
PHASES = ("chained", "isolated")
ATTEMPT_COLUMNS = ["slot", "outcome", "error_kind", "latency_ms", "throttled", "tokens_in", "tokens_out",
                   "cost_usd", "priced"]
STEP_COLUMNS = ["slot", "case", "trial", "position", "final", "first", "attempts", "error_kind", "reason",
                "output"]
FAILURE_KEYS = ["case", "trial", "outcome", "error_kind", "reason", "output"]


@dataclass
class StepTally:
    """Counters for one step in one phase (chained or isolated), summed over chunks."""

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
    latencies: list[Any] = field(default_factory=list)  # numpy arrays, one per chunk
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    priced: bool = False
    failures: list[dict[str, Any]] = field(default_factory=list)  # the first FAILURES_KEPT, in order
    failures_total: int = 0
    per_case: dict[str, list[int]] = field(default_factory=dict)  # case → [passed, reached]; trials > 1 only

    def to_dict(self, trials: int, confidence: float, max_attempts: int, endpoint: str) -> dict[str, Any]:
        import numpy as np

        rate, ci = _rate_ci(self.passed, self.reached, self.per_case, trials, confidence)
        latencies = np.concatenate(self.latencies) if self.latencies else np.empty(0)
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
            "latency_ms": _round_dict(stats.percentiles(latencies)),
            "tokens": {"input": self.tokens_in, "output": self.tokens_out},
            "cost_usd": round(self.cost, 6) if self.priced else None,
            "failures": self.failures,
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

    One streaming pass in chunks of :data:`CHUNK_LINES` lines, aggregated with pandas (see the
    module's docstring). ``order`` maps a case id to its position in the unsharded eval set
    (``index`` of each unit); by default the position in ``evalset``.
    """
    if order is None:
        order = {c.id: i for i, c in enumerate(evalset.cases)}
    clustered = trials > 1
    phases = PHASES if run.get("isolate") else PHASES[:1]
    agg = _Aggregator([s.id for s in pipeline.steps], phases, clustered, order)
    agg.read(_journal_lines(journal))
    steps, isolated = agg.finish()
    units = agg.units.records()
    e2e_cases = per_case_of_units(units) if clustered else {}
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


class _Aggregator:
    """Sums the chunks of one or more journals into :class:`StepTally` rows and a unit table.

    Each (phase, step) pair is a *slot*, an integer code, so that pandas groups on integers.
    """

    def __init__(self, step_ids: Sequence[str], phases: Sequence[str], clustered: bool,
                 order: Mapping[str, int]) -> None:
        self.phases = list(phases)
        self.clustered = clustered
        self.slots = {(phase, sid): i for i, (phase, sid) in
                      enumerate((phase, sid) for phase in phases for sid in step_ids)}
        self.tallies = [StepTally(sid) for _, sid in self.slots]
        self.units = _UnitTable(order)
        self.failures: list[pd.DataFrame] = []  # the first FAILURES_KEPT per slot so far
        self.per_case: list[pd.DataFrame] = []
        self.seq = 0  # arrival order of unit steps: breaks ties among failures

    def read(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Aggregate journal records, CHUNK_LINES at a time.

        An attempt line waits in ``pending`` until its unit's ``unit_done`` line arrives, so
        the attempts of units that never finished are never counted and memory holds the
        units in flight, not every attempt. Lines of phases or steps not tallied (the
        ``llm-rubric`` judge's, say) are skipped here.
        """
        slots = self.slots
        pending: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
        attempts: list[tuple[Any, ...]] = []
        steps: list[tuple[Any, ...]] = []
        phases = [(phase, key) for phase, key in (("chained", "steps"), ("isolated", "isolated"))
                  if phase in self.phases]
        lines = 0
        for rec in records:
            unit = rec.get("unit_done")
            if unit is None:
                if "step" in rec and "case" in rec:
                    slot = slots.get((rec.get("phase", "chained"), rec["step"]))
                    if slot is not None:
                        cost = rec.get("cost_usd")
                        pending.setdefault((rec["case"], rec["trial"]), []).append(
                            (slot, rec.get("outcome", "error"), rec.get("error_kind") or "unknown",
                             float(rec.get("latency_ms") or 0.0), rec.get("throttled") or 0,
                             rec.get("tokens_in") or 0, rec.get("tokens_out") or 0, float(cost or 0.0),
                             cost is not None))
                    lines += 1
                continue
            case, trial = unit["case"], unit["trial"]
            # a journal holds one unit_done per unit: one writer per run dir, and resume compacts
            attempts.extend(pending.pop((case, trial), ()))
            position = self.units.position(case)
            for phase, key in phases:
                for s in unit.get(key, ()):
                    slot = slots.get((phase, s["step"]))
                    if slot is not None:
                        steps.append((slot, case, trial, position, s.get("final"), s.get("first"),
                                      s.get("attempts", 1), s.get("error_kind"), s.get("reason"), s.get("output")))
            self.units.add(position, unit)
            lines += 1
            if lines >= CHUNK_LINES:
                self._add_chunk(attempts, steps)
                attempts, steps, lines = [], [], 0
        self._add_chunk(attempts, steps)

    def _add_chunk(self, attempt_rows: list[tuple[Any, ...]], step_rows: list[tuple[Any, ...]]) -> None:
        import pandas as pd

        if attempt_rows:
            self._add_attempts(pd.DataFrame.from_records(attempt_rows, columns=ATTEMPT_COLUMNS))
        if step_rows:
            frame = pd.DataFrame.from_records(step_rows, columns=STEP_COLUMNS)
            frame["seq"] = range(self.seq, self.seq + len(frame))
            self.seq += len(frame)
            self._add_unit_steps(frame)

    def _add_attempts(self, frame: pd.DataFrame) -> None:
        import numpy as np

        outcome = frame["outcome"]
        counts = frame[["slot", "throttled", "tokens_in", "tokens_out"]].assign(
            attempts=1, passes=outcome == "pass", fails=outcome == "fail", errors=outcome == "error",
            cost=frame["cost_usd"], priced=frame["priced"])
        sums = counts.groupby("slot", sort=True).sum()
        for slot, throttled, tokens_in, tokens_out, n, passes, fails, errors, cost, priced in sums.itertuples(name=None):
            tally = self.tallies[slot]
            tally.attempts += int(n)
            tally.outcomes.update({"pass": int(passes), "fail": int(fails), "error": int(errors)})
            tally.throttled += int(throttled)
            tally.tokens_in += int(tokens_in)
            tally.tokens_out += int(tokens_out)
            if priced:
                tally.cost += float(cost)
                tally.priced = True
        # latencies, slot by slot: one stable sort, then the runs of each slot
        order = np.argsort(frame["slot"].to_numpy(), kind="stable")
        latencies = frame["latency_ms"].to_numpy(dtype=float)[order]
        for slot, run in zip(sums.index, np.split(latencies, np.cumsum(sums["attempts"].to_numpy())[:-1])):
            self.tallies[slot].latencies.append(run)
        if sums["errors"].any():
            errors = frame.loc[outcome == "error", ["slot", "error_kind"]]
            for (slot, kind), n in errors.value_counts(sort=False).items():
                self.tallies[slot].error_kinds[kind] += int(n)

    def _add_unit_steps(self, frame: pd.DataFrame) -> None:
        final = frame["final"]
        reached = final != "skipped"
        passed = final == "pass"
        retried = reached & (frame["attempts"] > 1)
        flags = frame[["slot"]].assign(
            skipped=~reached, reached=reached, passed=passed, failed=final == "fail",
            first_pass=reached & (frame["first"] == "pass"), retried=retried, recovered=retried & passed)
        sums = flags.groupby("slot", sort=False).sum()
        for slot, skipped, n, p, f, first, again, recovered in sums.itertuples(name=None):
            tally = self.tallies[slot]
            tally.skipped_no_gold += int(skipped)
            tally.reached += int(n)
            tally.passed += int(p)
            tally.failed += int(f)
            tally.errors += int(n - p - f)
            tally.first_pass += int(first)
            tally.retried += int(again)
            tally.retry_recovered += int(recovered)
            tally.failures_total += int(n - p)
        if len(sums) and (sums["reached"] - sums["passed"]).any():
            self._add_failures(frame[reached & ~passed])
        if self.clustered:
            self.per_case.append(frame[reached].assign(passed=passed[reached].astype(int)).groupby(
                ["slot", "position", "case"], sort=False)["passed"].agg(["sum", "size"]))

    def _add_failures(self, failures: pd.DataFrame) -> None:
        self.failures.append(_first_failures(failures))
        if len(self.failures) > 1:  # keep only the running first FAILURES_KEPT per slot
            import pandas as pd

            self.failures = [_first_failures(pd.concat(self.failures, ignore_index=True))]

    def finish(self) -> tuple[dict[str, StepTally], dict[str, StepTally] | None]:
        import pandas as pd

        if self.failures:
            kept = _first_failures(pd.concat(self.failures, ignore_index=True))
            for slot, rows in kept.groupby("slot", sort=False):
                self.tallies[slot].failures = [
                    {k: _plain(v) for k, v in zip(FAILURE_KEYS, values)}
                    for values in rows[["case", "trial", "final", "error_kind", "reason", "output"]].itertuples(
                        index=False, name=None)]
        if self.per_case:
            shares = pd.concat(self.per_case).groupby(level=[0, 1, 2], sort=False).sum()
            shares = shares.sort_index(level="position", sort_remaining=False, kind="stable")
            for (slot, _, case), (p, n) in zip(shares.index, shares.itertuples(index=False, name=None)):
                self.tallies[slot].per_case[case] = [int(p), int(n)]
        by_phase: dict[str, dict[str, StepTally]] = {phase: {} for phase in self.phases}
        for (phase, sid), slot in self.slots.items():
            by_phase[phase][sid] = self.tallies[slot]
        return by_phase["chained"], by_phase.get("isolated")


def _first_failures(frame: pd.DataFrame) -> pd.DataFrame:
    """The first FAILURES_KEPT failures of each step, in eval-set order (then trial, arrival)."""
    ordered = frame.sort_values(["position", "trial", "seq"], kind="stable")
    return ordered.groupby("slot", sort=False).head(FAILURES_KEPT)


def _plain(value: Any) -> Any:
    """A pandas/numpy scalar as the plain Python value JSON wants (NaN → None)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, float) and value != value:
        return None
    item = getattr(value, "item", None)
    return item() if item is not None else value


def per_case_of_units(units: Sequence[Mapping[str, Any]]) -> dict[str, list[int]]:
    """case → [units passed, units], in the units' order (for per-case shares when K > 1)."""
    per_case: dict[str, list[int]] = {}
    for u in units:
        pc = per_case.setdefault(u["case"], [0, 0])
        pc[0] += 1 if u["passed"] else 0
        pc[1] += 1
    return per_case


class _UnitTable:
    """The finished units, column by column in arrays while the journal is read.

    Keeping no Python object per unit during the pass avoids interleaving long-lived small
    objects with the parser's garbage, which fragments the heap and grows RSS; the unit
    records are built once, in order, from one frame at the end. Case ids come from
    ``order``'s keys.
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
        import numpy as np
        import pandas as pd

        frame = pd.DataFrame({name: np.frombuffer(col, dtype=np.intc) for name, col in self.cols.items()})
        frame = frame.sort_values(["index", "trial"], kind="stable")
        ids: list[str | None] = [None] * (int(frame["index"].max()) + 1 if len(frame) else 0)  # position → id
        for mapping in (self.order, self.extra):
            for case, p in mapping.items():
                if p < len(ids):
                    ids[p] = case
        vocab = self.vocab
        return [_UnitRecord(ids[index], trial, bool(passed), vocab[failed_step], vocab[outcome], vocab[error_kind],
                            attempts, index).__dict__
                for index, trial, passed, failed_step, outcome, error_kind, attempts in frame[
                    ["index", "trial", "passed", "failed_step", "outcome", "error_kind", "attempts"]].itertuples(
                        index=False, name=None)]


class _UnitRecord:
    """Builds one unit's record, a plain ``dict``: an instance's ``__dict__`` shares its key
    table with every other (PEP 412), which makes 100,000 records about 40% smaller than
    dict literals would (``bench/run.py``, figure d)."""

    def __init__(self, case: str | None, trial: int, passed: bool, failed_step: Any, outcome: Any,
                 error_kind: Any, attempts: int, index: int) -> None:
        self.case = case
        self.trial = trial
        self.passed = passed
        self.failed_step = failed_step
        self.outcome = outcome
        self.error_kind = error_kind
        self.attempts = attempts
        self.index = index


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
