"""One trace → the journal lines ``eval`` writes for one unit: attempt lines and ``unit_done``.

- A trace is a unit (case = trace id, trial 1); its records are ordered by start time.
- Each record is an attempt of its step: ``error`` (with its kind) when it errored,
  otherwise ``pass`` — or ``fail`` when the step's deterministic checks ran on its output.
- A record right after an errored sibling of the same step (same parent), or one with the
  same tool-call id as an earlier sibling of the same step, is a *retry* of that step: the
  next attempt of the same occurrence. So ``recovery_rate`` is measured from production.
- A step that occurs several times in a trace (an agent loop) is one unit-step entry: it
  passes when every occurrence finally passed, and counts as retried when any occurrence was.
- The unit fails at its first non-passing step in the results' step order (the pipeline's,
  or the steps' mean position by start time in the traces), as a chained eval does; each
  step row also gets ``survivors`` (units with no failure up to it) for the waterfall, since
  in production the steps after a failure may still have run and have their own rates.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .records import excerpt
from .spill import Row


@dataclass
class Occurrence:
    step: str
    parent: str | None
    call_id: str | None
    start: int
    end: int
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> str:
        return str(self.attempts[-1]["outcome"])


@dataclass
class StepStats:
    """What the results table needs about a step found in traces: the most attempts one
    occurrence took."""

    max_attempts: int = 1


class UnitBuilder:
    """Turns each trace's records into journal lines; tallies what the report states."""

    def __init__(self, order: Sequence[str], checks: TraceChecks | None = None) -> None:
        self.order = {step: i for i, step in enumerate(order)}
        self.checks = checks
        self.steps: dict[str, StepStats] = {}
        self.retries = 0
        self.duplicates = 0
        self.first_start: int | None = None
        self.last_end: int | None = None

    def unit(self, rows: Sequence[Row]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The attempt lines and the ``unit_done`` record of one trace."""
        trace = rows[0].trace
        occurrences = self._occurrences(rows, trace)
        attempts: list[dict[str, Any]] = []
        by_step: dict[str, list[Occurrence]] = {}
        for occ in occurrences:
            by_step.setdefault(occ.step, []).append(occ)
            for a in occ.attempts:
                attempts.append(a)
        entries = [self._entry(step, occs) for step, occs in by_step.items()]
        failing = [e for e in entries if e["final"] != "pass"]
        first_failing = min(failing, key=lambda e: self.order.get(e["step"], len(self.order))) if failing else None
        failed = next(o for o in by_step[first_failing["step"]] if o.final != "pass") if first_failing else None
        for step, occs in by_step.items():
            stats = self.steps.setdefault(step, StepStats())
            stats.max_attempts = max(stats.max_attempts, *(len(o.attempts) for o in occs))
        start, end = min(r.start for r in rows), max(r.end for r in rows)
        self.first_start = start if self.first_start is None else min(self.first_start, start)
        self.last_end = end if self.last_end is None else max(self.last_end, end)
        last = failed.attempts[-1] if failed else None
        unit = {
            "case": trace,
            "trial": 1,
            "passed": failed is None,
            "failed_step": failed.step if failed else None,
            "outcome": last["outcome"] if last else "pass",
            "error_kind": last["error_kind"] if last else None,
            "attempts": len(attempts),
            "steps": entries,
        }
        return attempts, unit

    def _occurrences(self, rows: Sequence[Row], trace: str) -> list[Occurrence]:
        occurrences: list[Occurrence] = []
        last_sibling: dict[str | None, Occurrence] = {}
        by_call: dict[tuple[str | None, str, str], Occurrence] = {}
        steps_ctx: dict[str, Any] = {}
        seen: set[str] = set()
        for r in rows:
            if r.id in seen:  # the same span in two files (or exported twice)
                self.duplicates += 1
                continue
            seen.add(r.id)
            prev = last_sibling.get(r.parent)
            occ = by_call.get((r.parent, r.step, r.call_id)) if r.call_id else None
            if (
                occ is None
                and prev is not None
                and prev.step == r.step
                and prev.final == "error"
                and (r.call_id is None or prev.call_id in (None, r.call_id))
            ):
                occ = prev
            if occ is None:
                occ = Occurrence(r.step, r.parent, r.call_id, r.start, r.end)
                occurrences.append(occ)
                if r.call_id:
                    by_call[(r.parent, r.step, r.call_id)] = occ
            else:
                self.retries += 1
                occ.end = max(occ.end, r.end)
            last_sibling[r.parent] = occ
            occ.attempts.append(self._attempt(r, trace, len(occ.attempts) + 1, steps_ctx))
        return occurrences

    def _attempt(self, r: Row, trace: str, number: int, steps_ctx: dict[str, Any]) -> dict[str, Any]:
        outcome, kind, reason = ("error", r.kind or "error", r.reason) if r.error else ("pass", None, None)
        latency = (r.end - r.start) / 1e6
        if not r.error and self.checks is not None and r.output is not None and self.checks.wants(r.step):
            verdict = self.checks.judge(r.step, r.output, latency, trace, number, steps_ctx)
            if verdict is not None:
                outcome, reason = verdict
        if outcome == "pass" and r.output is not None:
            steps_ctx[r.step] = {"output": r.output, "text": r.output}
        return {
            "case": trace,
            "trial": 1,
            "step": r.step,
            "attempt": number,
            "outcome": outcome,
            "error_kind": kind,
            "reason": reason,
            "latency_ms": round(latency, 3),
            "tokens_in": r.tokens_in or 0,
            "tokens_out": r.tokens_out or 0,
            "output": excerpt(r.output),
            "span": r.id,
        }

    @staticmethod
    def _entry(step: str, occs: Sequence[Occurrence]) -> dict[str, Any]:
        deciding = next((o for o in occs if o.final != "pass"), occs[-1])
        first = next((o.attempts[0]["outcome"] for o in occs if o.attempts[0]["outcome"] != "pass"), "pass")
        retries = sum(len(o.attempts) - 1 for o in occs)
        last = deciding.attempts[-1]
        return {
            "step": step,
            "attempts": 1 + retries,
            "first": first,
            "final": deciding.final,
            "error_kind": last["error_kind"],
            "reason": last["reason"],
            "output": excerpt(last["output"], 200) if deciding.final != "pass" else None,
            "occurrences": len(occs),
        }


class TraceChecks:
    """Runs a pipeline step's deterministic checks on an output a trace recorded.

    Traces carry no gold answers: a check whose templates need what a trace cannot give
    (``expect``, ``vars``) cannot be rendered and is not run (counted in ``skipped``);
    ``llm-rubric`` needs a judge endpoint and is not run either.
    """

    def __init__(self, pipeline: Any) -> None:
        self.plans = {s.id: [c for c in s.checks if c.type != "llm-rubric"] for s in pipeline.steps}
        self.parse = {s.id: s.parse for s in pipeline.steps}
        self.judged = 0
        self.skipped: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wants(self, step: str) -> bool:
        return bool(self.plans.get(step)) or self.parse.get(step) == "json"

    def judge(
        self, step: str, text: str, latency_ms: float, trace: str, attempt: int, steps_ctx: Mapping[str, Any]
    ) -> tuple[str, str | None] | None:
        """``("pass", None)`` or ``("fail", reason)``; ``None`` when no check could run."""
        from ..checks import CheckCodeError, CheckInput, run_check
        from ..templating import RenderError, render_value

        output: Any = text
        if self.parse.get(step) == "json":
            try:
                output = json.loads(text)
            except ValueError as exc:
                self.judged += 1
                return "fail", f"output is not valid JSON: {exc}"
        context = {
            "vars": {},
            "expect": {},
            "case": {"id": trace, "tags": []},
            "steps": dict(steps_ctx),
            "step": {"id": step},
            "trial": 1,
            "attempt": attempt,
        }
        inp = CheckInput(output=output, text=text, latency_ms=latency_ms, context=context)
        ran = False
        for plan in self.plans.get(step, ()):
            spec = plan.spec
            try:
                if plan.templated:
                    spec = {**spec, **{k: render_value(v, context) for k, v in plan.templated.items()}}
            except RenderError:
                self.skipped[f"{step}: {plan.type}"] += 1
                continue
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            try:
                verdict = self._loop.run_until_complete(run_check(spec, inp))
            except CheckCodeError as exc:
                self.judged += 1
                return "fail", f"check {plan.type} raised: {exc}"
            ran = True
            if not verdict.passed:
                self.judged += 1
                return "fail", f"{plan.type}: {verdict.reason}"
        if ran or self.parse.get(step) == "json":
            self.judged += 1
            return "pass", None
        return None

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
