"""The mcp endpoint against a real stdio MCP server subprocess (tests/mcp/servers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability_cli.errors import ConfigError

from .helpers import attempts, pids, run, stdio_endpoint, step_row, wait_gone, write_pipeline

STEPS = [
    {
        "id": "lookup",
        "endpoint": "tools",
        "tool": "lookup_order",
        "arguments": {"order_id": "{{ vars.order }}"},
        "checks": [{"type": "json-path", "path": "$.status", "value": "shipped"}],
    },
    {
        "id": "refund",
        "endpoint": "tools",
        "tool": "{{ vars.tool }}",
        "arguments": {"order_id": "{{ steps.lookup.json.order_id }}", "amount": "{{ vars.amount }}"},
        "checks": [{"type": "contains", "value": "{{ steps.lookup.output.order_id }}"}],
    },
]
CASES = [
    {"id": "ok", "vars": {"order": "o1", "tool": "issue_refund", "amount": 3}},
    {"id": "is-error", "vars": {"order": "missing-1", "tool": "issue_refund", "amount": 3}},
    {"id": "bad-type", "vars": {"order": "o3", "tool": "issue_refund", "amount": "x"}},
    {"id": "invalid-params", "vars": {"order": "o4", "tool": "strict_refund", "amount": "x"}},
    {"id": "unknown", "vars": {"order": "o5", "tool": "isue_refund", "amount": 2}},
    {"id": "ok-2", "vars": {"order": "o6", "tool": "strict_refund", "amount": 2.5}},
]


def test_each_answer_maps_to_its_outcome_and_one_session_serves_every_unit(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    pipeline, evalset = write_pipeline(tmp_path, {"tools": stdio_endpoint(pidfile)}, STEPS, CASES)
    results = run(pipeline, evalset, tmp_path / "run", concurrency=4)
    by_case = {u["case"]: u for u in results["units"]}
    assert by_case["ok"]["passed"] and by_case["ok-2"]["passed"]
    assert (by_case["is-error"]["failed_step"], by_case["is-error"]["error_kind"]) == ("lookup", "tool_error")
    assert by_case["bad-type"]["error_kind"] == "tool_args"  # isError, and the arguments fail inputSchema
    assert by_case["invalid-params"]["error_kind"] == "tool_args"  # JSON-RPC -32602
    assert by_case["unknown"]["error_kind"] == "tool_unknown"
    rows = {a["case"]: a for a in attempts(tmp_path / "run") if a["step"] == "refund"}
    assert "arguments.amount: 'x' is not of type 'number'" in rows["bad-type"]["reason"]
    assert "did you mean 'issue_refund'" in rows["unknown"]["reason"]
    assert rows["ok"]["output"] == "refunded 3.00 on o1"
    # the step's own failures: counted against the step, not as infrastructure errors
    assert results["end_to_end"]["infra_errors"] == 0
    assert step_row(results, "refund")["error_kinds"] == {"tool_args": 2, "tool_unknown": 1}
    assert step_row(results, "lookup")["error_kinds"] == {"tool_error": 1}
    started = pids(pidfile)
    assert len(started) == 1  # one session for every unit in flight
    assert wait_gone(started) == []
    log = (tmp_path / "run" / "mcp-tools.log").read_text()
    assert "lookup_order o1" in log and "lookup_order o6" in log  # the server's stderr


def test_tool_errors_are_retried_under_retry_on_error(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    steps = [{**STEPS[0], "retry": {"max_attempts": 3, "on": ["error"], "backoff": {"initial_s": 0}}}]
    pipeline, evalset = write_pipeline(
        tmp_path,
        {"tools": stdio_endpoint(pidfile)},
        steps,
        [{"id": "a", "vars": {"order": "missing-a"}}, {"id": "b", "vars": {"order": "b"}}],
    )
    results = run(pipeline, evalset, tmp_path / "run")
    row = step_row(results, "lookup")
    assert row["attempts"] == 4 and row["error_kinds"] == {"tool_error": 3}
    assert results["end_to_end"]["infra_errors"] == 0
    assert wait_gone(pids(pidfile)) == []


def test_a_crash_mid_run_is_protocol_and_the_next_call_restarts_the_server(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    steps = [{"id": "call", "endpoint": "tools", "tool": "{{ vars.tool }}", "arguments": "{{ vars.args }}"}]
    cases = [
        {"id": "before", "vars": {"tool": "lookup_order", "args": {"order_id": "o1"}}},
        {"id": "crash", "vars": {"tool": "crash", "args": {}}},
        {"id": "after", "vars": {"tool": "lookup_order", "args": {"order_id": "o2"}}},
    ]
    pipeline, evalset = write_pipeline(tmp_path, {"tools": stdio_endpoint(pidfile)}, steps, cases)
    results = run(pipeline, evalset, tmp_path / "run", concurrency=1)
    by_case = {u["case"]: u for u in results["units"]}
    assert by_case["before"]["passed"] and by_case["after"]["passed"]
    assert by_case["crash"]["error_kind"] == "protocol"
    reason = next(a["reason"] for a in attempts(tmp_path / "run") if a["case"] == "crash")
    assert "session dropped" in reason and "crashing" in reason  # the stderr tail names why
    started = pids(pidfile)
    assert len(started) == 2
    assert wait_gone(started) == []


def test_a_tool_that_never_answers_times_out_at_the_step_deadline(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    steps = [
        {"id": "call", "endpoint": "tools", "tool": "{{ vars.tool }}", "arguments": "{{ vars.args }}", "timeout_s": 0.5}
    ]
    cases = [
        {"id": "hang", "vars": {"tool": "sleep", "args": {"seconds": 3600}}},
        {"id": "next", "vars": {"tool": "lookup_order", "args": {"order_id": "o2"}}},
    ]
    pipeline, evalset = write_pipeline(tmp_path, {"tools": stdio_endpoint(pidfile)}, steps, cases)
    results = run(pipeline, evalset, tmp_path / "run", concurrency=1)
    rows = {a["case"]: a for a in attempts(tmp_path / "run")}
    assert rows["hang"]["error_kind"] == "timeout"
    assert rows["hang"]["latency_ms"] >= 500  # not cut short; the upper side is not asserted (a busy VM)
    assert rows["next"]["outcome"] == "pass"  # the session outlives one call's timeout
    assert results["end_to_end"]["infra_errors"] == 1
    assert wait_gone(pids(pidfile)) == []


def test_a_server_that_never_completes_the_handshake_is_a_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    steps = [{"id": "call", "endpoint": "tools", "tool": "lookup_order", "arguments": {"order_id": "x"}}]
    pipeline, evalset = write_pipeline(
        tmp_path, {"tools": stdio_endpoint(pidfile, "--silent", timeout_s=1)}, steps, [{"id": "a"}]
    )
    run(pipeline, evalset, tmp_path / "run")
    (row,) = attempts(tmp_path / "run")
    assert row["error_kind"] == "timeout" and "handshake" in row["reason"]
    assert wait_gone(pids(pidfile)) == []


def test_a_server_that_cannot_start_is_bad_input_naming_the_command(tmp_path: Path) -> None:
    endpoint = {"type": "mcp", "command": [str(tmp_path / "no-such-server")]}
    steps = [{"id": "call", "endpoint": "tools", "tool": "lookup_order", "arguments": {"order_id": "x"}}]
    pipeline, evalset = write_pipeline(tmp_path, {"tools": endpoint}, steps, [{"id": "a"}, {"id": "b"}])
    with pytest.raises(ConfigError) as info:
        run(pipeline, evalset, tmp_path / "run")
    assert "endpoints.tools.command" in str(info.value) and "unreachable" in str(info.value)
    assert "no-such-server" in str(info.value)
