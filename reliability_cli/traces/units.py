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
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .records import OUTPUT_LIMIT, excerpt

# positions in a stored row (spill.Row, read as a plain tuple)
_TRACE, _START, _END, _ID, _PARENT, _ERROR, _KIND, _REASON, _TIN, _TOUT, _CALL, _LINE, _STEP, _OUTPUT = range(14)
_LIMIT = OUTPUT_LIMIT


@dataclass
class StepStats:
    """What the results table needs about a step found in traces: the most attempts one
    occurrence took."""

    max_attempts: int = 1


class UnitBuilder:
    """Turns each trace's records into journal records; tallies what the report states.

    (Called once per trace of a million-span input: an occurrence is a plain list
    ``[step, parent, call_id, attempts, journal lines]`` and a row a plain tuple, for speed.)"""

    def __init__(self, order: Sequence[str], checks: TraceChecks | None = None) -> None:
        self.order = {step: i for i, step in enumerate(order)}
        self.checks = checks
        self.steps: dict[str, StepStats] = {}
        self.retries = 0
        self.duplicates = 0
        self.first_start: int | None = None
        self.last_end: int | None = None
        self._steps_json: dict[str, str] = {}  # step → its JSON string

    def unit(self, rows: Sequence[tuple[Any, ...]]) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        """The attempt records and the ``unit_done`` record of one trace (rows by start time),
        and their journal lines (each ended by a newline)."""
        trace = rows[0][_TRACE]
        occurrences = self._occurrences(rows, trace)
        attempts: list[dict[str, Any]] = []
        lines: list[str] = []
        by_step: dict[str, list[list[Any]]] = {}
        for occ in occurrences:
            same = by_step.get(occ[0])
            if same is None:
                by_step[occ[0]] = [occ]
            else:
                same.append(occ)
            attempts.extend(occ[3])
            lines.extend(occ[4])
        order = self.order
        missing = len(order)
        stats = self.steps
        entries: list[dict[str, Any]] = []
        failed: list[Any] | None = None  # the deciding occurrence of the first failing step
        failed_rank = 0
        for step, occs in by_step.items():
            if len(occs) == 1:
                deciding = occs[0]
                tries = deciding[3]
                first = tries[0]["outcome"]
                n_attempts = most = len(tries)
            else:
                deciding = next((o for o in occs if o[3][-1]["outcome"] != "pass"), occs[-1])
                first = next((o[3][0]["outcome"] for o in occs if o[3][0]["outcome"] != "pass"), "pass")
                n_attempts = 1 + sum(len(o[3]) - 1 for o in occs)
                most = max(len(o[3]) for o in occs)
            last = deciding[3][-1]
            final = last["outcome"]
            entries.append(
                {
                    "step": step,
                    "attempts": n_attempts,
                    "first": first,
                    "final": final,
                    "error_kind": last["error_kind"],
                    "reason": last["reason"],
                    "output": excerpt(last["output"], 200) if final != "pass" else None,
                    "occurrences": len(occs),
                }
            )
            if final != "pass":
                rank = order.get(step, missing)
                if failed is None or rank < failed_rank:
                    failed, failed_rank = deciding, rank
            stat = stats.get(step)
            if stat is None:
                stats[step] = StepStats(max(1, most))
            elif most > stat.max_attempts:
                stat.max_attempts = most
        start, end = rows[0][_START], max(map(_end_of, rows))
        if self.first_start is None or start < self.first_start:
            self.first_start = start
        if self.last_end is None or end > self.last_end:
            self.last_end = end
        last = failed[3][-1] if failed is not None else None
        unit = {
            "case": trace,
            "trial": 1,
            "passed": failed is None,
            "failed_step": failed[0] if failed is not None else None,
            "outcome": last["outcome"] if last else "pass",
            "error_kind": last["error_kind"] if last else None,
            "attempts": len(attempts),
            "steps": entries,
        }
        lines.append(unit_line(unit))
        lines.append("")
        return attempts, unit, "\n".join(lines)

    def _occurrences(self, rows: Sequence[tuple[Any, ...]], trace: str) -> list[list[Any]]:
        occurrences: list[list[Any]] = []
        last_sibling: dict[str | None, list[Any]] = {}
        by_call: dict[tuple[str | None, str, str], list[Any]] = {}
        steps_ctx: dict[str, Any] = {}
        seen: set[str] = set()
        checks = self.checks
        head = f'{{"case":{_text(trace)},"trial":1,"step":'
        steps_json = self._steps_json
        for r in rows:
            span = r[_ID]
            if span in seen:  # the same span in two files (or exported twice)
                self.duplicates += 1
                continue
            seen.add(span)
            parent, step, call = r[_PARENT], r[_STEP], r[_CALL]
            prev = last_sibling.get(parent)
            occ = by_call.get((parent, step, call)) if call else None
            if (
                occ is None
                and prev is not None
                and prev[0] == step
                and prev[3][-1]["outcome"] == "error"
                and (call is None or prev[2] in (None, call))
            ):
                occ = prev
            if occ is None:
                occ = [step, parent, call, [], []]
                occurrences.append(occ)
                if call:
                    by_call[(parent, step, call)] = occ
            else:
                self.retries += 1
            last_sibling[parent] = occ
            tries = occ[3]
            number = len(tries) + 1
            latency = (r[_END] - r[_START]) / 1e6
            output = r[_OUTPUT]
            if r[_ERROR]:
                outcome, kind, reason = "error", r[_KIND] or "error", r[_REASON]
            else:
                outcome, kind, reason = "pass", None, None
                if checks is not None and output is not None and checks.wants(step):
                    verdict = checks.judge(step, output, latency, trace, number, steps_ctx)
                    if verdict is not None:
                        outcome, reason = verdict
                if outcome == "pass" and output is not None:
                    steps_ctx[step] = {"output": output, "text": output}
            latency_ms = round(latency, 3)
            tokens_in = r[_TIN] or 0
            tokens_out = r[_TOUT] or 0
            if output is not None and len(output) > _LIMIT:
                output = excerpt(output)
            tries.append(
                {
                    "case": trace,
                    "trial": 1,
                    "step": step,
                    "attempt": number,
                    "outcome": outcome,
                    "error_kind": kind,
                    "reason": reason,
                    "latency_ms": latency_ms,
                    "tokens_in": tokens_in,
                    "tokens_out": tokens_out,
                    "output": output,
                    "span": span,
                }
            )
            step_json = steps_json.get(step)
            if step_json is None:
                step_json = steps_json[step] = _text(step)
            if tokens_in.__class__ is not int or tokens_out.__class__ is not int:
                tokens_in, tokens_out = _ENCODE(tokens_in), _ENCODE(tokens_out)
            if kind is None and reason is None and output is None:  # (most attempts)
                occ[4].append(
                    f'{head}{step_json},"attempt":{number},"outcome":"{outcome}","error_kind":null,"reason":null,'
                    f'"latency_ms":{latency_ms!r},"tokens_in":{tokens_in},"tokens_out":{tokens_out},'
                    f'"output":null,"span":{_text(span)}}}'
                )
            else:
                occ[4].append(
                    f'{head}{step_json},"attempt":{number},"outcome":"{outcome}",'
                    f'"error_kind":{_text(kind)},"reason":{_text(reason)},"latency_ms":{latency_ms!r},'
                    f'"tokens_in":{tokens_in},"tokens_out":{tokens_out},'
                    f'"output":{_text(output)},"span":{_text(span)}}}'
                )
        return occurrences


def _end_of(r: tuple[Any, ...]) -> Any:
    return r[_END]


# ---------------------------------------------------------------- journal lines
# A traces journal is written with ``json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))``
# — which costs about 10 µs a line here. These build the same text from templates: strings
# through the encoder's own C escaping, numbers by ``repr`` (as the encoder writes them),
# anything unexpected through the encoder itself.

_ENCODE = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
_STR: Any = getattr(json.encoder, "c_encode_basestring_ascii", None) or json.encoder.encode_basestring_ascii


def _text(value: Any) -> str:
    if value.__class__ is str:
        return _STR(value)  # type: ignore[no-any-return]
    return "null" if value is None else _ENCODE(value)


def _int(value: Any) -> str:
    return repr(value) if value.__class__ is int else _ENCODE(value)


def unit_line(u: Mapping[str, Any]) -> str:
    """The journal line of a ``unit_done`` record made by :class:`UnitBuilder` (no newline)."""
    steps = ",".join(
        [
            f'{{"step":{_text(e["step"])},"attempts":{_int(e["attempts"])},"first":{_text(e["first"])},'
            f'"final":{_text(e["final"])},"error_kind":{_text(e["error_kind"])},"reason":{_text(e["reason"])},'
            f'"output":{_text(e["output"])},"occurrences":{_int(e["occurrences"])}}}'
            for e in u["steps"]
        ]
    )
    return (
        f'{{"unit_done":{{"case":{_text(u["case"])},"trial":{_int(u["trial"])},'
        f'"passed":{"true" if u["passed"] is True else _ENCODE(u["passed"])},'
        f'"failed_step":{_text(u["failed_step"])},"outcome":{_text(u["outcome"])},'
        f'"error_kind":{_text(u["error_kind"])},"attempts":{_int(u["attempts"])},"steps":[{steps}]}}}}'
    )


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
        self._loop_pid = 0  # the process that made it (a forked worker makes its own)

    def wants(self, step: str) -> bool:
        return bool(self.plans.get(step)) or self.parse.get(step) == "json"

    def judge(
        self, step: str, text: str, latency_ms: float, trace: str, attempt: int, steps_ctx: Mapping[str, Any]
    ) -> tuple[str, str | None] | None:
        """``("pass", None)`` or ``("fail", reason)``; ``None`` when no check could run."""
        from ..checks import CheckCodeError, CheckInput, parse_json_output, run_check
        from ..templating import RenderError, render_value

        output: Any = text
        if self.parse.get(step) == "json":
            output, why = parse_json_output(text)
            if why is not None:
                self.judged += 1
                return "fail", why
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
            if self._loop is None or self._loop_pid != os.getpid():
                # an event loop inherited through fork shares its selector and wake-up socket
                # with the parent's: never used (nor closed) in the child
                self._loop, self._loop_pid = asyncio.new_event_loop(), os.getpid()
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
        if self._loop is not None and self._loop_pid == os.getpid():
            self._loop.close()
