"""The engine: runs units (case × trial) through the steps, with retries, concurrently.

Per-attempt failures are data: every attempt becomes one journal line with its outcome
(``pass``/``fail``/``error``) and ``error_kind``; nothing an endpoint does wrong is raised
out of here. Only the early-stop rules (an endpoint rejecting its first requests,
``--max-cost``) end a run before every unit is done.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from ..checks import CheckCodeError, CheckInput, parse_json_output, run_check
from ..config import Case, Pipeline, StepPlan
from ..endpoints import (
    AttemptError,
    AttemptKey,
    Endpoint,
    Request,
    Response,
    is_retryable_error,
)
from ..journal import JournalWriter
from ..results.schema import Stop
from ..templating import RenderError, render_value
from ..textfmt import one_line, truncate
from .details import DetailWriter

OUTPUT_LIMIT = 2048
EARLY_STOP_WINDOW = 20
STOP_GRACE_S = 0.5  # in-flight units may finish for this long after Ctrl-C / SIGTERM (then results: < 2 s)
FATAL_STATUS = frozenset({"http_400", "http_401", "http_403", "http_404", "http_422"})


@dataclass(frozen=True)
class Unit:
    case: Case
    trial: int


@dataclass
class StepOutcome:
    step: str
    attempts: int
    first: str
    final: str
    error_kind: str | None
    reason: str | None
    output: str | None
    #: ``json`` and ``tool_calls`` of the final attempt, for later steps' templates
    context: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "attempts": self.attempts,
            "first": self.first,
            "final": self.final,
            "error_kind": self.error_kind,
            "reason": self.reason,
            "output": self.output,
        }


@dataclass(frozen=True)
class Call:
    """What one request to an endpoint gave: a response, or the error it ended in."""

    response: Response | None
    latency_ms: float
    throttled: int = 0
    error_kind: str | None = None
    reason: str | None = None
    cost_usd: float | None = None
    cached: bool = False  # answered from the response cache: no request was made
    sent: Any = None  # the request as sent, for requests.jsonl (an HTTP endpoint's)


@dataclass(frozen=True)
class Attempt:
    """One attempt of one step for one unit: one journal line (SPEC §8)."""

    JOURNALED: ClassVar[tuple[str, ...]] = ()  # set below: every field but ``context``

    case: str
    trial: int
    step: str
    attempt: int
    phase: str
    outcome: str  # pass | fail | error
    error_kind: str | None = None
    reason: str | None = None
    latency_ms: float = 0.0
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    throttled: int = 0
    output: str | None = None
    #: ``json`` and ``tool_calls`` of the response, for later steps' templates; not journaled
    context: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    cached: bool = False  # journaled only when true

    @classmethod
    def of_call(
        cls,
        key: AttemptKey,
        phase: str,
        call: Call,
        outcome: str,
        error_kind: str | None,
        reason: str | None,
        output: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Attempt:
        response = call.response
        return cls(
            key.case,
            key.trial,
            key.step,
            key.attempt,
            phase,
            outcome,
            error_kind,
            reason,
            call.latency_ms,
            response.tokens_in if response else None,
            response.tokens_out if response else None,
            call.cost_usd,
            call.throttled,
            output,
            context,
            call.cached,
        )

    def line(self) -> dict[str, Any]:
        """The journal line: the fields of :data:`JOURNALED`, in order (``cached`` only when true)."""
        line = {
            "case": self.case,
            "trial": self.trial,
            "step": self.step,
            "attempt": self.attempt,
            "phase": self.phase,
            "outcome": self.outcome,
            "error_kind": self.error_kind,
            "reason": self.reason,
            "latency_ms": self.latency_ms,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost_usd,
            "throttled": self.throttled,
            "output": self.output,
        }
        if self.cached:
            line["cached"] = True
        return line


Attempt.JOURNALED = tuple(f.name for f in fields(Attempt) if f.name != "context")
# (Attempt.line spells the fields out, for speed; tests/runner/test_attempt_line.py keeps
# it in step with them)


class EarlyStop(Exception):
    """Raised inside the engine to end the run (exit 3)."""


@dataclass
class EndpointHealth:
    """Tracks an endpoint's first requests for the early-stop rule."""

    seen: int = 0
    fatal: int = 0
    last_kind: str | None = None
    unreachable: int = 0  # ``connect`` errors: refused, unknown host, no route
    last_reason: str | None = None


@dataclass
class Engine:
    pipeline: Pipeline
    endpoints: Mapping[str, Endpoint]
    journal: JournalWriter
    seed: int
    concurrency: int = 8
    max_cost: float | None = None
    on_unit: Callable[[dict[str, Any]], None] | None = None
    isolate: bool = False
    spent_usd: float = 0.0
    stop: Stop | None = None  # why the run stopped early (``run.stop_reason`` in results.json)
    interrupted: bool = False
    _health: dict[str, EndpointHealth] = field(default_factory=dict)
    #: ``(endpoint, last reason, requests)`` when an endpoint's first requests all failed to connect
    unreachable: tuple[str, str, int] | None = None
    _stopping: bool = False
    _halt: bool = False  # an early-stop rule fired: end the run once the deciding attempt is journaled
    _endpoint_limits: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _prices: dict[str, Any] = field(default_factory=dict)  # each endpoint's ``price`` (None: none)
    _workers: list[asyncio.Task[None]] = field(default_factory=list)
    #: a graph pipeline's runner (``relcheck.graphs``): it runs the units instead of the steps loop
    graph: Any = None
    #: the sidecar with each attempt's request, full output, tool calls and check verdicts
    details: DetailWriter | None = None

    # ------------------------------------------------------------------ scheduling

    async def run(self, units: Iterable[Unit]) -> None:
        """Run ``units`` with at most ``concurrency`` in flight; returns when all are done
        or the run was stopped (``stop`` says why)."""
        iterator = iter(units)
        for name, ep in self.pipeline.endpoints.items():
            if ep.max_concurrency and ep.max_concurrency < self.concurrency:  # else it never binds
                self._endpoint_limits[name] = asyncio.Semaphore(ep.max_concurrency)

        async def worker() -> None:
            try:
                for unit in iterator:
                    if self._stopping:
                        return
                    await self.run_unit(unit)
            except asyncio.CancelledError:
                if not self._stopping:
                    raise  # not ours: let the cancellation through

        workers = [asyncio.create_task(worker()) for _ in range(max(1, self.concurrency))]
        self._workers = workers
        try:
            await asyncio.gather(*workers)
        except EarlyStop:
            self._cancel_workers()
            await asyncio.gather(*workers, return_exceptions=True)
        self._check_short_runs()

    def request_stop(self, reason: str = "interrupted") -> None:
        """Stop scheduling new units (Ctrl-C, SIGTERM, --max-cost).

        On an interruption, units in flight get ``STOP_GRACE_S`` to finish and are then
        cancelled (a cancelled unit writes no ``unit_done`` line, so a resume reruns it); a
        second interruption cancels them at once.
        """
        again = self.interrupted and reason == "interrupted"
        self._stopping = True
        if reason == "interrupted":
            self.interrupted = True
        if self.stop is None:
            self.stop = Stop(reason)
        if reason == "interrupted":
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            if again:
                self._cancel_workers()
            else:
                loop.call_later(STOP_GRACE_S, self._cancel_workers)

    def _cancel_workers(self) -> None:
        for w in self._workers:
            if not w.done():
                w.cancel()

    # ------------------------------------------------------------------ one unit

    async def run_unit(self, unit: Unit) -> None:
        case, trial = unit.case, unit.trial
        if self.graph is not None:
            self._unit_done(await self.graph.run_unit(case, trial))
            return
        steps_ctx: dict[str, Any] = {}
        outcomes: list[StepOutcome] = []
        failed: StepOutcome | None = None
        if self.details is not None:
            self.details.begin_unit(case, trial)
        for step in self.pipeline.steps:
            outcome, output, text = await self.run_step(step, case, trial, steps_ctx)
            outcomes.append(outcome)
            if outcome.final != "pass":
                failed = outcome
                break
            steps_ctx[step.id] = {"output": output, "text": text, **outcome.context}
        record = {
            "case": case.id,
            "trial": trial,
            "passed": failed is None,
            "failed_step": failed.step if failed else None,
            "outcome": failed.final if failed else "pass",
            "error_kind": failed.error_kind if failed else None,
            "attempts": sum(o.attempts for o in outcomes),
            "steps": [o.as_dict() for o in outcomes],
        }
        if self.isolate:
            record["isolated"] = await self.run_isolated(case, trial, steps_ctx)
        self._unit_done(record)

    def _unit_done(self, record: dict[str, Any]) -> None:
        if self.details is not None:  # the unit's detail lines reach the kernel before its unit_done line
            self.details.end_unit(record["case"], record["trial"], passed=bool(record["passed"]))
        self.journal.write({"unit_done": record})
        if self.on_unit is not None:
            self.on_unit(record)
        if self.max_cost is not None and self.spent_usd >= self.max_cost:
            self.request_stop("max_cost")

    async def run_isolated(self, case: Case, trial: int, chained: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Isolated pass: each step sees gold upstream outputs (SPEC §4, ``--isolate``)."""
        results: list[dict[str, Any]] = []
        steps_ctx: dict[str, Any] = {}
        missing: str | None = None
        for step in self.pipeline.steps:
            if missing is not None:
                results.append({"step": step.id, "final": "skipped", "reason": f"no gold for {missing}"})
            else:
                outcome, _, _ = await self.run_step(step, case, trial, steps_ctx, phase="isolated")
                results.append(outcome.as_dict())
            if step.id in case.expect:
                gold = case.expect[step.id]
                steps_ctx[step.id] = {
                    "output": gold,
                    "text": gold if isinstance(gold, str) else json.dumps(gold),
                    **step_context(gold, None),
                }
            elif step.id in chained:
                steps_ctx[step.id] = chained[step.id]
            elif missing is None:
                missing = step.id
        return results

    # ------------------------------------------------------------------ one step

    async def run_step(
        self, step: StepPlan, case: Case, trial: int, steps_ctx: Mapping[str, Any], phase: str = "chained"
    ) -> tuple[StepOutcome, Any, str]:
        retry = step.retry
        first: str | None = None
        output: Any = None
        text = ""
        for number in range(1, retry.max_attempts + 1):
            if number > 1:
                await asyncio.sleep(self._backoff(step, case.id, trial, number))
            attempt, output, text = await self.run_attempt(step, case, trial, number, steps_ctx, phase)
            if self._halt:
                raise EarlyStop(str(self.stop))
            first = first or attempt.outcome
            if attempt.outcome == "pass" or not self._should_retry(step, attempt):
                break
        outcome = StepOutcome(
            step.id,
            attempt.attempt,
            first or "error",
            attempt.outcome,
            attempt.error_kind,
            attempt.reason,
            truncate(text, 200) if attempt.outcome != "pass" else None,
            attempt.context or step_context(output, None),
        )
        return outcome, output, text

    def _should_retry(self, step: StepPlan, attempt: Attempt) -> bool:
        if attempt.outcome == "fail":
            return "fail" in step.retry.on
        return "error" in step.retry.on and is_retryable_error(attempt.error_kind)

    def _backoff(self, step: StepPlan, case: str, trial: int, attempt: int) -> float:
        b = step.retry.backoff
        delay = min(b.max_s, b.initial_s * b.factor ** (attempt - 2))
        if b.jitter and delay > 0:
            rng = random.Random(f"{self.seed}|{case}|{trial}|{step.id}|{attempt}|backoff")
            delay *= rng.uniform(0.5, 1.0)  # "equal jitter": at least half the delay
        return delay

    async def run_attempt(
        self, step: StepPlan, case: Case, trial: int, attempt: int, steps_ctx: Mapping[str, Any], phase: str
    ) -> tuple[Attempt, Any, str]:
        """One attempt: render, call the endpoint, parse, judge, journal. Never raises for what
        the endpoint or the checks did: that is the attempt's outcome. With a detail sidecar, its
        line (request, full output, tool calls, check verdicts) is handed to it too."""
        detail: dict[str, Any] = {}
        result = await self._attempt(step, case, trial, attempt, steps_ctx, phase, detail)
        line = result[0].line()
        if self.details is not None:
            self.details.attempt(line, detail, result[2])  # (the sidecar line is built if it is kept)
        self.journal.write(line)
        return result

    async def _attempt(
        self,
        step: StepPlan,
        case: Case,
        trial: int,
        attempt: int,
        steps_ctx: Mapping[str, Any],
        phase: str,
        detail: dict[str, Any],
    ) -> tuple[Attempt, Any, str]:
        context = {
            "vars": case.vars,
            "expect": case.expect,
            "case": {"id": case.id, "tags": list(case.tags)},
            "steps": steps_ctx,
            "step": {"id": step.id},
            "trial": trial,
            "attempt": attempt,
        }
        key = AttemptKey(case.id, trial, step.id, attempt)
        try:
            messages = [{"role": role, "content": tpl.render(context)} for role, tpl in step.messages]
            params = render_value(step.params, context) if step.params else {}
        except RenderError as exc:
            return Attempt(case.id, trial, step.id, attempt, phase, "error", "template", str(exc)), None, ""
        detail["endpoint"] = step.endpoint
        detail["request"] = {"messages": messages, "params": params}
        request = Request(key, messages, params, context, step.timeout_s, self.seed, phase)
        call = await self.call(step.endpoint, request)
        response = call.response
        detail["sent"] = call.sent
        detail["tool_calls"] = response.tool_calls if response else ()
        if response is None:
            return Attempt.of_call(key, phase, call, "error", call.error_kind, call.reason), None, ""
        output, text, unparsed = self._parse(step, response)
        outcome: str
        kind: str | None
        reason: str | None
        if unparsed is not None:
            outcome, kind, reason = "fail", None, unparsed
        else:
            verdicts: list[dict[str, Any]] = []
            judged: list[dict[str, Any]] = []
            detail["checks"], detail["judge"] = verdicts, judged
            outcome, kind, reason = await self._judge_checks(step, case, context, call, output, text, verdicts, judged)
        excerpt = truncate(text, OUTPUT_LIMIT) if outcome != "error" or text else None
        return (
            Attempt.of_call(key, phase, call, outcome, kind, reason, excerpt, step_context(output, response)),
            output,
            text,
        )

    async def call(self, endpoint_name: str, request: Request) -> Call:
        """Send ``request`` to the endpoint within its concurrency limit; what it gave.

        Failures are data (:attr:`Call.error_kind`); they feed the early-stop rules.
        """
        endpoint = self.endpoints[endpoint_name]
        limit = self._endpoint_limits.get(endpoint_name)
        started = time.perf_counter()
        try:
            if limit is None:
                response = await endpoint.call(request)
            else:
                async with limit:
                    response = await endpoint.call(request)
        except AttemptError as exc:
            measured = (time.perf_counter() - started) * 1000
            self._health_update(endpoint_name, exc.kind, exc.fatal, exc.reason)
            return Call(
                None,
                round(exc.latency_ms if exc.latency_ms is not None else measured, 3),
                exc.throttled,
                exc.kind,
                one_line(exc.reason),
                sent=exc.sent,
            )
        measured = (time.perf_counter() - started) * 1000
        self._health_update(endpoint_name, None, False)
        cost = self._cost(endpoint_name, response)
        cached = bool(response.extra.get("cached"))
        if cached:
            self.spent_usd -= cost or 0.0  # nothing was paid: not counted toward --max-cost
        return Call(
            response,
            round(response.latency_ms if response.latency_ms is not None else measured, 3),
            response.throttled,
            cost_usd=cost,
            cached=cached,
            sent=response.extra.get("sent"),
        )

    def _cost(self, endpoint_name: str, response: Response) -> float | None:
        try:
            price = self._prices[endpoint_name]
        except KeyError:
            price = self._prices[endpoint_name] = getattr(self.pipeline.endpoints[endpoint_name], "price", None)
        if price is None:
            return None
        cost = ((response.tokens_in or 0) * price.input + (response.tokens_out or 0) * price.output) / 1e6
        self.spent_usd += cost
        return round(cost, 10)

    @staticmethod
    def _parse(step: StepPlan, response: Response) -> tuple[Any, str, str | None]:
        """(output, text, why it could not be parsed as asked — a ``fail`` of the model)."""
        text = response.text
        if response.output is not None:
            return response.output, text, None
        if step.parse == "json":
            value, why = parse_json_output(text)
            return value, text, why
        return text, text, None

    async def _judge_checks(
        self,
        step: StepPlan,
        case: Case,
        context: Mapping[str, Any],
        call: Call,
        output: Any,
        text: str,
        verdicts: list[dict[str, Any]] | None = None,
        judged: list[dict[str, Any]] | None = None,
    ) -> tuple[str, str | None, str | None]:
        """(outcome, error kind, reason) of the step's checks and the case's, in order; each
        verdict reached is appended to ``verdicts``, each ``llm-rubric`` judge call (its
        request as sent and its reply, for ``requests.jsonl``) to ``judged``."""
        assert call.response is not None
        judge = Judge(self, case, step, context, calls=judged)
        inp = CheckInput(
            output=output,
            text=text,
            tool_calls=tuple(call.response.tool_calls),
            latency_ms=call.latency_ms,
            judge=judge,
            context=context,
        )
        for plan in (*step.checks, *case.checks.get(step.id, ())):
            try:
                spec = plan.spec
                if plan.templated:  # (the spec's keys in order, the rendered ones in place)
                    spec = dict(spec)
                    for k, v in plan.templated.items():
                        spec[k] = render_value(v, context)
            except RenderError as exc:
                return "error", "template", f"check {plan.type}: {exc}"
            try:
                verdict = await run_check(spec, inp)
            except CheckCodeError as exc:
                return "error", "exception", one_line(str(exc))
            if judge.error is not None:  # the judge's infrastructure failed: an error, not the model's fail
                return "error", judge.error[0], one_line(judge.error[1])
            if verdicts is not None:
                verdicts.append({"type": plan.type, "passed": verdict.passed, "reason": verdict.reason})
            if not verdict.passed:
                return "fail", None, f"{plan.type}: {verdict.reason}"
        return "pass", None, None

    # ------------------------------------------------------------------ early stop

    def _health_update(self, endpoint: str, kind: str | None, fatal: bool, reason: str | None = None) -> None:
        health = self._health.get(endpoint)
        if health is None:
            health = self._health[endpoint] = EndpointHealth()
        elif health.seen >= EARLY_STOP_WINDOW:
            return
        health.seen += 1
        if fatal or kind in FATAL_STATUS:
            health.fatal += 1
            health.last_kind = kind
        if kind == "connect":
            health.unreachable += 1
            health.last_reason = reason
        if health.seen == EARLY_STOP_WINDOW:
            if health.fatal == EARLY_STOP_WINDOW:
                self._early_stop(Stop("endpoint_rejected", endpoint, health.last_kind))
            if health.unreachable == EARLY_STOP_WINDOW:
                self.unreachable = (endpoint, health.last_reason or "", health.seen)
                self._early_stop(Stop("endpoint_unreachable", endpoint))

    def _check_short_runs(self) -> None:
        for name, health in self._health.items():
            if self.stop is not None or not 0 < health.seen < EARLY_STOP_WINDOW:
                continue
            if health.fatal == health.seen:
                self.stop = Stop("endpoint_rejected", name, health.last_kind)
            elif health.unreachable == health.seen:
                self.stop = Stop("endpoint_unreachable", name)
                self.unreachable = (name, health.last_reason or "", health.seen)

    def _early_stop(self, stop: Stop) -> None:
        """Stop the run; the attempt that decided it is journaled first (see :meth:`run_step`)."""
        self.stop = stop
        self._stopping = True
        self._halt = True


@dataclass
class Judge:
    """The ``llm-rubric`` judge for one attempt: calls the judge endpoint, journals the call
    as phase ``judge`` (recorded, never counted as a pipeline step), and remembers an
    infrastructure failure so the attempt ends as an ``error`` rather than the model's ``fail``."""

    engine: Engine
    case: Case
    step: StepPlan
    context: Mapping[str, Any]
    error: tuple[str, str] | None = None
    calls: list[dict[str, Any]] | None = None  # each call's request and reply, for the detail sidecar

    async def __call__(self, endpoint_name: str, messages: Sequence[Mapping[str, str]]) -> str:
        ctx, engine = self.context, self.engine
        key = AttemptKey(self.case.id, ctx["trial"], f"{self.step.id}:judge", ctx["attempt"])
        request = Request(key, messages, {}, ctx, self.step.timeout_s, engine.seed, "judge")
        call = await engine.call(endpoint_name, request)
        ok = call.response is not None
        attempt = Attempt.of_call(
            AttemptKey(self.case.id, ctx["trial"], self.step.id, ctx["attempt"]),
            "judge",
            call,
            "pass" if ok else "error",
            call.error_kind,
            call.reason,
        )
        engine.journal.write({**attempt.line(), "endpoint": endpoint_name})
        if self.calls is not None:
            self.calls.append(judge_detail(endpoint_name, messages, call))
        if call.response is None:
            self.error = (str(call.error_kind), f"llm-rubric judge: {call.reason}")
            raise RuntimeError(f"judge endpoint {endpoint_name}: {call.error_kind}: {call.reason}")
        return call.response.text


def judge_detail(endpoint_name: str, messages: Sequence[Mapping[str, str]], call: Call) -> dict[str, Any]:
    """One judge call for ``requests.jsonl``: the rendered request (and, for an HTTP endpoint,
    the body as sent, without headers), the reply or the error, latency, tokens, cost."""
    response = call.response
    entry: dict[str, Any] = {
        "endpoint": endpoint_name,
        "request": {"messages": [dict(m) for m in messages]},
        "outcome": "pass" if response is not None else "error",
        "output": response.text if response is not None else None,
    }
    if call.sent is not None:
        entry["sent"] = call.sent
    if response is None:
        entry.update(error_kind=call.error_kind, reason=call.reason)
    entry["latency_ms"] = None if call.cached else call.latency_ms
    if call.cached:
        entry["cached"] = True
    if response is not None and (response.tokens_in is not None or response.tokens_out is not None):
        entry.update(tokens_in=response.tokens_in, tokens_out=response.tokens_out)
    if call.cost_usd is not None:
        entry["cost_usd"] = call.cost_usd
    return entry


def step_context(output: Any, response: Response | None) -> dict[str, Any]:
    """``steps.<id>.json`` (an MCP result's structuredContent, else a structured output) and
    ``steps.<id>.tool_calls`` (a list of ``{name, arguments}``)."""
    extra = response.extra if response is not None else {}
    value = extra["json"] if "json" in extra else output if isinstance(output, (dict, list)) else None
    calls = [{"name": c.name, "arguments": c.arguments} for c in response.tool_calls] if response is not None else []
    return {"json": value, "tool_calls": calls}


def units_of(cases: Iterable[Case], trials: int) -> Iterable[Unit]:
    for case in cases:
        for trial in range(1, trials + 1):
            yield Unit(case, trial)
