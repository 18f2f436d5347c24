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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..errors import UsageError
from . import analysis

VOLATILE_RUN_KEYS = ("id", "dir", "started_at", "finished_at", "duration_s", "concurrency", "shard",
                     "flags", "cases", "units_planned", "stop_reason", "interrupted", "units", "requests",
                     "cost_usd", "gate_settings")


@dataclass(frozen=True)
class _Retry:
    max_attempts: int


@dataclass(frozen=True)
class _Step:
    """What analysis needs of a step, rebuilt from a results row."""

    id: str
    endpoint: str
    retry: _Retry


@dataclass(frozen=True)
class _Pipeline:
    steps: tuple[_Step, ...] = field(default_factory=tuple)


def merge(paths: Sequence[str | Path], docs: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Merge shard results (files or run directories) into one results document, with gates.

    Raises:
        ResultsError: a file cannot be read (exit 2).
        UsageError: the shards do not belong together (exit 2).
    """
    from . import gates
    from .schema import load_results

    if docs is None:
        docs = [load_results(p) for p in paths]
    names = [str(p) for p in paths] or [f"#{i + 1}" for i in range(len(docs))]
    if not docs:
        raise UsageError("merge: give at least one shard results file")
    _check_consistent(docs, names)
    first = docs[0]["run"]
    order = {u["case"]: u.get("index", 0) for d in docs for u in d["units"]}
    pipeline = _Pipeline(tuple(_Step(s["id"], s.get("endpoint", ""), _Retry(s.get("max_attempts", 1)))
                               for s in docs[0]["steps"]))
    info = _run_info(docs)
    journals = [Path(d["run"]["dir"]) / "attempts.jsonl" for d in docs if d["run"].get("dir")]
    trials = first.get("trials", 1)
    confidence = first.get("confidence", 0.95)
    if len(journals) == len(docs) and all(_journal_matches(j, first) for j in journals):
        from ..config import EvalSet

        results = analysis.build_results(journals, cast(Any, pipeline), EvalSet((), {}), trials, info,
                                         confidence, order=order)
    else:
        results = _from_summaries(docs, info, order, trials, confidence)
    cfg = gates.GateConfig(**first.get("gate_settings") or {})
    gates.apply(results, cfg)
    return results


def _check_consistent(docs: Sequence[Mapping[str, Any]], names: Sequence[str]) -> None:
    base = docs[0]["run"]
    shards: dict[str, str] = {}
    seen: dict[tuple[str, int], str] = {}
    for doc, name in zip(docs, names):
        run = doc["run"]
        for key, label in (("pipeline_hash", "resolved pipeline"), ("evalset_hash", "eval sets")):
            if run.get(key) is None:
                raise UsageError(f"merge: {name} records no {key}; it was written by an older relcheck",
                                 hint="rerun the shard with this version")
            if run[key] != base[key]:
                raise UsageError(f"merge: {name} has a different {label} than {names[0]} "
                                 f"({run[key][:12]} ≠ {base[key][:12]}): these are not shards of one run")
        flags = {k: v for k, v in (run.get("flags") or {}).items() if k != "shard"}
        base_flags = {k: v for k, v in (base.get("flags") or {}).items() if k != "shard"}
        if flags != base_flags:
            differ = sorted(k for k in set(flags) | set(base_flags) if flags.get(k) != base_flags.get(k))
            raise UsageError(f"merge: {name} was run with different flags than {names[0]} "
                             f"({', '.join('--' + k.replace('_', '-') for k in differ)})")
        if (run.get("gate_settings") or {}) != (base.get("gate_settings") or {}):
            raise UsageError(f"merge: {name} has different gate settings than {names[0]}",
                             hint="run every shard with the same --min-e2e/--min-step/--mode/--baseline")
        shard = run.get("shard")
        if shard is not None:
            if shard in shards:
                raise UsageError(f"merge: {name} and {shards[shard]} are both shard {shard}")
            shards[shard] = name
        for u in doc["units"]:
            unit = (u["case"], u["trial"])
            if unit in seen:
                raise UsageError(f"merge: unit {u['case']}[{u['trial']}] is in both {seen[unit]} and {name}",
                                 hint="merge each shard once; shards of one run never overlap")
            seen[unit] = name
    totals = {s.split("/")[1] for s in shards}
    if len(totals) > 1:
        raise UsageError(f"merge: the shards split the run differently ({', '.join(sorted(shards))})")


def _journal_matches(path: Path, run: Mapping[str, Any]) -> bool:
    from ..journal import read_header

    try:
        header = read_header(path)
    except OSError:
        return False
    return header is not None and header.get("pipeline_hash") == run.get("pipeline_hash")


def _run_info(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    runs = [d["run"] for d in docs]
    info = {k: v for k, v in runs[0].items() if k not in VOLATILE_RUN_KEYS}
    shards = [str(r.get("shard") or "") for r in runs]
    complete = all(shards) and all(len(runs) == int(s.partition("/")[2]) for s in shards)
    info.update({
        "id": "merged", "dir": None,
        "started_at": min(r.get("started_at") or "" for r in runs),
        "finished_at": max(r.get("finished_at") or "" for r in runs),
        "duration_s": max(r.get("duration_s") or 0 for r in runs),
        "concurrency": runs[0].get("concurrency"),
        "flags": {**(runs[0].get("flags") or {}), "shard": None},
        "shard": None,
        "cases": sum(r.get("cases", 0) for r in runs),
        "units_planned": sum(r.get("units_planned", 0) for r in runs),
        "stop_reason": next((r["stop_reason"] for r in runs if r.get("stop_reason")), None),
        "interrupted": any(r.get("interrupted") for r in runs),
        "merged_from": [{"shard": r.get("shard"), "id": r.get("id"), "dir": r.get("dir")} for r in runs],
    })
    if not complete:
        info["stop_reason"] = info["stop_reason"] or "incomplete_shards"
    return info


def _from_summaries(docs: Sequence[Mapping[str, Any]], info: dict[str, Any], order: Mapping[str, int],
                    trials: int, confidence: float) -> dict[str, Any]:
    """Combine summaries when the journals are gone: exact but for latency p50/p95."""
    units = sorted((u for d in docs for u in d["units"]), key=lambda u: (order.get(u["case"], 0), u["trial"]))
    rows = []
    for i, base in enumerate(docs[0]["steps"]):
        parts = [d["steps"][i] for d in docs]
        row = dict(base)
        for key in ("reached", "passed", "failed", "errors", "retry_recovered", "retried", "attempts",
                    "throttled", "failures_omitted"):
            row[key] = sum(p.get(key) or 0 for p in parts)
        first_pass = sum(round((p["first_try_rate"] or 0) * p["reached"]) for p in parts)
        row["attempt_outcomes"] = {k: sum(p["attempt_outcomes"].get(k, 0) for p in parts) for k in ("pass", "fail", "error")}
        kinds: dict[str, int] = {}
        for p in parts:
            for k, n in p["error_kinds"].items():
                kinds[k] = kinds.get(k, 0) + n
        row["error_kinds"] = dict(sorted(kinds.items()))
        row["tokens"] = {k: sum(p["tokens"][k] for p in parts) for k in ("input", "output")}
        costs = [p["cost_usd"] for p in parts if p.get("cost_usd") is not None]
        row["cost_usd"] = round(sum(costs), 6) if costs else None
        row["latency_ms"] = _latency(parts)
        per_case = _step_shares(units, docs[0]["steps"], base["id"]) if trials > 1 else {}
        row["rate"], row["ci"] = analysis._rate_ci(row["passed"], row["reached"], per_case, trials, confidence)
        row.update(analysis.retry_ratios(first_pass, row["reached"], row["retry_recovered"], row["retried"]))
        failures = [f for p in parts for f in p.get("failures", ())]
        failures.sort(key=lambda f: (order.get(f["case"], 0), f["trial"]))
        row["failures_omitted"] += max(0, len(failures) - analysis.FAILURES_KEPT)
        row["failures"] = failures[: analysis.FAILURES_KEPT]
        if "isolated" in base:
            iso = {k: sum(p["isolated"].get(k) or 0 for p in parts)
                   for k in ("reached", "passed", "failed", "errors", "attempts", "skipped_no_gold")}
            iso_first = sum(round((p["isolated"]["first_try_rate"] or 0) * p["isolated"]["reached"]) for p in parts)
            iso["rate"], iso["ci"] = analysis._rate_ci(iso["passed"], iso["reached"], {}, 1, confidence)
            iso["first_try_rate"] = analysis._ratio(iso_first, iso["reached"])
            row["isolated"] = {k: iso[k] for k in ("reached", "passed", "failed", "errors", "rate", "ci",
                                                   "first_try_rate", "attempts", "skipped_no_gold")}
        rows.append(row)
    e2e_cases = analysis.per_case_of_units(units) if trials > 1 else {}
    end_to_end = analysis._end_to_end(units, e2e_cases, trials, confidence, rows, "isolated" in rows[0] if rows else False)
    priced = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
    run = {**info, "units": len(units),
           "requests": sum(r["attempts"] for r in rows) + sum(r["isolated"]["attempts"] for r in rows if "isolated" in r),
           "cost_usd": round(sum(priced), 6) if priced else None, "confidence": confidence,
           "latency_approximate": True}
    return {"schema": analysis.SCHEMA, "run": run, "steps": rows, "end_to_end": end_to_end,
            "what_if": analysis.what_if(rows, end_to_end), "gates": [], "units": units,
            "verdict": "pass", "exit_code": 0}


def _latency(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    weighted = [(p["attempts"], p["latency_ms"]) for p in parts if p["attempts"] and p["latency_ms"].get("p50") is not None]
    if not weighted:
        return {"p50": None, "p95": None, "max": None}
    total = sum(n for n, _ in weighted)
    out = {k: round(math.fsum(n * lat[k] for n, lat in weighted) / total, 3) for k in ("p50", "p95")}
    out["max"] = max(lat["max"] for _, lat in weighted)
    return out


def _step_shares(units: Sequence[Mapping[str, Any]], steps: Sequence[Mapping[str, Any]],
                 step: str) -> dict[str, list[int]]:
    """Per-case [passed, reached] at ``step``, from the units (the chain stops at the first failure)."""
    at = {s["id"]: i for i, s in enumerate(steps)}
    per_case: dict[str, list[int]] = {}
    for u in units:
        failed_at = at.get(u["failed_step"], len(at)) if not u["passed"] else len(at)
        if failed_at >= at[step]:
            pc = per_case.setdefault(u["case"], [0, 0])
            pc[1] += 1
            pc[0] += int(failed_at > at[step])
    return per_case
