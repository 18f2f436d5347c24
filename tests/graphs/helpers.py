"""Small LangGraph graphs written into a temporary folder beside their pipeline file."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from reliability_cli.runner import RunOptions, run_eval
from tests.helpers import journal_text


def project(root: Path, module: str, pipeline: str, cases: list[dict[str, Any]], name: str = "g") -> Path:
    """Write ``{name}.py``, ``pipeline.yaml`` and ``cases.jsonl``; return the pipeline's path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.py").write_text(textwrap.dedent(module), encoding="utf-8")
    (root / "pipeline.yaml").write_text(textwrap.dedent(pipeline), encoding="utf-8")
    with open(root / "cases.jsonl", "w", encoding="utf-8") as fh:
        for case in cases:
            fh.write(json.dumps(case) + "\n")
    return root / "pipeline.yaml"


def run(path: Path, out: Path, **options: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run in-process; return results.json and the journal's lines."""
    outcome = run_eval(str(path), RunOptions(out=str(out), **options))
    assert outcome.results.to_dict() == json.loads((out / "results.json").read_text(encoding="utf-8"))
    lines = [json.loads(line) for line in journal_text(out / "attempts.jsonl").splitlines()]
    return outcome.results.to_dict(), lines


def attempts(lines: list[dict[str, Any]], phase: str = "chained") -> list[dict[str, Any]]:
    return [r for r in lines if "step" in r and "unit_done" not in r and r.get("phase") == phase]


def units(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["unit_done"]["case"]: r["unit_done"] for r in lines if "unit_done" in r}


def step(results: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in results["steps"] if s["id"] == step_id)


#: A module-level counter every node bumps: tests read it to count node executions.
COUNTING = """
from collections import Counter
from typing import Annotated, TypedDict
import operator
from langgraph.graph import StateGraph, START, END

CALLS = Counter()

def bump(name, config):
    c = config["configurable"]
    CALLS[(c["case"], name)] += 1
    return c
"""


CASES = [{"id": f"c{i}", "vars": {"x": i}, "expect": {}} for i in range(4)]


#: agent ⇄ tools, three agent visits; on case c1 the second visit fails its first try
LOOP = (
    COUNTING
    + """
class S(TypedDict, total=False):
    n: int
    log: Annotated[list, operator.add]
    x: int
    branch: str

def agent(s, config):
    c = bump("agent", config)
    visit = len([e for e in s.get("log", []) if e.startswith("agent")])
    bad = c["case"] == "c1" and visit == 1 and c["attempt"] == 1
    return {"log": ["agent-bad" if bad else f"agent{visit}"]}

def tools(s, config):
    bump("tools", config)
    return {"log": ["tool"]}

def left(s, config):
    bump("left", config)
    return {"branch": "left"}

def right(s, config):
    bump("right", config)
    return {"branch": "right"}

def after_agent(s):
    return "tools" if sum(1 for e in s["log"] if e.startswith("agent")) < 3 else "split"

def build():
    g = StateGraph(S)
    g.add_node("agent", agent); g.add_node("tools", tools)
    g.add_node("split", lambda s: {}); g.add_node("left", left); g.add_node("right", right)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", after_agent, ["tools", "split"])
    g.add_edge("tools", "agent")
    g.add_conditional_edges("split", lambda s: "left" if s["x"] % 2 == 0 else "right", ["left", "right"])
    g.add_edge("left", END); g.add_edge("right", END)
    return g
"""
)


LOOP_PIPELINE = """
version: 1
name: loop
evalset: cases.jsonl
graph: {{type: langgraph, target: "{module}:build", input: {{x: "{{{{ vars.x }}}}", log: []}}}}
defaults: {{retry: {{max_attempts: 2, backoff: {{initial_s: 0}}}}}}
steps:
  - id: agent
    output: "{{{{ update.log[0] }}}}"
    checks: [{{type: not-contains, value: "bad"}}]
  - id: left
    checks: [{{type: contains, value: "left"}}]
  - id: right
    checks: [{{type: contains, value: "right"}}]
"""
