"""Journal → results: per-step, end-to-end and what-if tables (SPEC §5).

The journal is read once, streaming, and each record is tallied as it is read, in plain
Python: no pandas, and numpy only for a step with more than
:data:`~reliability_cli.stats.PERCENTILES_IN_PYTHON` latencies, so that a short ``eval`` (or
its Ctrl-C) pays no heavy import. Memory is bounded whatever the journal's size:

- an attempt line waits with its unit's other attempts until the unit's ``unit_done`` line
  has been read, then counts: outcomes, error kinds, throttling, tokens and cost are summed
  per (phase, step) *slot*; latencies are kept as one float per attempt (an ``array('d')``
  per slot) for exact percentiles. The attempts of units that never finished are never
  counted.
- a ``unit_done`` line's steps count reached, passed, first try, retried and recovered per
  slot; the first :data:`FAILURES_KEPT` failures per slot in eval-set order (position,
  trial, arrival) are kept in a bounded heap; per-case shares (one packed int per case and
  slot) when K > 1.
- the units themselves are kept column by column in arrays (one small record per unit) and
  become ``results.json``'s ``units``, sorted by (index, trial), at the end.

Outputs are never held in memory beyond the failures kept. The figures are those the former
pandas aggregation gave, to the bit: the cost is summed in the same order (Kahan within
blocks of :data:`CHUNK_LINES` lines) and the percentiles are numpy's (:func:`.stats.percentiles`).
"""

from __future__ import annotations

import heapq
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import stats
from ..journal import read_lines
from ..records import is_infrastructure
from . import units as unit_steps
from .schema import (
    EndToEnd,
    Failure,
    Interval,
    IsolatedRow,
    Latency,
    Results,
    RunInfo,
    StepRow,
    Tokens,
    UnitRecord,
    Visits,
    WhatIfRow,
)

FAILURES_KEPT = 1000  # per step in results.json; `failures_omitted` counts the rest
CHUNK_LINES = 20_000  # journal lines per block of the cost sums (the former pandas chunk)
PHASES = ("chained", "isolated")
FAILURE_KEYS = ["case", "trial", "outcome", "error_kind", "reason", "output"]


@dataclass(frozen=True)
class StepSpec:
    """What analysis needs to know of a step: its id, endpoint and attempts allowed."""

    id: str
    endpoint: str
    max_attempts: int
    retry_on: tuple[str, ...] = ("error", "fail")


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
    visits: int = 0  # graph pipelines: executions of the node over the units that reached it
    skipped_no_gold: int = 0
    attempts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    cached: int = 0  # attempts answered from the response cache
    latencies: array[float] = field(default_factory=lambda: array("d"))  # one per attempt not cached
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    priced: bool = False
    failures: list[dict[str, Any]] = field(default_factory=list)  # the first FAILURES_KEPT, in order
    failures_total: int = 0
    per_case: dict[str, list[int]] = field(default_factory=dict)  # case → [passed, reached]; trials > 1 only

    def _common(self, trials: int, confidence: float) -> dict[str, Any]:
        rate, ci = rate_ci(self.passed, self.reached, self.per_case, trials, confidence)
        return {
            "reached": self.reached,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "rate": rate,
            "ci": ci,
            "first_try_rate": ratio(self.first_pass, self.reached),
            "attempts": self.attempts,
            "first_try_passed": self.first_pass,
        }

    def to_row(self, spec: StepSpec, trials: int, confidence: float, isolated: IsolatedRow | None = None) -> StepRow:
        extra: dict[str, Any] = {"isolated": isolated} if isolated is not None else {}
        return StepRow(
            id=self.id,
            endpoint=spec.endpoint,
            max_attempts=spec.max_attempts,
            retry_on=spec.retry_on,
            **self._common(trials, confidence),
            **retry_ratios(self.first_pass, self.reached, self.retry_recovered, self.retried, spec.max_attempts - 1),
            retry_recovered=self.retry_recovered,
            retried=self.retried,
            attempt_outcomes={k: self.outcomes.get(k, 0) for k in ("pass", "fail", "error")},
            error_kinds=dict(sorted(self.error_kinds.items())),
            throttled=self.throttled,
            cached=self.cached,
            latency_ms=Latency(**_round_dict(stats.percentiles(self.latencies))),
            tokens=Tokens(input=self.tokens_in, output=self.tokens_out),
            cost_usd=round(self.cost, 6) if self.priced else None,
            failures=tuple(Failure(**f) for f in self.failures),
            failures_omitted=self.failures_total - len(self.failures),
            **extra,
        )

    def to_isolated(self, trials: int, confidence: float) -> IsolatedRow:
        extra: dict[str, Any] = (
            {"case_counts": {c: (p, n) for c, (p, n) in self.per_case.items()}} if trials > 1 else {}
        )
        return IsolatedRow(**self._common(trials, confidence), skipped_no_gold=self.skipped_no_gold, **extra)


def retry_ratios(first_pass: int, reached: int, recovered: int, retried: int, retries: int) -> dict[str, Any]:
    """``recovery_rate`` (measured: of the units retried, the share that passed on a later
    attempt) and ``recovery_rate_independent`` (what independence predicts for that share
    over ``retries`` retries, each a fresh draw passing like a first try: 1 − (1 − p)^r)."""
    first = ratio(first_pass, reached)
    independent = 1 - (1 - first) ** retries if (retried and first is not None) else None
    return {"recovery_rate": ratio(recovered, retried), "recovery_rate_independent": independent}


def ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _round_dict(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items()}


def rate_ci(
    passed: int, total: int, per_case: Mapping[str, Sequence[int]], trials: int, confidence: float
) -> tuple[float | None, Interval | None]:
    """A rate and its interval: Wilson over units, or clustered over cases with trials > 1
    (``per_case``: case → (passed, reached))."""
    if total == 0:
        return None, None
    if trials <= 1:
        low, high = stats.wilson(passed, total, confidence)
        return passed / total, Interval(low=low, high=high)
    shares = [p / n for p, n in per_case.values() if n]
    rate, (low, high) = stats.clustered_rate_ci(shares, confidence, units=total)
    return rate, Interval(low=low, high=high)


def build_results(
    journal: Path | Sequence[Path],
    steps: Sequence[StepSpec],
    run: Mapping[str, Any],
    *,
    trials: int,
    confidence: float,
    isolate: bool,
    order: Mapping[str, int],
) -> Results:
    """Read ``journal`` (or several shard journals) and compute the results (without gates).

    One streaming pass, each record tallied as it is read (see the module's docstring).

    Args:
        journal: the run's ``attempts.jsonl``, or the shard journals of a merge.
        steps: the pipeline's steps, in order (id, retry policy).
        run: the descriptive fields of :class:`RunInfo`; the counted ones (units, requests,
            cost) are added here.
        trials: trials per case; above 1, intervals are clustered over cases (SPEC §5).
        confidence: the intervals' confidence level.
        isolate: whether the journal holds ``--isolate`` attempts.
        order: a case id's position in the unsharded eval set (each unit's ``index``).

    Returns:
        The :class:`Results`, with ``verdict`` "pass" and no gates (see :mod:`.gates`).
    """
    agg = aggregate(_journal_lines(journal), [s.id for s in steps], trials=trials, isolate=isolate, order=order)
    return results_from(agg, steps, run, trials=trials, confidence=confidence)


def aggregate(
    records: Iterable[Mapping[str, Any]],
    step_ids: Sequence[str],
    *,
    trials: int,
    isolate: bool,
    order: Mapping[str, int],
) -> Aggregate:
    """The first half of :func:`build_results`: aggregate journal records (as
    :func:`~reliability_cli.journal.read_lines` yields them) handed over in process, by a
    caller that has them already (``relcheck traces`` writes them), so that the steps'
    specs and the run's fields may be completed once they are consumed.

    Returns:
        what :func:`results_from` turns into the results.
    """
    agg = _Aggregator(step_ids, PHASES if isolate else PHASES[:1], trials > 1, order)
    agg.read(records)
    return agg


def results_from(
    agg: Aggregate, steps: Sequence[StepSpec], run: Mapping[str, Any], *, trials: int, confidence: float
) -> Results:
    """The second half of :func:`build_results`: the results (without gates) of an
    :func:`aggregate`, for ``steps`` (the ids it was given, in the same order)."""
    chained, isolated = agg.finish()
    units = agg.units.records()
    step_rows = tuple(
        chained[spec.id].to_row(
            spec, trials, confidence, isolated[spec.id].to_isolated(trials, confidence) if isolated else None
        )
        for spec in steps
    )
    if agg.graph:
        step_rows = _graph_columns(step_rows, chained, units)
    return assemble(run, step_rows, units, trials=trials, confidence=confidence, isolate=isolated is not None)


def assemble(
    run: Mapping[str, Any],
    steps: Sequence[StepRow],
    units: Sequence[UnitRecord],
    *,
    trials: int,
    confidence: float,
    isolate: bool,
    **run_extra: Any,
) -> Results:
    """Results from step rows and units: end to end, what-if, and the run's counted fields.

    Args:
        run: the descriptive fields of :class:`RunInfo`.
        steps: one row per step, in pipeline order.
        units: every unit's record.
        trials: trials per case.
        confidence: the intervals' confidence level.
        isolate: whether the step rows carry isolated rates (for the independence gap).
        **run_extra: further :class:`RunInfo` fields (a merge's shards, a trace run's files).

    Returns:
        The :class:`Results` with ``what_if`` filled and no gates.
    """
    end_to_end = end_to_end_of(units, steps, trials, confidence, isolate)
    costs = [s.cost_usd for s in steps if s.cost_usd is not None]
    requests = sum(s.attempts + (s.isolated.attempts if s.isolated else 0) for s in steps)
    info = RunInfo(
        **{
            **run,
            "units": len(units),
            "requests": requests,
            "cost_usd": round(sum(costs), 6) if costs else None,
            "confidence": confidence,
            **run_extra,
        }
    )
    results = Results(
        run=info,
        steps=tuple(steps),
        end_to_end=end_to_end,
        what_if=(),
        gates=(),
        units=tuple(units),
        verdict="pass",
        exit_code=0,
    )
    return results.model_copy(update={"what_if": what_if(results)})


class _Aggregator:
    """Tallies the records of one or more journals into :class:`StepTally` rows and a unit
    table, one record at a time.

    Each (phase, step) pair is a *slot*: an index into :attr:`tallies`.
    """

    def __init__(
        self, step_ids: Sequence[str], phases: Sequence[str], clustered: bool, order: Mapping[str, int]
    ) -> None:
        self.phases = list(phases)
        self.clustered = clustered
        self.slots = {
            (phase, sid): i for i, (phase, sid) in enumerate((phase, sid) for phase in phases for sid in step_ids)
        }
        self.tallies = [StepTally(sid) for _, sid in self.slots]
        self.units = _UnitTable(order)
        n = len(self.tallies)
        # per slot, the first FAILURES_KEPT failures so far: a heap whose top is the last of them
        self.failures: list[list[tuple[Any, ...]]] = [[] for _ in range(n)]
        self.shares: list[dict[str, int]] = [{} for _ in range(n)]  # case → passed << 32 | reached
        self.seq = 0  # arrival order of failed unit steps: breaks ties among failures
        self.graph = False  # the journal is a graph pipeline's (its steps count visits)
        self.block_sum = [0.0] * n  # the cost of the current block of lines, per slot (Kahan)
        self.block_err = [0.0] * n

    def read(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Aggregate journal records.

        An attempt line waits in ``pending`` until its unit's ``unit_done`` line arrives, so
        the attempts of units that never finished are never counted and memory holds the
        units in flight, not every attempt. Lines of phases or steps not tallied (the
        ``llm-rubric`` judge's, say) are skipped here.
        """
        by_phase: dict[str, dict[str, int]] = {}  # phase → step id → slot
        for (phase, sid), i in self.slots.items():
            by_phase.setdefault(phase, {})[sid] = i
        nothing: dict[str, int] = {}
        units = self.units
        pending: dict[tuple[str, int], list[tuple[int, Mapping[str, Any]]]] = {}
        keys = (("chained", "steps"), ("isolated", "isolated"))  # a unit_done's list of each phase
        phases = [(by_phase[phase], key) for phase, key in keys if phase in by_phase]
        lines = 0
        for rec in records:
            unit = rec.get("unit_done")
            if unit is None:
                if "step" in rec and "case" in rec:
                    slot = by_phase.get(rec.get("phase", "chained"), nothing).get(rec["step"])
                    if slot is not None:
                        unit_key = (rec["case"], rec["trial"])
                        waiting = pending.get(unit_key)
                        if waiting is None:
                            pending[unit_key] = [(slot, rec)]
                        else:
                            waiting.append((slot, rec))
                    lines += 1
                continue
            case, trial = unit["case"], unit["trial"]
            # a journal holds one unit_done per unit: one writer per run dir, and resume compacts
            done = pending.pop((case, trial), None)
            if done is not None:
                self._add_attempts(done)
            position = units.position(case)
            for steps, key in phases:
                for s in unit.get(key, ()):
                    slot = steps.get(s["step"])
                    if slot is not None:
                        self._add_step(slot, case, trial, position, s)
            units.add(position, unit)
            lines += 1
            if lines >= CHUNK_LINES:
                self._end_block()
                lines = 0
        self._end_block()

    def _add_attempts(self, attempts: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        """Count a finished unit's attempts. The cost is summed as the former pandas
        aggregation summed it (so that ``cost_usd`` keeps its every bit): with Kahan's
        compensation within a block of :data:`CHUNK_LINES` lines, the blocks' sums added
        plainly (:meth:`_end_block`)."""
        tallies, sums, errs = self.tallies, self.block_sum, self.block_err
        for slot, rec in attempts:
            tally = tallies[slot]
            get = rec.get
            tally.attempts += 1
            outcome = get("outcome", "error")
            tally.outcomes[outcome] += 1
            if outcome == "error":
                tally.error_kinds[get("error_kind") or "unknown"] += 1
            if get("cached"):
                tally.cached += 1  # it made no request: left out of the latency figures
            else:
                tally.latencies.append(float(get("latency_ms") or 0.0))
            throttled = get("throttled")
            if throttled:
                tally.throttled += throttled
            tokens = get("tokens_in")
            if tokens:
                tally.tokens_in += tokens
            tokens = get("tokens_out")
            if tokens:
                tally.tokens_out += tokens
            cost = get("cost_usd")
            if cost is not None:
                tally.priced = True
            if cost or errs[slot]:  # (adding 0 with no compensation pending changes nothing)
                y = float(cost or 0.0) - errs[slot]
                before = sums[slot]
                total = before + y
                errs[slot] = total - before - y
                sums[slot] = total

    def _end_block(self) -> None:
        sums, errs = self.block_sum, self.block_err
        for slot, tally in enumerate(self.tallies):
            tally.cost += sums[slot]
            sums[slot] = errs[slot] = 0.0

    def _add_step(self, slot: int, case: str, trial: int, position: int, s: Mapping[str, Any]) -> None:
        """Count one step of a finished unit (chained or isolated)."""
        tally = self.tallies[slot]
        if "visits" in s:
            self.graph = True
        final = s.get("final")
        if final == "skipped":
            tally.skipped_no_gold += 1
            return
        tally.reached += 1
        tally.visits += s.get("visits", 1) or 0
        passed = final == "pass"
        if passed:
            tally.passed += 1
        else:
            tally.failures_total += 1
            if final == "fail":
                tally.failed += 1
            else:
                tally.errors += 1
        if s.get("first") == "pass":
            tally.first_pass += 1
        attempts = s.get("attempts", 1)
        if attempts is not None and attempts > 1:
            tally.retried += 1
            if passed:
                tally.retry_recovered += 1
        if self.clustered:
            shares = self.shares[slot]
            shares[case] = shares.get(case, 0) + (_PASSED if passed else 1)
        if not passed:
            self.seq += 1
            key = (-position, -trial, -self.seq)  # a max-heap of (position, trial, arrival)
            heap = self.failures[slot]
            full = len(heap) >= FAILURES_KEPT
            if not full or key > heap[0][0]:  # room, or earlier than the last kept: it takes its place
                kept = (key, case, trial, final, s.get("error_kind"), s.get("reason"), s.get("output"))
                (heapq.heapreplace if full else heapq.heappush)(heap, kept)

    def absorb(self, later: _Aggregator) -> None:
        """Add ``later``'s tallies: an aggregate, with the same steps, phases and eval-set
        order, of the journal lines that follow this one's — so that the parts of one journal
        may be aggregated apart (``relcheck traces`` does it in worker processes) and joined
        in journal order, with the figures one pass over the whole gives. (Each part's cost
        sums end a block of :data:`CHUNK_LINES` where the part ends: the same to the bit only
        when nothing is priced, as in traces.) ``later`` is spent.
        """
        if later.slots != self.slots or later.clustered != self.clustered:
            raise ValueError("analysis: an aggregate of other steps or trials cannot be absorbed")
        moved = self.units.absorb(later.units)  # later's positions of cases the order lacks → ours
        offset = self.seq
        for slot, (tally, other) in enumerate(zip(self.tallies, later.tallies)):
            _add_tally(tally, other)
            heap = self.failures[slot]
            for (minus_position, minus_trial, minus_seq), *rest in later.failures[slot]:
                position = moved.get(-minus_position, -minus_position)
                key = (-position, minus_trial, minus_seq - offset)  # (arrival numbered after ours)
                full = len(heap) >= FAILURES_KEPT
                if not full or key > heap[0][0]:
                    (heapq.heapreplace if full else heapq.heappush)(heap, (key, *rest))
            shares = self.shares[slot]
            for case, packed in later.shares[slot].items():
                shares[case] = shares.get(case, 0) + packed
        self.seq += later.seq
        self.graph = self.graph or later.graph

    def finish(self) -> tuple[dict[str, StepTally], dict[str, StepTally] | None]:
        position = self.units.position
        for slot, tally in enumerate(self.tallies):
            tally.failures = [
                {k: _plain(v) for k, v in zip(FAILURE_KEYS, values)}
                for _, *values in sorted(self.failures[slot], reverse=True)  # eval-set order
            ]
            if self.clustered:  # per-case shares in eval-set order (the order their mean sums in)
                shares = sorted(self.shares[slot].items(), key=lambda item: position(item[0]))
                tally.per_case = {case: [v >> 32, v & _REACHED] for case, v in shares}
        by_phase: dict[str, dict[str, StepTally]] = {phase: {} for phase in self.phases}
        for (phase, sid), slot in self.slots.items():
            by_phase[phase][sid] = self.tallies[slot]
        return by_phase["chained"], by_phase.get("isolated")


Aggregate = _Aggregator  # (what aggregate returns; opaque to callers)


def _add_tally(tally: StepTally, other: StepTally) -> None:
    """Add ``other``'s counts (of later journal lines) to ``tally``'s, field by field, as if
    one pass had counted both: numbers are summed, counters and latencies appended in order
    (a counter's keys stay in first-seen order)."""
    for f in fields(StepTally):
        name = f.name
        mine, theirs = getattr(tally, name), getattr(other, name)
        if name == "id" or name == "failures" or name == "per_case":
            continue  # (the id is the same; the last two are made by finish())
        if isinstance(mine, bool):
            setattr(tally, name, mine or theirs)
        elif isinstance(mine, (int, float)):
            setattr(tally, name, mine + theirs)
        elif isinstance(mine, Counter):
            mine.update(theirs)  # (not +=, which drops counts of zero)
        elif isinstance(mine, array):
            mine.extend(theirs)
        else:  # a new kind of field: say so here, not with figures silently short
            raise TypeError(f"analysis: StepTally.{name} of type {type(mine).__name__} is not summed")


_REACHED = (1 << 32) - 1  # a case's per-step share, packed in one int: passed << 32 | reached
_PASSED = (1 << 32) + 1


def _plain(value: Any) -> Any:
    """A journal value as results.json has it (a NaN float → None)."""
    if isinstance(value, float) and value != value:
        return None
    return value


class _UnitTable:
    """The finished units, column by column in arrays while the journal is read.

    Keeping no Python object per unit during the pass avoids interleaving long-lived small
    objects with the parser's garbage, which fragments the heap and grows RSS; the unit
    records are built once, in (index, trial) order, at the end. Case ids come from
    ``order``'s keys.
    """

    def __init__(self, order: Mapping[str, int]) -> None:
        self.order = order
        self.extra: dict[str, int] = {}  # cases the eval set does not hold, after every known one
        self.after: int | None = None  # the first position after every known case
        self.vocab: list[Any] = []
        self.codes: dict[Any, int] = {}
        self.cols = {
            name: array("i")
            for name in ("index", "trial", "passed", "failed_step", "outcome", "error_kind", "attempts")
        }

    def position(self, case: str) -> int:
        found = self.order.get(case)
        if found is not None:
            return found
        found = self.extra.get(case)
        if found is None:
            if self.after is None:
                self.after = max(self.order.values(), default=-1) + 1
            found = self.extra[case] = self.after + len(self.extra)
        return found

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

    def absorb(self, later: _UnitTable) -> dict[int, int]:
        """Append ``later``'s units (of the journal lines after ours, the same order); returns
        the positions it gave cases the order lacks, mapped to the ones they have here."""
        moved = {p: self.position(case) for case, p in later.extra.items()}  # (in its first-seen order)
        codes = [self._code(value) for value in later.vocab]
        mine, theirs = self.cols, later.cols
        index = theirs["index"]
        mine["index"].extend(array("i", (moved.get(p, p) for p in index)) if moved else index)
        for key in ("trial", "passed", "attempts"):
            mine[key].extend(theirs[key])
        for key in ("failed_step", "outcome", "error_kind"):
            mine[key].extend(array("i", (codes[code] for code in theirs[key])))
        return moved

    def __getstate__(self) -> dict[str, Any]:
        # sent from a worker process: the eval-set order is the receiver's already (and large)
        return {**self.__dict__, "order": {}}

    def records(self) -> tuple[UnitRecord, ...]:
        c = self.cols
        index, trial = c["index"], c["trial"]
        if not index:
            return ()
        low = min(trial)
        width = max(trial) - low + 1
        keys = [i * width + t - low for i, t in zip(index, trial)]
        rows = sorted(range(len(keys)), key=keys.__getitem__)  # stable: arrival order within (index, trial)
        del keys
        ids: list[str | None] = [None] * (max(index) + 1)  # position → id
        for mapping in (self.order, self.extra):
            for case, p in mapping.items():
                if p < len(ids):
                    ids[p] = case
        vocab = self.vocab
        passed, failed_step, outcome, error_kind, attempts = (
            c[k] for k in ("passed", "failed_step", "outcome", "error_kind", "attempts")
        )
        return tuple(
            UnitRecord(
                str(ids[index[r]]),
                trial[r],
                bool(passed[r]),
                vocab[failed_step[r]],
                vocab[outcome[r]],
                vocab[error_kind[r]],
                attempts[r],
                index[r],
            )
            for r in rows
        )


def _journal_lines(journal: Path | Sequence[Path]) -> Iterator[dict[str, Any]]:
    paths: Iterable[Path] = [journal] if isinstance(journal, Path) else journal
    for path in paths:
        yield from read_lines(path)


def end_to_end_of(
    units: Sequence[UnitRecord], steps: Sequence[StepRow], trials: int, confidence: float, isolate: bool
) -> EndToEnd:
    """The end-to-end row: clustered over cases with trials > 1 (SPEC §5).

    Args:
        units: every unit's record.
        steps: the step rows (their isolated rates give the independence prediction).
        trials: trials per case.
        confidence: the interval's confidence level.
        isolate: whether to add the independence prediction, gap and its interval.

    Returns:
        The :class:`EndToEnd` row, with pass@k, pass^k and flaky cases when trials > 1.
    """
    passed = sum(1 for u in units if u.passed)
    total = len(units)
    per_case = unit_steps.case_counts(units) if trials > 1 else {}
    rate, ci = rate_ci(passed, total, per_case, trials, confidence)
    infra = sum(1 for u in units if u.outcome == "error" and is_infrastructure(u.error_kind))
    extra: dict[str, Any] = {}
    if trials > 1:
        counts = [(n, c) for c, n in per_case.values()]
        extra["pass_at_k"] = {str(k): stats.mean_pass_at_k(counts, k) for k in range(1, trials + 1)}
        extra["pass_hat_k"] = {str(k): stats.mean_pass_hat_k(counts, k) for k in range(1, trials + 1)}
        extra["flaky"] = tuple(case for case, (c, n) in per_case.items() if 0 < c < n)
    if isolate:
        rates = [s.isolated.rate if s.isolated else None for s in steps]
        product = stats.chain_rate([r for r in rates if r is not None]) if all(r is not None for r in rates) else None
        extra["independence_prediction"] = product
        extra["independence_gap"] = (rate - product) if (rate is not None and product is not None) else None
        extra["independence_gap_ci"] = _gap_interval(rate, ci, product, steps, confidence)
    return EndToEnd(
        passed=passed,
        total=total,
        rate=rate,
        ci=ci,
        cases=len(per_case) if trials > 1 else total,
        infra_errors=infra,
        error_rate=infra / total if total else None,
        **extra,
    )


def _graph_columns(
    steps: Sequence[StepRow], tallies: Mapping[str, StepTally], units: Sequence[UnitRecord]
) -> tuple[StepRow, ...]:
    """Graph pipelines: each node's ``reach_share`` (units where it ran), ``visits`` (its
    executions per unit that reached it: a tool loop runs a node several times) and
    ``survivors`` (units not yet failed after this step, in step order: with branches, a
    step's ``passed`` is not the survival count)."""
    total = len(units)
    failed_at = Counter(u.failed_step for u in units if not u.passed)
    alive = total
    rows = []
    for row in steps:
        tally = tallies[row.id]
        alive -= failed_at.get(row.id, 0)
        rows.append(
            row.model_copy(
                update={
                    "reach_share": tally.reached / total if total else None,
                    "visits": Visits(total=tally.visits, per_unit=ratio(tally.visits, tally.reached)),
                    "survivors": alive,
                }
            )
        )
    return tuple(rows)


def _gap_interval(
    rate: float | None, ci: Interval | None, product: float | None, steps: Sequence[StepRow], confidence: float
) -> Interval | None:
    """An interval for the independence gap (chained rate − product of isolated rates).

    The delta method: Var(gap) ≈ Var(chained) + product² · Σ Var(isolated_i)/isolated_i², each
    variance from its own interval's half-width (so clustering with trials carries over). The
    two passes ran on the same units, and their covariance (positive: a hard case is hard in
    both) is left out, so the interval is conservative: wider than the truth.
    """
    from scipy.stats import norm

    if rate is None or ci is None or product is None:
        return None
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    var = ((ci.high - ci.low) / (2 * z)) ** 2
    for s in steps:
        iso = s.isolated
        if iso is None or iso.rate is None or iso.ci is None or iso.rate == 0:
            return None
        var += product**2 * (((iso.ci.high - iso.ci.low) / (2 * z)) ** 2) / iso.rate**2
    low, high = stats.difference_interval(rate - product, var, confidence)
    return Interval(low=low, high=high)


def what_if(results: Results) -> tuple[WhatIfRow, ...]:
    """One more retry on each step: the projected step and end-to-end rates.

    Both projections use the retry model of :mod:`.planning` (one model for what-if and
    ``relcheck plan``): *measured* takes the per-retry recovery q from the measured
    ``recovery_rate`` ρ over today's r retries (q = 1 − (1 − ρ)^(1/r)); *independent* takes a
    retry as a fresh draw passing like a first try. Only failures the step's ``retry.on``
    retries are recovered.

    Args:
        results: the run's results (their step rows and end-to-end rate).

    Returns:
        One :class:`WhatIfRow` per step.
    """
    from .planning import independent, project_one_more_retry, step_models

    rows = []
    e2e = results.end_to_end
    measured_models = {m.id: m for m in step_models(results)}
    for s in results.steps:
        model = measured_models.get(s.id)
        if model is None or s.first_try_rate is None or s.rate is None:
            continue
        retries = model.retries_now
        indep_model = independent(model)
        indep, e2e_indep = project_one_more_retry(results, indep_model)
        if model.model == "measured":
            measured, e2e_measured = project_one_more_retry(results, model)
        else:
            measured, e2e_measured = None, None
        rows.append(
            WhatIfRow(
                step=s.id,
                retries_now=retries,
                retries_then=retries + 1,
                first_try_rate=s.first_try_rate,
                rate_now=s.rate,
                recovery_rate=s.recovery_rate,
                step_rate_independent=indep,
                step_rate_measured=measured,
                end_to_end_now=e2e.rate,
                end_to_end_independent=e2e_indep,
                end_to_end_measured=e2e_measured,
            )
        )
    return tuple(rows)
