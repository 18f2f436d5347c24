"""``relcheck merge``: shard results → the one run they split (SPEC §4, §7).

Shards must come from the same resolved pipeline, eval sets and result-changing flags (all
but ``--shard``), be distinct shards of the same N and share no unit; anything else is
refused (exit 2). Units are put back in eval-set order with the ``index`` every unit
carries (its position in the unsharded eval set).

When every shard's run directory (``run.dir``) still holds its ``attempts.jsonl``, the
merged results are rebuilt from those journals by the same code as ``relcheck eval``, so
they equal the unsharded run's exactly. Otherwise they are combined from the summaries:
counts, rates, intervals, units, failures and gates are exact, but latency ``p50``/``p95``
cannot be merged from percentiles; they are the attempt-weighted mean of the shards'
(``max`` is exact), and ``run.latency_approximate`` is ``true``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..journal import read_header
from . import analysis, gates
from . import units as unit_steps
from .schema import (
    GateSettings,
    IsolatedRow,
    Latency,
    Results,
    RunInfo,
    StepRow,
    Tokens,
    load,
)

#: run fields that differ between shards and are recomputed for the merged run
VOLATILE_RUN_KEYS = {
    "id",
    "dir",
    "started_at",
    "finished_at",
    "duration_s",
    "concurrency",
    "concurrency_cap",
    "shard",
    "flags",
    "cases",
    "units_planned",
    "stop_reason",
    "interrupted",
    "units",
    "requests",
    "cost_usd",
    "confidence",
    "gate_settings",
    "merged_from",
    "latency_approximate",
    "source",
}


def merge(paths: Sequence[str | Path], docs: Sequence[Results] | None = None) -> Results:
    """Merge shard results (files or run directories) into one run's results, with gates.

    When every shard's run directory still holds its journal, the merged figures are built
    from the journals (exactly as one unsharded run would be); otherwise from the stored
    per-step counts and per-case shares.

    Args:
        paths: The shards' ``results.json`` files or run directories.
        docs: The shards' results, already loaded (then ``paths`` only names them).

    Returns:
        The merged results, judged by the first shard's gate settings.

    Raises:
        ResultsError: a file cannot be read (exit 2).
        UsageError: the shards do not belong together (exit 2).
    """
    if docs is None:
        docs = [load(p) for p in paths]
    names = [str(p) for p in paths] or [f"#{i + 1}" for i in range(len(docs))]
    if not docs:
        raise UsageError("merge: give at least one shard results file")
    _check_consistent(docs, names)
    first = docs[0].run
    order = {u.case: u.index for d in docs for u in d.units}
    info = _run_info(docs)
    journals = [Path(d.run.dir) / "attempts.jsonl" for d in docs if d.run.dir]
    if len(journals) == len(docs) and all(_journal_matches(j, first) for j in journals):
        steps = [analysis.StepSpec(s.id, s.endpoint, s.max_attempts, s.retry_on) for s in docs[0].steps]
        results = analysis.build_results(
            journals, steps, info, trials=first.trials, confidence=first.confidence, isolate=first.isolate, order=order
        )
    else:
        results = _from_summaries(docs, info, order)
    return gates.apply(results, first.gate_settings or GateSettings())


def _check_consistent(docs: Sequence[Results], names: Sequence[str]) -> None:
    base = docs[0].run
    shards: dict[str, str] = {}
    seen: dict[tuple[str, int], str] = {}
    for doc, name in zip(docs, names):
        run = doc.run
        for key, label in (("pipeline_hash", "resolved pipeline"), ("evalset_hash", "eval sets")):
            if getattr(run, key) != getattr(base, key):
                raise UsageError(
                    f"merge: {name} has a different {label} than {names[0]} "
                    f"({getattr(run, key)[:12]} ≠ {getattr(base, key)[:12]}): "
                    "these are not shards of one run"
                )
        flags = run.flags.model_dump(exclude={"shard"})
        base_flags = base.flags.model_dump(exclude={"shard"})
        if flags != base_flags:
            differ = sorted(k for k in set(flags) | set(base_flags) if flags.get(k) != base_flags.get(k))
            raise UsageError(
                f"merge: {name} was run with different flags than {names[0]} "
                f"({', '.join('--' + k.replace('_', '-') for k in differ)})"
            )
        if run.gate_settings != base.gate_settings:
            raise UsageError(
                f"merge: {name} has different gate settings than {names[0]}",
                hint="run every shard with the same --min-e2e/--min-step/--mode/--baseline",
            )
        shard = run.shard
        if shard is not None:
            if shard in shards:
                raise UsageError(f"merge: {name} and {shards[shard]} are both shard {shard}")
            shards[shard] = name
        for u in doc.units:
            unit = (u.case, u.trial)
            if unit in seen:
                raise UsageError(
                    f"merge: unit {u.case}[{u.trial}] is in both {seen[unit]} and {name}",
                    hint="merge each shard once; shards of one run never overlap",
                )
            seen[unit] = name
    totals = {s.split("/")[1] for s in shards}
    if len(totals) > 1:
        raise UsageError(f"merge: the shards split the run differently ({', '.join(sorted(shards))})")


def _journal_matches(path: Path, run: RunInfo) -> bool:
    try:
        header = read_header(path)
    except OSError:
        return False
    return header is not None and header.get("pipeline_hash") == run.pipeline_hash


def _run_info(docs: Sequence[Results]) -> dict[str, Any]:
    """The merged run's descriptive fields (the counted ones are added by analysis)."""
    runs = [d.run for d in docs]
    info = runs[0].model_dump(exclude=VOLATILE_RUN_KEYS, exclude_unset=True)
    shards = [r.shard or "" for r in runs]
    complete = all(shards) and all(len(runs) == int(s.partition("/")[2]) for s in shards)
    stop = next((r.stop_reason for r in runs if r.stop_reason), None)
    info.update(
        {
            "id": "merged",
            "dir": None,
            "started_at": min(r.started_at for r in runs),
            "finished_at": max(r.finished_at for r in runs),
            "duration_s": max(r.duration_s for r in runs),
            "concurrency": runs[0].concurrency,
            "flags": runs[0].flags.model_copy(update={"shard": None}),
            "shard": None,
            "cases": sum(r.cases for r in runs),
            "units_planned": sum(r.units_planned for r in runs),
            "stop_reason": stop or (None if complete else "incomplete_shards"),
            "interrupted": any(r.interrupted for r in runs),
            "merged_from": tuple({"shard": r.shard, "id": r.id, "dir": r.dir} for r in runs),
            "source": "merge",
        }
    )
    return info


def _from_summaries(docs: Sequence[Results], info: dict[str, Any], order: dict[str, int]) -> Results:
    """Combine summaries when the journals are gone: exact but for latency p50/p95."""
    first = docs[0].run
    trials, confidence = first.trials, first.confidence
    units = sorted((u for d in docs for u in d.units), key=lambda u: (order.get(u.case, 0), u.trial))
    step_ids = docs[0].step_ids
    rows = []
    for i, base in enumerate(docs[0].steps):
        parts = [d.steps[i] for d in docs]
        total: dict[str, Any] = {
            key: sum(getattr(p, key) for p in parts)
            for key in (
                "reached",
                "passed",
                "failed",
                "errors",
                "retry_recovered",
                "retried",
                "attempts",
                "throttled",
                "cached",
                "failures_omitted",
                "first_try_passed",
            )
        }
        per_case = unit_steps.case_counts(units, step_ids, base.id) if trials > 1 else {}
        rate, ci = analysis.rate_ci(total["passed"], total["reached"], per_case, trials, confidence)
        kinds: dict[str, int] = {}
        for p in parts:
            for k, n in p.error_kinds.items():
                kinds[k] = kinds.get(k, 0) + n
        costs = [p.cost_usd for p in parts if p.cost_usd is not None]
        failures = sorted((f for p in parts for f in p.failures), key=lambda f: (order.get(f.case, 0), f.trial))
        extra: dict[str, Any] = {"isolated": _isolated(parts, trials, confidence)} if base.isolated is not None else {}
        rows.append(
            StepRow(
                id=base.id,
                endpoint=base.endpoint,
                max_attempts=base.max_attempts,
                rate=rate,
                ci=ci,
                first_try_rate=analysis.ratio(total["first_try_passed"], total["reached"]),
                **analysis.retry_ratios(
                    total["first_try_passed"],
                    total["reached"],
                    total["retry_recovered"],
                    total["retried"],
                    base.max_attempts - 1,
                ),
                retry_on=base.retry_on,
                attempt_outcomes={
                    k: sum(p.attempt_outcomes.get(k, 0) for p in parts) for k in ("pass", "fail", "error")
                },
                error_kinds=dict(sorted(kinds.items())),
                latency_ms=_latency(parts),
                tokens=Tokens(input=sum(p.tokens.input for p in parts), output=sum(p.tokens.output for p in parts)),
                cost_usd=round(sum(costs), 6) if costs else None,
                failures=tuple(failures[: analysis.FAILURES_KEPT]),
                **{
                    **total,
                    "failures_omitted": total["failures_omitted"] + max(0, len(failures) - analysis.FAILURES_KEPT),
                },
                **extra,
            )
        )
    isolate = bool(rows) and rows[0].isolated is not None
    return analysis.assemble(
        info, rows, units, trials=trials, confidence=confidence, isolate=isolate, latency_approximate=True
    )


def _isolated(parts: Sequence[StepRow], trials: int, confidence: float) -> IsolatedRow:
    rows = [p.isolated for p in parts if p.isolated is not None]
    total: dict[str, Any] = {
        key: sum(getattr(r, key) for r in rows)
        for key in ("reached", "passed", "failed", "errors", "attempts", "skipped_no_gold", "first_try_passed")
    }
    counts: dict[str, tuple[int, int]] = {}
    for r in rows:
        counts.update(r.case_counts or {})
    rate, ci = analysis.rate_ci(total["passed"], total["reached"], counts, trials, confidence)
    extra: dict[str, Any] = {"case_counts": counts} if trials > 1 else {}
    return IsolatedRow(
        rate=rate, ci=ci, first_try_rate=analysis.ratio(total["first_try_passed"], total["reached"]), **total, **extra
    )


def _latency(parts: Sequence[StepRow]) -> Latency:
    weighted = [(p.attempts, p.latency_ms) for p in parts if p.attempts and p.latency_ms.p50 is not None]
    if not weighted:
        return Latency(p50=None, p95=None, max=None)
    total = sum(n for n, _ in weighted)
    return Latency(
        p50=round(math.fsum(n * (lat.p50 or 0) for n, lat in weighted) / total, 3),
        p95=round(math.fsum(n * (lat.p95 or 0) for n, lat in weighted) / total, 3),
        max=max(lat.max or 0 for _, lat in weighted),
    )


def missing_shards(merged: Results, given: Sequence[str] = ()) -> str | None:
    """What a merge lacks, in words.

    Args:
        merged: The merged results.
        given: The names of the files given to ``merge`` (for the message).

    Returns:
        A sentence naming the missing shards and the files given; ``None`` when every shard
        of the run is there (or the merged documents were not shards).
    """
    sources = merged.run.merged_from or ()
    present = [str(s.shard) for s in sources if s.shard]
    if not present:
        return None
    total = int(present[0].partition("/")[2])
    have = {int(s.partition("/")[0]) for s in present}
    missing = [f"{i}/{total}" for i in range(1, total + 1) if i not in have]
    if not missing:
        return None
    files = (
        [f"{name} (shard {s.shard})" for name, s in zip(given, sources)]
        if len(given) == len(sources)
        else [f"shard {s.shard}" for s in sources]
    )
    return (
        f"incomplete merge: missing shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
        f"of {total}; given: {', '.join(files)}"
    )
