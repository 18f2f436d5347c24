"""``relcheck validate`` checks tool calls against the servers' inputSchema; record/replay of
MCP calls; the SDK missing; config errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..helpers import run_relcheck, strip_volatile
from .helpers import SERVERS, pids, stdio_endpoint, wait_gone, write_pipeline

STEPS = [
    {"id": "lookup", "endpoint": "tools", "tool": "lookup_order", "arguments": {"order_id": "{{ vars.order }}"}},
    {
        "id": "refund",
        "endpoint": "tools",
        "tool": "issue_refund",
        "arguments": {"order_id": "{{ vars.order }}", "amount": "{{ expect.amount }}"},
    },
    {
        "id": "chained",
        "endpoint": "tools",
        "tool": "issue_refund",  # names an earlier step: checked at run time
        "arguments": {"order_id": "{{ steps.lookup.json.order_id }}", "amount": "{{ vars.order }}"},
    },
]


def _cases(amounts: list[object]) -> list[dict[str, object]]:
    return [{"id": f"o-{i}", "vars": {"order": f"o{i}"}, "expect": {"amount": a}} for i, a in enumerate(amounts, 1)]


def test_validate_reports_file_line_case_step_and_field(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    pipeline, evalset = write_pipeline(tmp_path, {"tools": stdio_endpoint(pidfile)}, STEPS, _cases([1, 2.5, "12.5", 4]))
    proc = run_relcheck("validate", pipeline, "--evalset", evalset)
    assert proc.returncode == 2, proc.stderr
    assert f"{evalset}:3: case o-3: step refund: arguments.amount: '12.5' is not of type 'number'" in proc.stderr
    assert "o-1" not in proc.stderr and "o-4" not in proc.stderr and "Traceback" not in proc.stderr
    assert "chained" not in proc.stderr
    assert wait_gone(pids(pidfile)) == []  # validate started the server, listed, and stopped it


def test_validate_passes_conforming_arguments_and_names_an_unknown_tool(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    pipeline, evalset = write_pipeline(tmp_path, {"tools": stdio_endpoint(pidfile)}, STEPS, _cases([1, 2.5]))
    ok = run_relcheck("validate", pipeline, "--evalset", evalset)
    assert ok.returncode == 0, ok.stderr
    assert "3 steps, 2 cases" in ok.stdout
    typo = [{**STEPS[0], "tool": "lookup_ordr"}]
    pipeline, evalset = write_pipeline(tmp_path, {"tools": stdio_endpoint(pidfile)}, typo, _cases([1]))
    bad = run_relcheck("validate", pipeline, "--evalset", evalset)
    assert bad.returncode == 2
    assert (
        "steps[0].tool: step lookup: endpoint 'tools' has no tool 'lookup_ordr' — did you mean "
        "'lookup_order'?" in bad.stderr
    )


def test_validate_names_a_server_that_cannot_start(tmp_path: Path) -> None:
    endpoint = {"type": "mcp", "command": ["python", str(SERVERS), "--no-such-flag-crashes"], "timeout_s": 10}
    endpoint["command"] = ["python", "-c", "import sys; sys.stderr.write('boom: no database\\n'); sys.exit(1)"]
    pipeline, evalset = write_pipeline(tmp_path, {"tools": endpoint}, STEPS[:1], _cases([1]))
    proc = run_relcheck("validate", pipeline, "--evalset", evalset)
    assert proc.returncode == 2
    assert "at endpoints.tools.command: endpoint 'tools': cannot start or reach the MCP server" in proc.stderr
    assert "boom: no database" in proc.stderr


def test_record_then_replay_offline_gives_the_same_results(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    secret = "s3cr3t-orders-db-value"
    endpoint = {**stdio_endpoint(pidfile), "env": {"PIDFILE": str(pidfile), "ORDERS_DB": "${ORDERS_DB}"}}
    steps = [*STEPS[:2], {"id": "dyn", "endpoint": "tools", "tool": "{{ vars.tool }}", "arguments": {}}]
    cases = [
        {**c, "vars": {**c["vars"], "tool": t}}  # type: ignore[dict-item]
        for c, t in zip(_cases([1, 2.5, "x"]), ["lookup_order", "lookup_ordr", "lookup_order"])
    ]
    pipeline, evalset = write_pipeline(tmp_path, {"tools": endpoint}, steps, cases)
    cassette = tmp_path / "tools.cassette.jsonl"
    env = {"ORDERS_DB": secret}
    first = run_relcheck(
        "eval",
        pipeline,
        "--evalset",
        evalset,
        "--record",
        cassette,
        "--out",
        tmp_path / "live",
        "--no-progress",
        env=env,
    )
    assert first.returncode in (0, 1), first.stderr
    text = cassette.read_text()
    assert secret not in text
    lines = [json.loads(ln) for ln in text.splitlines()[1:]]
    assert [ln["path"] for ln in lines].count("mcp:tools/list") == 1
    calls = [ln for ln in lines if ln["path"] == "mcp:tools/call"]
    assert sum(json.loads(ln["response"]).get("isError", False) for ln in calls) == 3  # classified on replay too
    assert wait_gone(pids(pidfile)) == []
    started = len(pids(pidfile))
    # Replay: the server command points at nothing, the SDK is not even needed.
    replay_pipeline = tmp_path / "replay.yaml"
    replay_pipeline.write_text(pipeline.read_text().replace(str(SERVERS), str(tmp_path / "gone")))
    assert str(SERVERS) not in replay_pipeline.read_text()
    checked = run_relcheck("validate", replay_pipeline, "--evalset", evalset, "--replay", cassette, env=env)
    assert checked.returncode == 2 and "case o-3: step refund: arguments.amount: 'x'" in checked.stderr  # listing
    second = run_relcheck(
        "eval",
        replay_pipeline,
        "--evalset",
        evalset,
        "--replay",
        cassette,
        "--out",
        tmp_path / "replayed",
        "--no-progress",
        env=env,
    )
    assert second.returncode == first.returncode, second.stderr
    live = strip_volatile(json.loads((tmp_path / "live" / "results.json").read_text()))
    replayed = strip_volatile(json.loads((tmp_path / "replayed" / "results.json").read_text()))
    for data in (live, replayed):
        data["run"].pop("pipeline_path"), data["run"].pop("pipeline_hash"), data["run"]["flags"].clear()
        for s in data["steps"]:
            s.pop("latency_ms")
    assert replayed["steps"] == live["steps"] and replayed["units"] == live["units"]
    assert [u["error_kind"] for u in live["units"]] == ["tool_args", "tool_unknown", "tool_args"]
    assert len(pids(pidfile)) == started  # nothing was started


def test_the_sdk_missing_is_exit_2_with_the_install_command(tmp_path: Path) -> None:
    pipeline, evalset = write_pipeline(tmp_path, {"tools": stdio_endpoint(tmp_path / "pids")}, STEPS[:1], _cases([1]))
    code = (
        "import sys; sys.modules['mcp'] = None; from reliability_cli.cli import main; "
        "sys.argv = ['relcheck', 'eval', sys.argv[1], '--evalset', sys.argv[2], '--out', sys.argv[3]]; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(pipeline), str(evalset), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "pip install 'relcheck[mcp]'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # refused before anything ran


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    cases = _cases([1])
    both = {"type": "mcp", "command": ["x"], "url": "http://127.0.0.1:1/mcp"}
    no_tool = [{"id": "s", "endpoint": "tools"}]
    tool_on_mock = [{"id": "s", "endpoint": "m", "tool": "x"}]
    checks = [
        ({"tools": both}, STEPS[:1], "exactly one of command (stdio) or url"),
        ({"tools": stdio_endpoint(tmp_path / "p")}, no_tool, "names no tool"),
        ({"m": {"type": "mock"}}, tool_on_mock, "tool is for steps on an mcp endpoint"),
        (
            {"m": {"type": "mock"}, "llm": {"type": "openai", "model": "x", "tools_from": "m"}},
            [{"id": "s", "endpoint": "llm", "prompt": "hi"}],
            "tools_from names 'm', which is not an mcp endpoint",
        ),
    ]
    for endpoints, steps, message in checks:
        pipeline, evalset = write_pipeline(tmp_path, endpoints, steps, cases)
        proc = run_relcheck("validate", pipeline, "--evalset", evalset)
        assert proc.returncode == 2 and message in proc.stderr, (message, proc.stderr)


def test_schema_describes_the_mcp_keys() -> None:
    from reliability_cli.config.models import json_schema

    schema = json.dumps(json_schema())
    for key in ('"McpEndpoint"', '"tools_from"', '"tool_calls"', '"arguments"', '"command"'):
        assert key in schema, key
