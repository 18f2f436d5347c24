"""A graph whose nodes call an OpenAI-compatible model through the official SDK, against the
mock server with injected faults: every fault is one classified node error, nothing hangs."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from reliability_cli.mockserver import FaultConfig, run_in_thread

from .helpers import attempts, project, run, step, units

GRAPH = """
import os
from typing import TypedDict

import openai
from langgraph.graph import END, START, StateGraph


class S(TypedDict, total=False):
    ticket: str
    category: str
    reply: str


def client():
    # the SDK's own retries are off: relcheck's retry policy decides; the timeout ends the
    # injected hangs, and leaves a loaded machine room for the other requests
    return openai.AsyncOpenAI(base_url=os.environ["GRAPH_TEST_BASE_URL"] + "/v1", api_key="sk-test",
                              max_retries=0, timeout=5.0)


async def ask(text):
    async with client() as c:
        out = await c.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": text}])
    return out.choices[0].message.content


async def classify(state, config):
    return {"category": await ask(f"{state['ticket']}\\nREPLY: billing")}


async def draft(state, config):
    return {"reply": await ask(f"{state['ticket']}\\nREPLY: Dear customer, about {state['category']}")}


def build():
    g = StateGraph(S)
    g.add_node("classify", classify)
    g.add_node("draft", draft)
    g.add_edge(START, "classify")
    g.add_edge("classify", "draft")
    g.add_edge("draft", END)
    return g
"""

PIPELINE = """
version: 1
name: openai-graph
evalset: cases.jsonl
graph: {type: langgraph, target: "g_openai:build", input: {ticket: "{{ vars.ticket }}"}}
defaults:
  timeout_s: 20
  retry: {max_attempts: 1}
steps:
  - id: classify
    output: "{{ update.category }}"
    checks: [{type: equals, value: billing}]
  - id: draft
    output: "{{ update.reply }}"
    checks: [{type: starts-with, value: "Dear"}]
"""

FAULT_CLASS = {
    "status_500": "InternalServerError",
    "status_429": "RateLimitError",
    "hang": "APITimeoutError",
    "drop": "APIConnectionError",
    "malformed": "",
}


@pytest.mark.timeout(120)
def test_node_errors_are_classified_and_nothing_hangs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [{"id": f"t{i:02d}", "vars": {"ticket": f"ticket number {i}"}, "expect": {}} for i in range(40)]
    path = project(tmp_path / "p", GRAPH, PIPELINE, cases, name="g_openai")
    faults = FaultConfig(
        fail_rate=0.05, status_rates={500: 0.1, 429: 0.05}, hang_rate=0.05, drop_rate=0.05, malformed_rate=0.05, seed=3
    )
    with run_in_thread(faults) as server:
        monkeypatch.setenv("GRAPH_TEST_BASE_URL", server.base_url)
        results, lines = run(path, tmp_path / "out", concurrency=8)
        counts = Counter(server.counts)
    done = units(lines)
    assert len(done) == 40  # every unit finished: no hang outlived the SDK's timeout
    tried = attempts(lines)
    outcomes = Counter(r["outcome"] for r in tried)
    faulted = sum(counts[k] for k in FAULT_CLASS)
    assert counts["requests"] == len(tried)  # one request per node execution
    assert outcomes == {"pass": counts["ok"], "fail": counts["wrong"], "error": faulted}
    assert faulted >= 5 and counts["hang"] >= 1 and counts["status_500"] >= 1
    errors = [r for r in tried if r["outcome"] == "error"]
    assert {r["error_kind"] for r in errors} == {"node_error"}
    names = Counter(re.match(r"(\w+):", r["reason"]).group(1) for r in errors)
    expected = Counter()
    for kind, cls in FAULT_CLASS.items():
        if cls:
            expected[cls] += counts[kind]
    # malformed bodies surface as whatever the SDK raises for bad JSON; the rest by their class
    assert all(names[cls] >= n for cls, n in expected.items())
    assert sum(names.values()) == faulted
    classify = step(results, "classify")
    assert classify["errors"] + classify["failed"] + classify["passed"] == 40
    assert classify["error_kinds"] == {"node_error": classify["errors"]}
    # a unit that errored at classify never ran draft: chained stop
    for unit in done.values():
        if unit["failed_step"] == "classify":
            assert [s["step"] for s in unit["steps"]] == ["classify"]


HANGS = """
import asyncio
from typing import TypedDict
from langgraph.graph import END, START, StateGraph

class S(TypedDict, total=False):
    out: str

async def stuck(state, config):
    if config["configurable"]["attempt"] == 1:
        await asyncio.sleep(3600)
    return {"out": "done"}

def build():
    g = StateGraph(S)
    g.add_node("stuck", stuck)
    g.add_edge(START, "stuck"); g.add_edge("stuck", END)
    return g
"""


@pytest.mark.timeout(60)
def test_a_node_past_its_deadline_is_a_timeout_and_is_retried(tmp_path: Path) -> None:
    pipeline = (
        'version: 1\nname: hangs\nevalset: cases.jsonl\ngraph: {type: langgraph, target: "g_hangs:build"}\n'
        "steps:\n  - id: stuck\n    timeout_s: 0.2\n"
        "    retry: {max_attempts: 2, on: [error], backoff: {initial_s: 0}}\n"
        "    checks: [{type: contains, value: done}]\n"
    )
    path = project(tmp_path / "p", HANGS, pipeline, [{"id": "c0", "vars": {}, "expect": {}}], name="g_hangs")
    results, lines = run(path, tmp_path / "out")
    assert [(r["attempt"], r["outcome"], r["error_kind"]) for r in attempts(lines)] == [
        (1, "error", "timeout"),
        (2, "pass", None),
    ]
    assert step(results, "stuck")["retry_recovered"] == 1
