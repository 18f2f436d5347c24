"""Run one unit through a LangGraph graph, judging the nodes the pipeline's steps name.

Each unit runs in a fresh thread of the graph's checkpointer (relcheck supplies an
in-memory one when the graph was compiled without), with the unit's identity (``case``,
``trial``, ``seed``, and ``attempt``) in the run config's ``configurable``. The graph is
streamed with ``interrupt_after`` the judged nodes, so after each superstep that ran a judged
node relcheck judges that node's update; a failed execution is retried by resuming from the
checkpoint taken just before it (LangGraph's own history: upstream nodes never run again).
``--isolate`` runs each judged node in its own thread with the gold updates of the judged
nodes before it written by ``update_state(..., as_node=...)`` in their place.

The attempt lines and ``unit_done`` records are those of the pipeline engine, plus
``visit`` on attempt lines and ``visits`` on step records (a node in a tool loop runs, and
is judged, several times in one unit; it passes for the unit when every visit passed).
"""

from __future__ import annotations

import asyncio
import difflib
import importlib
import json
import secrets
import sys
import time
import traceback
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.graph import FINAL_ID
from ..endpoints import Response
from ..errors import ConfigError, Location, UsageError
from ..records import ToolCall, is_retryable_error
from ..templating import RenderError, compile_value, render_value
from ..textfmt import one_line, truncate
from . import INSTALL

if TYPE_CHECKING:
    from ..config import Case, Pipeline, StepPlan

OUTPUT_LIMIT = 2048
_START = "__start__"


@dataclass
class LoadedGraph:
    """The user's compiled graph, ready for one thread per unit."""

    graph: Any
    nodes: tuple[str, ...]
    owns_checkpointer: bool  # relcheck supplied it: threads are deleted when their unit is done


# ---------------------------------------------------------------- loading


def load_graph(pipeline: Pipeline) -> LoadedGraph:
    """Import ``graph.target`` and compile it with a checkpointer when it has none.

    The pipeline's folder is put first on ``sys.path`` while importing, so a graph module
    beside the pipeline file imports by its name.
    """
    try:
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.graph import StateGraph
        from langgraph.pregel import Pregel
    except ImportError:
        raise UsageError(
            "this pipeline has a graph: section, which needs the langgraph package", hint=INSTALL
        ) from None
    config = pipeline.model.graph
    assert config is not None
    where = pipeline.positions.locate(("graph", "target"))
    obj = _import_target(config.target, pipeline.path.parent, where)
    if callable(obj) and not isinstance(obj, (StateGraph, Pregel)):
        try:
            obj = obj()
        except Exception as exc:
            raise _import_error(config.target, exc, where, f"calling {config.target}() raised") from None
    if isinstance(obj, StateGraph):
        obj = obj.compile(checkpointer=InMemorySaver())
        return LoadedGraph(obj, _nodes(obj), True)
    if not isinstance(obj, Pregel):
        raise ConfigError(
            f"graph target '{config.target}' is a {type(obj).__name__}, not a LangGraph graph",
            where,
            hint="name a compiled graph, a StateGraph, or a function returning either",
        )
    if obj.checkpointer in (None, False, True):
        obj = obj.copy(update={"checkpointer": InMemorySaver()})
        return LoadedGraph(obj, _nodes(obj), True)
    return LoadedGraph(obj, _nodes(obj), False)


def _nodes(graph: Any) -> tuple[str, ...]:
    return tuple(n for n in graph.nodes if n != _START)


def _import_target(target: str, folder: Path, where: Location) -> Any:
    module_name, _, attr = target.partition(":")
    added = str(folder.resolve())
    inserted = added not in sys.path
    if inserted:
        sys.path.insert(0, added)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ConfigError(
                f"graph target '{target}': no module named '{exc.name}'",
                where,
                hint=f"the module is imported from sys.path and from {folder}",
            ) from None
        raise _import_error(target, exc, where, f"importing {module_name} failed") from None
    except Exception as exc:
        raise _import_error(target, exc, where, f"importing {module_name} failed") from None
    finally:
        if inserted:
            try:
                sys.path.remove(added)
            except ValueError:
                pass
    if not hasattr(module, attr):
        names = [n for n in dir(module) if not n.startswith("_")]
        close = difflib.get_close_matches(attr, names, n=1)
        raise ConfigError(
            f"graph target '{target}': module '{module_name}' has no '{attr}'"
            + (f" — did you mean '{close[0]}'?" if close else ""),
            where,
        )
    return getattr(module, attr)


def _import_error(target: str, exc: BaseException, where: Location, what: str) -> ConfigError:
    """The error of a target that does not import, located where it failed in the user's code."""
    if isinstance(exc, SyntaxError) and exc.filename:
        loc = Location(exc.filename, exc.lineno, exc.offset)
        detail = f"SyntaxError: {exc.msg}"
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        user = [f for f in frames if "importlib" not in f.filename and "reliability_cli" not in f.filename]
        chosen = user or frames
        loc = Location(chosen[-1].filename, chosen[-1].lineno) if chosen else where
        detail = f"{type(exc).__name__}: {one_line(str(exc))}"
    return ConfigError(
        f"graph target '{target}' does not import: {what}: {detail}", loc, hint=f"graph.target is at {where}"
    )


def check_nodes(pipeline: Pipeline, loaded: LoadedGraph) -> None:
    """Every judged node must exist in the graph (a typo is a did-you-mean, exit 2)."""
    from ..errors import MultipleErrors, RelcheckError

    problems: list[RelcheckError] = []
    for plan in pipeline.steps:
        if plan.node is None or plan.node in loaded.nodes:
            continue
        step = pipeline.model.steps[plan.index]
        key = "node" if step.node is not None else "id"
        close = difflib.get_close_matches(plan.node, loaded.nodes, n=1)
        problems.append(
            ConfigError(
                f"the graph has no node '{plan.node}'" + (f" — did you mean '{close[0]}'?" if close else ""),
                pipeline.positions.locate(("steps", plan.index, key)),
                hint="nodes: " + ", ".join(loaded.nodes),
            )
        )
    if problems:
        raise problems[0] if len(problems) == 1 else MultipleErrors(problems)


# ---------------------------------------------------------------- one unit


@dataclass
class _Visit:
    attempts: int = 0
    first: str | None = None
    final: str = "error"
    error_kind: str | None = None
    reason: str | None = None
    output: str | None = None


@dataclass
class _StepTrack:
    plan: StepPlan
    visits: list[_Visit] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """One step of a unit: passes when every visit passed; ``attempts`` is the most any
        visit took (so ``attempts > 1`` means a retry ran), ``first`` the first try's verdict."""
        failed = next((v for v in self.visits if v.final != "pass"), None)
        first = next((v.first for v in self.visits if v.first != "pass"), "pass")
        last = failed or self.visits[-1]
        return {
            "step": self.plan.id,
            "attempts": max(v.attempts for v in self.visits),
            "first": first or "error",
            "final": last.final,
            "error_kind": last.error_kind,
            "reason": last.reason,
            "output": last.output if last.final != "pass" else None,
            "visits": len(self.visits),
            "attempts_total": sum(v.attempts for v in self.visits),
        }


@dataclass
class _Segment:
    """What one ``astream`` call did: updates in order, and how it ended."""

    updates: list[tuple[str, Any]] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)
    error: tuple[str, str, str] | None = None  # (node, kind, reason)


class GraphRunner:
    """Runs units of a graph pipeline for the runner's ``Engine`` (same journal, same checks:
    ``engine.journal``, ``engine._judge_checks``, ``engine._backoff``, ``seed``, ``isolate``)."""

    def __init__(self, engine: Any, loaded: LoadedGraph) -> None:
        self.engine = engine
        self.loaded = loaded
        self.graph = loaded.graph
        pipeline = engine.pipeline
        assert pipeline.model.graph is not None
        self.config = pipeline.model.graph
        self.input = compile_value(self.config.input)  # its syntax and names were checked at load
        self.judged = {p.node: p for p in pipeline.steps if p.node is not None}
        self.final = next((p for p in pipeline.steps if p.final), None)
        # thread ids are new in every run: a checkpointer of the user's own may persist threads
        self.run_token = secrets.token_hex(4)

    async def run_unit(self, case: Case, trial: int) -> dict[str, Any]:
        """Run the unit (chained, then isolated with ``--isolate``); return its ``unit_done`` record."""
        run = _Run(self, case, trial, "chained", set(self.judged))
        tracks, failure = await run.drive()
        if failure is None and self.final is not None and run.finished:
            track = _StepTrack(self.final)
            track.visits.append(await run.judge_final(self.final))
            tracks.append(track)
            if track.visits[0].final != "pass":
                failure = (FINAL_ID, track.visits[0].final, track.visits[0].error_kind)
        await run.close()
        steps = [t.as_dict() for t in tracks]
        record: dict[str, Any] = {
            "case": case.id,
            "trial": trial,
            "passed": failure is None,
            "failed_step": failure[0] if failure else None,
            "outcome": failure[1] if failure else "pass",
            "error_kind": failure[2] if failure else None,
            "attempts": sum(s["attempts_total"] for s in steps),
            "steps": steps,
            "executed": dict(sorted(run.executed.items())),
        }
        if self.engine.isolate:
            record["isolated"] = await self.run_isolated(case, trial)
        return record

    async def run_isolated(self, case: Case, trial: int) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for node, plan in self.judged.items():
            run = _Run(self, case, trial, "isolated", {node}, gold=set(self.judged) - {node})
            tracks, _ = await run.drive(first_visit_only=True)
            await run.close()
            if run.no_gold is not None:
                results.append({"step": plan.id, "final": "skipped", "reason": f"no gold for {run.no_gold}"})
            elif tracks:
                results.append(tracks[0].as_dict())
        if self.final is not None:  # the final checks on the state every judged node's gold leads to
            run = _Run(self, case, trial, "isolated", set(), gold=set(self.judged))
            await run.drive()
            if run.no_gold is not None:
                results.append({"step": FINAL_ID, "final": "skipped", "reason": f"no gold for {run.no_gold}"})
            elif run.finished:
                track = _StepTrack(self.final)
                track.visits.append(await run.judge_final(self.final))
                results.append(track.as_dict())
            await run.close()
        return results


class _Run:
    """One thread of the graph: the chained run of a unit, or one isolated node."""

    def __init__(
        self, runner: GraphRunner, case: Case, trial: int, phase: str, judge: set[str], gold: set[str] | None = None
    ) -> None:
        self.runner = runner
        self.engine = runner.engine
        self.graph = runner.graph
        self.case = case
        self.trial = trial
        self.phase = phase
        self.judge = judge
        self.gold = gold or set()
        thread = f"relcheck:{runner.run_token}:{case.id}:{trial}:{phase}" + (
            f":{next(iter(judge), FINAL_ID)}" if phase == "isolated" else ""
        )
        self.thread = {"thread_id": thread, "case": case.id, "trial": trial, "seed": self.engine.seed}
        self.limit = runner.config.recursion_limit
        self.executed: Counter[str] = Counter()
        self.gold_used: Counter[str] = Counter()
        self.no_gold: str | None = None
        self.finished = False
        self._latest: Any = None  # the thread's latest state, while nothing has run since it was read

    def _config(self, checkpoint: Mapping[str, Any] | None, attempt: int, limit: int) -> dict[str, Any]:
        configurable = dict(self.thread, attempt=attempt)
        if checkpoint is not None:
            configurable.update(
                {k: v for k, v in checkpoint.get("configurable", {}).items() if k in ("checkpoint_id", "checkpoint_ns")}
            )
        return {"configurable": configurable, "recursion_limit": max(1, limit)}

    async def close(self) -> None:
        if self.runner.loaded.owns_checkpointer:
            await self.graph.checkpointer.adelete_thread(self.thread["thread_id"])

    async def _state(self, checkpoint: Mapping[str, Any] | None = None) -> Any:
        if checkpoint is None and self._latest is not None:
            return self._latest
        state = await self.graph.aget_state(self._config(checkpoint, 1, 1))
        if checkpoint is None:
            self._latest = state
        return state

    async def drive(
        self, first_visit_only: bool = False
    ) -> tuple[list[_StepTrack], tuple[str, str, str | None] | None]:
        """Run the graph to its end or to a chained stop; return the judged steps, in the order
        first run, and the failure that stopped the unit as ``(step, outcome, error_kind)``."""
        tracks: dict[str, _StepTrack] = {}
        retrying: dict[str, int] = {}  # node → the attempt number of its next execution
        graph_input: Any = self._input()
        if isinstance(graph_input, _Failure):
            return [], (graph_input.step, "error", "template")
        resume_from: Mapping[str, Any] | None = None  # a checkpoint config; None: the thread's latest
        start_step = -1
        while True:
            base = await self._state(resume_from) if graph_input is None else None
            step_now = base.metadata.get("step", start_step) if base is not None and base.metadata else start_step
            budget = start_step + self.limit - step_now
            if base is not None and budget < 0 and base.next:
                return self._limit_hit(tracks, base.next, retrying)
            attempt = max((retrying.get(n, 1) for n in (base.next if base is not None else ())), default=1)
            self._latest = None
            seg = await self._segment(graph_input, self._config(resume_from, attempt, budget), budget == 0)
            graph_input, resume_from = None, None
            if seg.error is not None:
                node, kind, reason = seg.error
                if kind == "recursion_limit":
                    state = await self._state()
                    return self._limit_hit(tracks, state.next or (node,), retrying)
                plan = self.runner.judged.get(node) if node in self.judge else None
                if plan is None:
                    return list(tracks.values()), (node, "error", kind)
                visit = self._visit(tracks, plan, retrying)
                rec = self._record(
                    plan, visit, len(tracks[plan.id].visits), "error", kind, reason, seg.latency_ms.get(node, 0.0), None
                )
                self._write(rec)
                if self._should_retry(plan, rec) and visit.attempts < plan.retry.max_attempts:
                    retrying[node] = visit.attempts + 1
                    await asyncio.sleep(self.engine._backoff(plan, self.case.id, self.trial, visit.attempts + 1))
                    continue  # the latest checkpoint is the one before the failed superstep
                return list(tracks.values()), (plan.id, "error", kind)
            state = await self._state()
            judged_now = [(n, u) for n, u in seg.updates if n in self.judge]
            if not judged_now:
                pending = [n for n in state.next if n in self.gold]
                if pending:
                    if not await self._apply_gold(pending[0]):
                        return list(tracks.values()), None
                    continue
                if not state.next:
                    self.finished = True
                    return list(tracks.values()), None
                if budget == 0:
                    continue  # the budget's last superstep ran: the next segment hits the limit
                # a pause nobody here asked for: an interrupt() in a node, or the graph's own
                # interrupt_before/after; resuming would only pause again
                return self._stopped(
                    tracks,
                    state.next,
                    retrying,
                    "node_error",
                    f"the graph paused before {', '.join(state.next)} (an interrupt): "
                    "relcheck does not answer human-in-the-loop interrupts",
                )
            retry_superstep = False
            failure: tuple[str, str, str | None] | None = None
            for node, update in judged_now:
                plan = self.runner.judged[node]
                visit = self._visit(tracks, plan, retrying)
                rec = await self._judge(
                    plan, visit, len(tracks[plan.id].visits), update, state.values, seg.latency_ms.get(node, 0.0)
                )
                if rec["outcome"] == "pass":
                    retrying.pop(node, None)
                elif self._should_retry(plan, rec) and visit.attempts < plan.retry.max_attempts:
                    retry_superstep = True
                elif failure is None:
                    failure = (plan.id, rec["outcome"], rec["error_kind"])
            if failure is not None:
                return list(tracks.values()), failure
            if retry_superstep:
                # every judged node of the superstep runs again: each run is its next attempt
                for node, _ in judged_now:
                    visit = tracks[self.runner.judged[node].id].visits[-1]
                    retrying[node] = visit.attempts + 1
                first = self.runner.judged[judged_now[0][0]]
                await asyncio.sleep(self.engine._backoff(first, self.case.id, self.trial, retrying[judged_now[0][0]]))
                resume_from = state.parent_config
                continue
            if first_visit_only:
                return list(tracks.values()), None

    def _input(self) -> Any:
        context = {"vars": self.case.vars, "expect": self.case.expect}
        try:
            return render_value(self.runner.input, context)
        except RenderError as exc:
            return _Failure("graph.input", str(exc))

    async def _apply_gold(self, node: str) -> bool:
        """Write the gold update of a judged upstream node in its place (``--isolate``)."""
        plan = self.runner.judged[node]
        gold = self.case.expect.get(plan.id)
        index = self.gold_used[node]
        if isinstance(gold, list):  # one gold update per visit (a node in a loop)
            gold = gold[index] if index < len(gold) else None
        if gold is None:
            self.no_gold = plan.id
            return False
        self.gold_used[node] += 1
        self._latest = None
        await self.graph.aupdate_state(self._config(None, 1, 1), gold, as_node=node)
        return True

    def _visit(self, tracks: dict[str, _StepTrack], plan: StepPlan, retrying: Mapping[str, int]) -> _Visit:
        track = tracks.setdefault(plan.id, _StepTrack(plan))
        if plan.node not in retrying or not track.visits:
            track.visits.append(_Visit())
        return track.visits[-1]

    def _limit_hit(
        self, tracks: dict[str, _StepTrack], nxt: Sequence[str], retrying: dict[str, int]
    ) -> tuple[list[_StepTrack], tuple[str, str, str | None]]:
        reason = f"the graph hit its recursion limit of {self.limit} supersteps before running {', '.join(nxt)}"
        return self._stopped(tracks, nxt, retrying, "recursion_limit", reason)

    def _stopped(
        self, tracks: dict[str, _StepTrack], nxt: Sequence[str], retrying: dict[str, int], kind: str, reason: str
    ) -> tuple[list[_StepTrack], tuple[str, str, str | None]]:
        """The graph cannot go on: an error attempt of the judged node due next, else the unit's
        error named after the node."""
        node = next((n for n in nxt if n in self.judge), None)
        if node is None:
            return list(tracks.values()), (nxt[0] if nxt else "graph", "error", kind)
        plan = self.runner.judged[node]
        retrying.pop(node, None)
        visit = self._visit(tracks, plan, retrying)
        self._write(self._record(plan, visit, len(tracks[plan.id].visits), "error", kind, reason, 0.0, None))
        return list(tracks.values()), (plan.id, "error", kind)

    def _should_retry(self, plan: StepPlan, record: Mapping[str, Any]) -> bool:
        if record["outcome"] == "fail":
            return "fail" in plan.retry.on
        kind = record["error_kind"]
        return "error" in plan.retry.on and (kind == "node_error" or is_retryable_error(kind))

    async def _segment(self, graph_input: Any, config: dict[str, Any], last_superstep: bool) -> _Segment:
        """Stream the graph until it pauses after a judged node, before a gold node, or ends."""
        from langgraph.errors import GraphRecursionError

        seg = _Segment()
        started: dict[str, float] = {}
        interrupt_after: Any = "*" if last_superstep else sorted(self.judge)
        timeout = max((p.timeout_s for p in self.runner.judged.values()), default=30.0)

        async def consume() -> None:
            async for mode, chunk in self.graph.astream(
                graph_input,
                config,
                stream_mode=["updates", "tasks"],
                interrupt_after=interrupt_after,
                interrupt_before=sorted(self.gold) or None,
            ):
                if mode == "tasks":
                    name = chunk.get("name")
                    if "result" not in chunk and "error" not in chunk:
                        started[name] = time.perf_counter()
                        continue
                    self.executed[name] += 1
                    begun = started.pop(name, None)
                    if begun is not None:
                        seg.latency_ms[name] = round((time.perf_counter() - begun) * 1000, 3)
                    error = chunk.get("error")
                    if error is not None and seg.error is None:
                        seg.error = (name, "node_error", one_line(f"{type(error).__name__}: {error}"))
                elif isinstance(chunk, Mapping):
                    seg.updates.extend((n, u) for n, u in chunk.items() if n != "__interrupt__")

        try:
            await asyncio.wait_for(consume(), timeout)
        except GraphRecursionError as exc:
            seg.error = ("graph", "recursion_limit", one_line(str(exc)))
        except asyncio.TimeoutError:
            node = next(iter(started), "graph")
            seg.error = (node, "timeout", f"node {node} did not finish within {timeout:g} s")
            seg.latency_ms[node] = timeout * 1000
        except Exception as exc:  # a node raised (recorded from its task), or the graph itself did
            if seg.error is None:
                node = next(iter(started), "graph")
                seg.error = (node, "node_error", one_line(f"{type(exc).__name__}: {exc}"))
        return seg

    async def _judge(
        self, plan: StepPlan, visit: _Visit, visit_no: int, update: Any, state: Any, latency_ms: float
    ) -> dict[str, Any]:
        context = self._context(plan, visit.attempts + 1, {"update": update, "state": state})
        text = _to_json(update)
        rec = self._record(plan, visit, visit_no, "error", None, None, latency_ms, text)
        rec["tokens_in"], rec["tokens_out"] = _usage(update)
        await self._check(plan, context, update, text, rec)
        self._write(rec)
        return rec

    async def judge_final(self, plan: StepPlan) -> _Visit:
        state = (await self._state()).values
        context = self._context(plan, 1, {"state": state})
        visit = _Visit()
        rec = self._record(plan, visit, 1, "error", None, None, 0.0, _to_json(state))
        await self._check(plan, context, state, rec["output"] or "", rec)
        rec.pop("visit", None)
        self._write(rec)
        return visit

    async def _check(
        self, plan: StepPlan, context: dict[str, Any], native: Any, text: str, rec: dict[str, Any]
    ) -> None:
        output: Any = text
        if plan.output is not None:
            try:
                output = plan.output.value(context)
            except RenderError as exc:
                rec.update(outcome="error", error_kind="template", reason=f"output: {exc}")
                return
            text = output if isinstance(output, str) else _to_json(output)
        rec["output"] = _excerpt(text, OUTPUT_LIMIT)
        call = _Call(Response(text, output=output, tool_calls=_tool_calls(native)), rec["latency_ms"])
        outcome, kind, reason = await self.engine._judge_checks(plan, self.case, context, call, output, text)
        rec.update(outcome=outcome, error_kind=kind, reason=reason)

    def _context(self, plan: StepPlan, attempt: int, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "vars": self.case.vars,
            "expect": self.case.expect,
            "case": {"id": self.case.id, "tags": list(self.case.tags)},
            "step": {"id": plan.id},
            "trial": self.trial,
            "attempt": attempt,
            **extra,
        }

    def _record(
        self,
        plan: StepPlan,
        visit: _Visit,
        visit_no: int,
        outcome: str,
        kind: str | None,
        reason: str | None,
        latency_ms: float,
        text: str | None,
    ) -> dict[str, Any]:
        """An attempt line: the keys of the engine's ``Attempt`` (tests hold them equal), then ``visit``."""
        visit.attempts += 1
        return {
            "case": self.case.id,
            "trial": self.trial,
            "step": plan.id,
            "attempt": visit.attempts,
            "phase": self.phase,
            "outcome": outcome,
            "error_kind": kind,
            "reason": reason,
            "latency_ms": latency_ms,
            "tokens_in": None,
            "tokens_out": None,
            "cost_usd": None,
            "throttled": 0,
            "output": _excerpt(text, OUTPUT_LIMIT) if text is not None else None,
            "visit": visit_no,
            "_visit": visit,
        }

    def _write(self, rec: dict[str, Any]) -> None:
        visit: _Visit = rec.pop("_visit")
        visit.first = visit.first or rec["outcome"]
        visit.final, visit.error_kind, visit.reason = rec["outcome"], rec["error_kind"], rec["reason"]
        visit.output = _excerpt(rec.get("output"), 200) if rec["outcome"] != "pass" else None
        self.engine.journal.write(rec)


@dataclass(frozen=True)
class _Call:
    """What the engine's check runner reads of a call (``response``, ``latency_ms``): the
    node's update stands for the response."""

    response: Response
    latency_ms: float


@dataclass
class _Failure:
    step: str
    reason: str


def _to_json(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=_plain)
    except (TypeError, ValueError):
        return str(value)


def _plain(value: Any) -> Any:
    """LangChain messages and pydantic states as JSON: their own dump, else their text."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json", exclude_none=True)
        except Exception:
            pass
    return str(value)


def _messages(update: Any) -> list[Any]:
    if isinstance(update, Mapping):
        found = update.get("messages")
        if isinstance(found, list):
            return found
        if found is not None:
            return [found]
    return []


def _tool_calls(update: Any) -> tuple[ToolCall, ...]:
    """The tool calls of the update's last AI message (for ``tool-call`` checks)."""
    for message in reversed(_messages(update)):
        calls = getattr(message, "tool_calls", None)
        if calls is None and isinstance(message, Mapping):
            calls = message.get("tool_calls")
        if calls:
            return tuple(
                ToolCall(str(c.get("name")), c.get("args", c.get("arguments"))) for c in calls if isinstance(c, Mapping)
            )
    return ()


def _usage(update: Any) -> tuple[int | None, int | None]:
    tokens_in = tokens_out = None
    for message in _messages(update):
        usage = getattr(message, "usage_metadata", None)
        if isinstance(usage, Mapping):
            tokens_in = (tokens_in or 0) + int(usage.get("input_tokens") or 0)
            tokens_out = (tokens_out or 0) + int(usage.get("output_tokens") or 0)
    return tokens_in, tokens_out


def _excerpt(text: str | None, limit: int) -> str | None:
    return None if text is None else truncate(text, limit)
