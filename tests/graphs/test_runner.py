"""Graph pipelines: attempts, retries from the checkpoint, loops, branches, final, errors."""

from __future__ import annotations

import sys
from pathlib import Path

from .helpers import CASES, COUNTING, LOOP, LOOP_PIPELINE, attempts, project, run, step, units

# a → b → c; b answers wrong on its first attempt for odd cases (the attempt is in the config)
LINEAR = (
    COUNTING
    + """
class S(TypedDict, total=False):
    x: int
    a: str
    b: str
    c: str

def a(s, config):
    bump("a", config)
    return {"a": f"a{s['x']}"}

def b(s, config):
    c = bump("b", config)
    wrong = s["x"] % 2 == 1 and c["attempt"] == 1
    return {"b": "wrong" if wrong else s["a"] + "b"}

def c(s, config):
    bump("c", config)
    return {"c": s["b"] + "c"}

def build():
    g = StateGraph(S)
    for name, fn in (("a", a), ("b", b), ("c", c)):
        g.add_node(name, fn)
    g.add_edge(START, "a"); g.add_edge("a", "b"); g.add_edge("b", "c"); g.add_edge("c", END)
    return g.compile()
"""
)

LINEAR_PIPELINE = """
version: 1
name: linear
evalset: cases.jsonl
graph: {{type: langgraph, target: "{module}:build", input: {{x: "{{{{ vars.x }}}}"}}}}
defaults: {{retry: {{max_attempts: {attempts}, backoff: {{initial_s: 0}}}}}}
steps:
  - id: a
    output: "{{{{ update.a }}}}"
    checks: [{{type: starts-with, value: "a"}}]
  - id: judged_b
    node: b
    output: "{{{{ update.b }}}}"
    checks: [{{type: equals, value: "a{{{{ vars.x }}}}b"}}]
final:
  output: "{{{{ state.c }}}}"
  checks: [{{type: regex, value: "bc$"}}]
"""


def _linear(tmp_path: Path, module: str, max_attempts: int) -> Path:
    return project(
        tmp_path / "p", LINEAR, LINEAR_PIPELINE.format(module=module, attempts=max_attempts), CASES, name=module
    )


def test_retry_reruns_only_the_failed_node_and_what_follows(tmp_path: Path) -> None:
    path = _linear(tmp_path, "g_linear_retry", 2)
    results, lines = run(path, tmp_path / "out")
    calls = sys.modules["g_linear_retry"].CALLS
    for i in range(4):
        odd = i % 2 == 1
        # upstream `a` ran once; `b` twice where its first try failed; `c` once after the pass
        assert (calls[(f"c{i}", "a")], calls[(f"c{i}", "b")], calls[(f"c{i}", "c")]) == (1, 2 if odd else 1, 1)
    b_lines = [r for r in attempts(lines) if r["step"] == "judged_b" and r["case"] == "c1"]
    assert [(r["attempt"], r["outcome"]) for r in b_lines] == [(1, "fail"), (2, "pass")]
    assert "equals" in b_lines[0]["reason"]
    s = step(results, "judged_b")
    assert (s["reached"], s["passed"], s["first_try_rate"], s["retried"], s["recovery_rate"]) == (4, 4, 0.5, 2, 1.0)
    assert results["end_to_end"]["passed"] == 4
    assert step(results, "final")["passed"] == 4
    assert units(lines)["c1"]["executed"] == {"a": 1, "b": 2, "c": 1}


def test_chained_stop_at_a_node_that_failed_without_retry(tmp_path: Path) -> None:
    path = _linear(tmp_path, "g_linear_stop", 1)
    results, lines = run(path, tmp_path / "out")
    calls = sys.modules["g_linear_stop"].CALLS
    assert calls[("c1", "c")] == 0 and calls[("c0", "c")] == 1  # the graph stopped at b for c1
    unit = units(lines)["c1"]
    assert (unit["passed"], unit["failed_step"], unit["outcome"]) == (False, "judged_b", "fail")
    assert step(results, "final")["reached"] == 2  # final is judged only where the graph ended
    assert results["end_to_end"]["passed"] == 2


def test_what_if_and_retries_override_apply_to_nodes(tmp_path: Path) -> None:
    path = _linear(tmp_path, "g_linear_whatif", 1)
    results, _ = run(path, tmp_path / "out", retries=1)
    assert step(results, "judged_b")["max_attempts"] == 2
    assert step(results, "final")["max_attempts"] == 1  # a state has nothing to retry
    assert results["end_to_end"]["passed"] == 4


# agent ⇄ tools, three agent visits; on case c1 the second visit fails its first try
def test_loop_visits_and_branch_reach(tmp_path: Path) -> None:
    path = project(tmp_path / "p", LOOP, LOOP_PIPELINE.format(module="g_loop"), CASES, name="g_loop")
    results, lines = run(path, tmp_path / "out")
    calls = sys.modules["g_loop"].CALLS
    # c1: the second agent visit was retried alone; the first visit and the tools ran as often as elsewhere
    assert calls[("c1", "agent")] == 4 and calls[("c0", "agent")] == 3
    assert calls[("c1", "tools")] == calls[("c0", "tools")] == 2
    c1 = [
        (r["visit"], r["attempt"], r["outcome"]) for r in attempts(lines) if r["case"] == "c1" and r["step"] == "agent"
    ]
    assert c1 == [(1, 1, "pass"), (2, 1, "fail"), (2, 2, "pass"), (3, 1, "pass")]
    agent = step(results, "agent")
    assert (agent["reached"], agent["passed"], agent["attempts"]) == (4, 4, 13)
    assert agent["visits"] == {"total": 12, "per_unit": 3.0}
    assert (agent["retried"], agent["retry_recovered"]) == (1, 1)
    left, right = step(results, "left"), step(results, "right")
    assert (left["reached"], right["reached"]) == (2, 2)  # each branch ran on half the units
    assert left["reach_share"] == right["reach_share"] == 0.5
    assert results["end_to_end"]["passed"] == 4


RAISES = (
    COUNTING
    + """
class S(TypedDict, total=False):
    x: int
    out: str

class Flaky(RuntimeError):
    pass

def first(s, config):
    c = bump("first", config)
    if c["case"] != "c0" and c["attempt"] == 1:
        raise Flaky("the model timed out")
    return {"out": "ok"}

def second(s, config):
    c = bump("second", config)
    if c["case"] == "c3":
        raise KeyError("boom")
    return {}

def build():
    g = StateGraph(S)
    g.add_node("first", first); g.add_node("second", second)
    g.add_edge(START, "first"); g.add_edge("first", "second"); g.add_edge("second", END)
    return g
"""
)

RAISES_PIPELINE = """
version: 1
name: raises
evalset: cases.jsonl
graph: {{type: langgraph, target: "{module}:build"}}
steps:
  - id: first
    retry: {{max_attempts: {attempts}, on: [error], backoff: {{initial_s: 0}}}}
    checks: [{{type: contains, value: "ok"}}]
"""


def test_a_node_that_raises_is_a_node_error_and_is_retried(tmp_path: Path) -> None:
    path = project(
        tmp_path / "p", RAISES, RAISES_PIPELINE.format(module="g_raises1", attempts=1), CASES, name="g_raises1"
    )
    results, lines = run(path, tmp_path / "out")
    first = step(results, "first")
    assert (first["reached"], first["passed"], first["errors"]) == (4, 1, 3)
    assert first["error_kinds"] == {"node_error": 3}
    errors = [r for r in attempts(lines) if r["outcome"] == "error"]
    assert all(r["reason"] == "Flaky: the model timed out" for r in errors)
    assert units(lines)["c1"]["error_kind"] == "node_error"

    path = project(
        tmp_path / "q", RAISES, RAISES_PIPELINE.format(module="g_raises2", attempts=2), CASES, name="g_raises2"
    )
    results, lines = run(path, tmp_path / "out2")
    first = step(results, "first")
    assert (first["passed"], first["retry_recovered"], first["recovery_rate"]) == (4, 3, 1.0)
    # an unjudged node that raises ends its unit as an error, named after the node
    c3 = units(lines)["c3"]
    assert (c3["passed"], c3["failed_step"], c3["outcome"], c3["error_kind"]) == (
        False,
        "second",
        "error",
        "node_error",
    )
    assert results["end_to_end"]["passed"] == 3


RECURSION = (
    COUNTING
    + """
class S(TypedDict, total=False):
    n: int

def agent(s, config):
    bump("agent", config)
    return {"n": s.get("n", 0) + 1}

def tools(s, config):
    bump("tools", config)
    return {}

def build():
    g = StateGraph(S)
    g.add_node("agent", agent); g.add_node("tools", tools)
    g.add_edge(START, "agent"); g.add_edge("agent", "tools"); g.add_edge("tools", "agent")
    return g
"""
)

RECURSION_PIPELINE = """
version: 1
name: forever
evalset: cases.jsonl
graph: {{type: langgraph, target: "{module}:build", recursion_limit: {limit}}}
steps:
  - id: agent
    checks: [{{type: contains, value: "n"}}]
"""


def test_a_graph_that_loops_forever_hits_its_recursion_limit(tmp_path: Path) -> None:
    import asyncio

    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.errors import GraphRecursionError

    for limit in (5, 6):
        name = f"g_forever{limit}"
        path = project(
            tmp_path / name, RECURSION, RECURSION_PIPELINE.format(module=name, limit=limit), CASES[:1], name=name
        )
        results, lines = run(path, tmp_path / f"out{limit}")
        module = sys.modules[name]
        judged_runs = dict(module.CALLS)
        module.CALLS.clear()
        graph = module.build().compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "t", "case": "c0"}, "recursion_limit": limit}
        try:
            asyncio.run(graph.ainvoke({}, config))
        except GraphRecursionError:
            pass
        # judging after every agent visit runs exactly the supersteps an uninterrupted run does
        assert judged_runs == dict(module.CALLS)
        unit = units(lines)["c0"]
        agent = step(results, "agent")
        runs = module.CALLS[("c0", "agent")]
        if limit == 5:  # the limit fell before the unjudged tools node: the unit's error, named after it
            assert (unit["failed_step"], unit["outcome"], unit["error_kind"]) == ("tools", "error", "recursion_limit")
            assert agent["error_kinds"] == {} and agent["visits"]["total"] == runs
        else:  # before the judged agent: an attempt of it, on the visit it never got to run
            assert (unit["failed_step"], unit["outcome"], unit["error_kind"]) == ("agent", "error", "recursion_limit")
            assert agent["error_kinds"] == {"recursion_limit": 1} and agent["visits"]["total"] == runs + 1


ISOLATE = (
    COUNTING
    + """
class S(TypedDict, total=False):
    x: int
    plan: str
    reply: str

def plan(s, config):
    bump("plan", config)
    return {"plan": "garbage" if s["x"] == 1 else f"plan{s['x']}"}

def tool(s, config):
    bump("tool", config)
    return {}

def reply(s, config):
    bump("reply", config)
    return {"reply": "reply to " + s["plan"]}

def build():
    g = StateGraph(S)
    g.add_node("plan", plan); g.add_node("tool", tool); g.add_node("reply", reply)
    g.add_edge(START, "plan"); g.add_edge("plan", "tool"); g.add_edge("tool", "reply"); g.add_edge("reply", END)
    return g
"""
)

ISOLATE_PIPELINE = """
version: 1
name: isolate
evalset: cases.jsonl
graph: {{type: langgraph, target: "{module}:build", input: {{x: "{{{{ vars.x }}}}"}}}}
steps:
  - id: plan
    output: "{{{{ update.plan }}}}"
    checks: [{{type: equals, value: "plan{{{{ vars.x }}}}"}}]
  - id: reply
    output: "{{{{ update.reply }}}}"
    checks: [{{type: equals, value: "reply to plan{{{{ vars.x }}}}"}}]
final:
  output: "{{{{ state.reply }}}}"
  checks: [{{type: starts-with, value: "reply to plan"}}]
"""


def test_isolate_forks_with_gold_upstream_updates(tmp_path: Path) -> None:
    cases = [
        {"id": "c0", "vars": {"x": 0}, "expect": {"plan": {"plan": "plan0"}, "reply": {"reply": "reply to plan0"}}},
        {"id": "c1", "vars": {"x": 1}, "expect": {"plan": {"plan": "plan1"}}},
        {"id": "c2", "vars": {"x": 2}, "expect": {}},
    ]
    path = project(tmp_path / "p", ISOLATE, ISOLATE_PIPELINE.format(module="g_isolate"), cases, name="g_isolate")
    results, lines = run(path, tmp_path / "out", isolate=True)
    calls = sys.modules["g_isolate"].CALLS
    unit = units(lines)
    # chained: c1's plan is garbage, so its reply is never reached
    assert unit["c1"]["failed_step"] == "plan" and not any(s["step"] == "reply" for s in unit["c1"]["steps"])
    # isolated: reply runs on the gold plan; plan itself is not executed for it (gold written
    # with update_state as_node=plan), the unjudged tool node runs
    iso = {s["step"]: s for s in unit["c1"]["isolated"]}
    assert iso["reply"]["final"] == "pass"
    # (tool ran in reply's isolated thread and in final's, which stops before reply: no gold)
    assert (calls[("c1", "plan")], calls[("c1", "tool")], calls[("c1", "reply")]) == (2, 2, 1)
    assert {s["step"]: s["final"] for s in unit["c2"]["isolated"]} == {
        "plan": "pass",
        "reply": "skipped",
        "final": "skipped",
    }
    # final, isolated: on the state every judged node's gold leads to (only c0 has gold for reply)
    assert {s["step"]: s["final"] for s in unit["c0"]["isolated"]}["final"] == "pass"
    assert unit["c1"]["isolated"][-1] == {"step": "final", "final": "skipped", "reason": "no gold for reply"}
    assert calls[("c0", "reply")] == 2  # chained, and isolated for itself: never for final
    assert abs(results["end_to_end"]["independence_prediction"] - 2 / 3) < 1e-12  # plan 2/3, reply, final 1
    assert unit["c2"]["isolated"][1]["reason"] == "no gold for plan"
    reply = step(results, "reply")["isolated"]
    assert (reply["reached"], reply["passed"], reply["skipped_no_gold"]) == (2, 2, 1)
    assert step(results, "reply")["reached"] == 2  # chained


def test_trials_and_shards_merge_to_the_unsharded_run(tmp_path: Path) -> None:
    from reliability_cli.results.merge import merge

    cases = [{"id": f"c{i}", "vars": {"x": i}, "expect": {}} for i in range(12)]
    path = project(tmp_path / "p", LOOP, LOOP_PIPELINE.format(module="g_loop_shards"), cases, name="g_loop_shards")
    whole, lines = run(path, tmp_path / "whole", trials=2)
    assert whole["end_to_end"]["total"] == 24 and len(units(lines)) == 12  # (case → last trial)
    parts = [run(path, tmp_path / f"s{i}", trials=2, shard=(i, 2))[0] for i in (1, 2)]
    assert sum(p["end_to_end"]["total"] for p in parts) == 24
    merged = merge([tmp_path / "s1", tmp_path / "s2"]).to_dict()
    for key in ("passed", "total", "rate", "ci"):
        assert merged["end_to_end"][key] == whole["end_to_end"][key]
    for got, want in zip(merged["steps"], whole["steps"]):
        for key in ("reached", "passed", "attempts", "reach_share", "visits", "survivors"):
            assert got[key] == want[key], (got["id"], key)


PAUSES = """
from typing import TypedDict
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

class S(TypedDict, total=False):
    answer: str

def ask(s, config):
    return {"answer": interrupt("approve?")}

def build():
    g = StateGraph(S)
    g.add_node("ask", ask)
    g.add_edge(START, "ask"); g.add_edge("ask", END)
    return g
"""


def test_a_graph_that_waits_for_a_human_ends_the_unit_instead_of_spinning(tmp_path: Path) -> None:
    pipeline = (
        'version: 1\nname: pauses\nevalset: cases.jsonl\ngraph: {type: langgraph, target: "g_pauses:build"}\n'
        'steps:\n  - id: ask\n    checks: [{type: contains, value: "yes"}]\n'
    )
    path = project(tmp_path / "p", PAUSES, pipeline, CASES[:2], name="g_pauses")
    results, lines = run(path, tmp_path / "out")
    tried = attempts(lines)
    assert [(r["outcome"], r["error_kind"]) for r in tried] == [("error", "node_error")] * 2
    assert "human-in-the-loop" in tried[0]["reason"]
    assert results["end_to_end"]["passed"] == 0


def test_attempt_lines_are_the_engines_plus_visit(tmp_path: Path) -> None:
    import dataclasses

    from reliability_cli.runner.engine import Attempt

    path = _linear(tmp_path, "g_linear_lines", 2)
    _, lines = run(path, tmp_path / "out")
    keys = [f.name for f in dataclasses.fields(Attempt) if f.name in Attempt.JOURNALED and f.name != "cached"]
    for line in attempts(lines):
        assert list(line)[: len(keys)] == keys and set(line) - set(keys) <= {"visit", "cached"}
