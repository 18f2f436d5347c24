"""The mcp endpoint over streamable HTTP (a real server on 127.0.0.1 written with the SDK) and
against a third-party server installed from PyPI (mcp-server-time, stdio, no network)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from .helpers import attempts, run, step_row, write_pipeline

CALL = [{"id": "call", "endpoint": "tools", "tool": "{{ vars.tool }}", "arguments": "{{ vars.args }}"}]


def test_streamable_http_lists_calls_and_maps_errors(tmp_path: Path, http_server: tuple[str, Path]) -> None:
    url, _ = http_server
    endpoint = {"type": "mcp", "url": url, "headers": {"X-Relcheck-Test": "yes"}, "timeout_s": 20}
    steps = [
        *CALL,
        {
            "id": "after",
            "endpoint": "tools",
            "tool": "issue_refund",
            "arguments": {"order_id": "{{ steps.call.json.order_id }}", "amount": 1},
        },
    ]
    cases = [
        {"id": "ok", "vars": {"tool": "lookup_order", "args": {"order_id": "h1"}}},
        {"id": "is-error", "vars": {"tool": "lookup_order", "args": {"order_id": "missing-h"}}},
        {"id": "invalid", "vars": {"tool": "strict_refund", "args": {"order_id": "h", "amount": "1"}}},
        {"id": "unknown", "vars": {"tool": "lookup_ordr", "args": {}}},
        {"id": "hang", "vars": {"tool": "sleep", "args": {"seconds": 3600}}},
    ]
    steps[0]["timeout_s"] = 1.0
    pipeline, evalset = write_pipeline(tmp_path, {"tools": endpoint}, steps, cases)
    results = run(pipeline, evalset, tmp_path / "run", concurrency=4)
    kinds = {u["case"]: u["error_kind"] for u in results["units"]}
    assert kinds == {
        "ok": None,
        "is-error": "tool_error",
        "invalid": "tool_args",
        "unknown": "tool_unknown",
        "hang": "timeout",
    }
    hang = next(a for a in attempts(tmp_path / "run") if a["case"] == "hang")
    assert hang["latency_ms"] >= 1000
    after = next(a for a in attempts(tmp_path / "run") if a["step"] == "after")
    assert after["output"] == "refunded 1.00 on h1"  # structuredContent fed the next step


def test_an_http_server_that_is_not_listening_is_unreachable(tmp_path: Path) -> None:
    import socket

    from reliability_cli.errors import ConfigError

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = {"type": "mcp", "url": f"http://127.0.0.1:{port}/mcp", "timeout_s": 5}
    pipeline, evalset = write_pipeline(
        tmp_path, {"tools": endpoint}, CALL, [{"id": "a", "vars": {"tool": "x", "args": {}}}]
    )
    with pytest.raises(ConfigError) as info:
        run(pipeline, evalset, tmp_path / "run")
    assert "endpoints.tools.url" in str(info.value)


@pytest.mark.skipif(
    shutil.which("mcp-server-time", path=str(Path(sys.executable).parent)) is None,
    reason="mcp-server-time is not installed (pip install '.[test]')",
)
def test_mcp_server_time_from_pypi(tmp_path: Path) -> None:
    server = str(Path(sys.executable).parent / "mcp-server-time")
    endpoint = {"type": "mcp", "command": [server, "--local-timezone", "UTC"], "timeout_s": 30}
    steps = [{**CALL[0], "checks": [{"type": "json-path", "path": "$.timezone", "value": "{{ vars.tz }}"}]}]
    cases = [
        {"id": "utc", "vars": {"tool": "get_current_time", "args": {"timezone": "UTC"}, "tz": "UTC"}},
        {"id": "tokyo", "vars": {"tool": "get_current_time", "args": {"timezone": "Asia/Tokyo"}, "tz": "Asia/Tokyo"}},
        {"id": "bad-zone", "vars": {"tool": "get_current_time", "args": {"timezone": "Mars/Olympus"}, "tz": "-"}},
        {"id": "missing-arg", "vars": {"tool": "convert_time", "args": {"time": "10:00"}, "tz": "-"}},
        {"id": "unknown", "vars": {"tool": "get_current_tme", "args": {}, "tz": "-"}},
    ]
    pipeline, evalset = write_pipeline(tmp_path, {"tools": endpoint}, steps, cases)
    results = run(pipeline, evalset, tmp_path / "run")
    kinds = {u["case"]: u["error_kind"] for u in results["units"]}
    assert kinds == {
        "utc": None,
        "tokyo": None,
        "bad-zone": "tool_error",
        "missing-arg": "tool_args",
        "unknown": "tool_unknown",
    }
    rows = {a["case"]: a for a in attempts(tmp_path / "run")}
    assert "Invalid timezone" in rows["bad-zone"]["reason"]
    assert "did you mean 'get_current_time'" in rows["unknown"]["reason"]  # -32602 from its middleware
    assert "'source_timezone' is a required property" in rows["missing-arg"]["reason"]
    assert step_row(results, "call")["passed"] == 2
