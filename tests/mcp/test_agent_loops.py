"""A model's tool calls executed by MCP steps: ``tools_from`` on openai/anthropic endpoints
(against ``relcheck mock-server``), the mock endpoint's ``tool_calls`` reply,
``--endpoint tools=mock``, and Ctrl-C leaving no server process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from reliability_cli.mockserver import run_in_thread

from .helpers import attempts, pids, run, stdio_endpoint, wait_gone, write_pipeline


def _execute(step_id: str, plan: str) -> dict:
    """A step that runs the first tool call the model chose in step ``plan``."""
    return {
        "id": step_id,
        "endpoint": "tools",
        "tool": f"{{{{ steps.{plan}.tool_calls[0].name }}}}",
        "arguments": f"{{{{ steps.{plan}.tool_calls[0].arguments }}}}",
        "checks": [{"type": "json-path", "path": "$.status", "value": "shipped"}],
    }


def test_tools_from_offers_the_servers_tools_and_the_chosen_call_runs(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    with run_in_thread() as server:
        endpoints = {
            "tools": stdio_endpoint(pidfile),
            "gpt": {"type": "openai", "base_url": f"{server.base_url}/v1", "model": "m", "tools_from": "tools"},
            "claude": {"type": "anthropic", "base_url": server.base_url, "model": "m", "tools_from": "tools"},
        }
        prompt = 'CALL: lookup_order {"order_id": "{{ vars.order }}"}'
        steps = [
            {
                "id": "plan",
                "endpoint": "gpt",
                "prompt": prompt,
                "checks": [{"type": "tool-call", "name": "lookup_order"}],
            },
            _execute("lookup", "plan"),
            {
                "id": "plan2",
                "endpoint": "claude",
                "prompt": prompt,
                "checks": [
                    {"type": "tool-call", "name": "lookup_order", "arguments": {"order_id": "{{ vars.order }}"}}
                ],
            },
            _execute("lookup2", "plan2"),
        ]
        cases = [{"id": f"c{i}", "vars": {"order": f"ord-{i}"}} for i in range(3)]
        pipeline, evalset = write_pipeline(tmp_path, endpoints, steps, cases)
        cassette = tmp_path / "c.jsonl"
        results = run(pipeline, evalset, tmp_path / "run", record=str(cassette))
        requests = server.counts["requests"]
    assert results["end_to_end"]["passed"] == 3, results["units"]
    assert requests == 6
    rows = [a for a in attempts(tmp_path / "run") if a["step"] == "lookup2"]
    assert all('"order_id": "ord-' in r["output"] for r in rows)
    bodies = {
        ln["endpoint"]: ln["body"]
        for ln in map(json.loads, cassette.read_text().splitlines()[1:])
        if ln.get("endpoint") in ("gpt", "claude")
    }
    names = lambda tools: sorted(t.get("name") or t["function"]["name"] for t in tools)  # noqa: E731
    assert (
        names(bodies["gpt"]["tools"])
        == names(bodies["claude"]["tools"])
        == ["crash", "issue_refund", "lookup_order", "sleep", "strict_refund"]
    )
    gpt = next(t for t in bodies["gpt"]["tools"] if t["function"]["name"] == "issue_refund")
    assert gpt["type"] == "function" and gpt["function"]["parameters"]["properties"]["amount"]["type"] == "number"
    claude = next(t for t in bodies["claude"]["tools"] if t["name"] == "issue_refund")
    assert claude["input_schema"]["required"] == ["order_id", "amount"]
    assert len(pids(pidfile)) == 1 and wait_gone(pids(pidfile)) == []


def test_the_mock_answers_with_tool_calls_and_tools_can_be_mocked(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    endpoints = {
        "tools": stdio_endpoint(pidfile),
        "planner": {
            "type": "mock",
            "reply": "calling",
            "tool_calls": [{"name": "{{ vars.tool }}", "arguments": {"order_id": "{{ vars.order }}"}}],
        },
    }
    steps = [
        {"id": "plan", "endpoint": "planner", "checks": [{"type": "tool-call", "name": "lookup_order"}]},
        {**_execute("lookup", "plan"), "checks": []},
    ]
    cases = [
        {"id": "a", "vars": {"tool": "lookup_order", "order": "o1"}, "expect": {"lookup": {"status": "gold"}}},
        {"id": "b", "vars": {"tool": "issue_refund", "order": "o2"}, "expect": {"lookup": {"status": "gold"}}},
    ]
    pipeline, evalset = write_pipeline(tmp_path, endpoints, steps, cases)
    results = run(pipeline, evalset, tmp_path / "live")
    by_case = {u["case"]: u for u in results["units"]}
    assert by_case["a"]["passed"] and by_case["b"]["failed_step"] == "plan"  # the check saw the mock's call
    live_rows = [a for a in attempts(tmp_path / "live") if a["step"] == "lookup"]
    assert json.loads(live_rows[0]["output"])["order_id"] == "o1"
    assert len(pids(pidfile)) == 1
    mocked = run(pipeline, evalset, tmp_path / "mocked", endpoint_overrides=["tools=mock"])
    rows = [a for a in attempts(tmp_path / "mocked") if a["step"] == "lookup"]
    assert [json.loads(r["output"]) for r in rows] == [{"status": "gold"}]  # the gold, not the server
    assert mocked["units"][0]["passed"]
    assert len(pids(pidfile)) == 1  # no server started for the mocked run


def test_ctrl_c_stops_the_run_and_the_server(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    steps = [{"id": "slow", "endpoint": "tools", "tool": "sleep", "arguments": {"seconds": 3600}, "timeout_s": 3600}]
    pipeline, evalset = write_pipeline(
        tmp_path, {"tools": stdio_endpoint(pidfile)}, steps, [{"id": f"c{i}"} for i in range(4)]
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reliability_cli",
            "eval",
            str(pipeline),
            "--evalset",
            str(evalset),
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not pids(pidfile) and time.monotonic() < deadline:  # the server is up: calls are in flight
            time.sleep(0.05)
        assert pids(pidfile), "the server never started"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert json.loads((tmp_path / "run" / "results.json").read_text())["verdict"] == "error"
    assert wait_gone(pids(pidfile)) == []
    for pid in pids(pidfile):  # belt and braces should the assertion above ever fail
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_mock_tool_calls_forms_and_a_mocked_tool_source(tmp_path: Path) -> None:
    with run_in_thread() as server:
        endpoints = {
            "tools": stdio_endpoint(tmp_path / "pids"),
            "gpt": {"type": "openai", "base_url": f"{server.base_url}/v1", "model": "m", "tools_from": "tools"},
            "one-expr": {"type": "mock", "reply": "x", "tool_calls": "{{ vars.calls }}"},
        }
        steps = [
            {"id": "expr", "endpoint": "one-expr", "checks": [{"type": "tool-call", "name": "b"}]},
            {
                "id": "plan",
                "endpoint": "gpt",
                "prompt": "CALL: lookup_order {}",
                "checks": [{"type": "starts-with", "value": "echo: "}],
            },
        ]
        cases = [
            {"id": "two", "vars": {"calls": [{"name": "a", "arguments": "{}"}, {"name": "b"}]}},
            {"id": "bad", "vars": {"calls": "not a list"}},
        ]
        pipeline, evalset = write_pipeline(tmp_path, endpoints, steps, cases)
        results = run(pipeline, evalset, tmp_path / "run", endpoint_overrides=["tools=mock"])
    by_case = {u["case"]: u for u in results["units"]}
    assert by_case["two"]["passed"]  # no tools offered by a mocked MCP endpoint: the mock server echoes
    assert by_case["bad"]["error_kind"] == "template"
    assert pids(tmp_path / "pids") == []


def test_a_tools_from_server_that_cannot_start_is_bad_input_naming_it(tmp_path: Path) -> None:
    from reliability_cli.errors import ConfigError

    endpoints = {
        "tools": {"type": "mcp", "command": [str(tmp_path / "no-such-server")]},
        "gpt": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "tools_from": "tools"},
    }
    steps = [{"id": "plan", "endpoint": "gpt", "prompt": "hi"}]
    pipeline, evalset = write_pipeline(tmp_path, endpoints, steps, [{"id": "a"}])
    try:
        run(pipeline, evalset, tmp_path / "run")
    except ConfigError as exc:
        assert "at endpoints.tools.command: endpoint 'tools' (tools_from of 'gpt'): cannot start" in str(exc)
        assert "no-such-server" in str(exc)
    else:
        raise AssertionError("the run should have been refused")
    assert attempts(tmp_path / "run") == []  # no unit ran
