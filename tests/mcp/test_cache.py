"""The response cache covers MCP tool calls (#15 item 3): a server that counts its calls shows
which a re-run makes; ``--no-cache`` bypasses, ``--cache-only`` fails on a miss, and no secret
reaches the database."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from .helpers import attempts, pids, run, stdio_endpoint, step_row, write_pipeline

TOKEN = "tok-mcp-cache-0123456789"  # an endpoint env value: a secret, as for cassettes
SECRET = "sk-mcp-env-secret-98765"  # a ${VAR} value the pipeline takes in
N = 4


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_CACHE_SECRET", SECRET)


STEPS = [
    {"id": "lookup", "endpoint": "tools", "tool": "lookup_order", "arguments": {"order_id": "{{ vars.order }}"}},
    {
        "id": "refund",
        "endpoint": "tools",
        "tool": "issue_refund",
        "arguments": {"order_id": "{{ steps.lookup.json.order_id }}", "amount": "{{ expect.amount }}"},
    },
]


def _setup(tmp_path: Path, steps: list[dict[str, Any]] = STEPS, orders: list[str] | None = None) -> tuple[Path, Path]:
    endpoint = stdio_endpoint(tmp_path / "pids")
    endpoint["env"] = {
        **endpoint["env"],
        "CALLSFILE": str(tmp_path / "calls"),
        "TOOLS_TOKEN": TOKEN,
        "OTHER": "${MCP_CACHE_SECRET}",
    }
    return write_pipeline(tmp_path, {"tools": endpoint}, steps, _cases(N, orders))


def _cases(n: int, orders: list[str] | None = None) -> list[dict[str, Any]]:
    orders = orders or [f"o{i}" for i in range(n)]
    return [{"id": f"c{i}", "vars": {"order": o}, "expect": {"amount": i + 1}} for i, o in enumerate(orders)]


def _calls(tmp_path: Path) -> int:
    """Tool calls the server answered since the last look."""
    path = tmp_path / "calls"
    if not path.exists():
        return 0
    n = len(path.read_text().split())
    path.unlink()
    return n


def _summary(results: dict[str, Any]) -> list[Any]:
    return [(s["id"], s["reached"], s["passed"], s["error_kinds"]) for s in results["steps"]] + [results["units"]]


def test_a_second_identical_run_makes_no_tool_call(tmp_path: Path) -> None:
    pipeline, evalset = _setup(tmp_path)
    db = str(tmp_path / "cache.sqlite")
    first = run(pipeline, evalset, tmp_path / "r1", cache=db)
    assert _calls(tmp_path) == 2 * N and len(pids(tmp_path / "pids")) == 1
    assert not any(a.get("cached") for a in attempts(tmp_path / "r1"))
    second = run(pipeline, evalset, tmp_path / "r2", cache=db)
    assert _calls(tmp_path) == 0
    assert len(pids(tmp_path / "pids")) == 1  # every call answered from the cache: no server started
    assert _summary(second) == _summary(first)
    cached = attempts(tmp_path / "r2")
    assert len(cached) == 2 * N and all(a.get("cached") for a in cached)
    # steps.<id>.json of a cached result feeds the next step as a live one does
    assert step_row(second, "refund")["passed"] == N
    # and the figures say so
    assert step_row(second, "lookup")["cached"] == N and step_row(first, "lookup")["cached"] == 0


def test_changed_arguments_are_called_again_and_no_cache_bypasses(tmp_path: Path) -> None:
    pipeline, evalset = _setup(tmp_path)
    db = str(tmp_path / "cache.sqlite")
    run(pipeline, evalset, tmp_path / "r1", cache=db)
    assert _calls(tmp_path) == 2 * N
    edited = [STEPS[0], {**STEPS[1], "arguments": {"order_id": "{{ vars.order }}", "amount": 7}}]
    pipeline, evalset = _setup(tmp_path, edited)
    run(pipeline, evalset, tmp_path / "r2", cache=db)
    assert _calls(tmp_path) == N  # only the edited step's calls
    run(pipeline, evalset, tmp_path / "r3")  # no cache (--no-cache): every call made
    assert _calls(tmp_path) == 2 * N


def test_trials_are_separate_entries(tmp_path: Path) -> None:
    pipeline, evalset = _setup(tmp_path)
    db = str(tmp_path / "cache.sqlite")
    run(pipeline, evalset, tmp_path / "r1", cache=db, trials=2)
    assert _calls(tmp_path) == 2 * 2 * N
    run(pipeline, evalset, tmp_path / "r2", cache=db, trials=2)
    assert _calls(tmp_path) == 0


def test_cache_only_makes_a_miss_an_error(tmp_path: Path) -> None:
    pipeline, evalset = _setup(tmp_path)
    db = str(tmp_path / "cache.sqlite")
    results = run(pipeline, evalset, tmp_path / "r1", cache=db, cache_only=True)
    assert _calls(tmp_path) == 0 and pids(tmp_path / "pids") == []
    assert step_row(results, "lookup")["error_kinds"] == {"cache_miss": N}
    line = attempts(tmp_path / "r1")[0]
    assert "no cached result for tool lookup_order" in line["reason"] and "--cache-only" in line["reason"]
    run(pipeline, evalset, tmp_path / "r2", cache=db)
    _calls(tmp_path)
    results = run(pipeline, evalset, tmp_path / "r3", cache=db, cache_only=True)
    assert _calls(tmp_path) == 0 and step_row(results, "refund")["passed"] == N


def test_no_secret_reaches_the_database(tmp_path: Path) -> None:
    # c0's and c1's results echo a secret (the order id is returned): they are not stored
    pipeline, evalset = _setup(tmp_path, STEPS[:1], [TOKEN, SECRET, "o2", "o3"])
    db = tmp_path / "cache.sqlite"
    run(pipeline, evalset, tmp_path / "r1", cache=str(db))
    assert _calls(tmp_path) == N
    run(pipeline, evalset, tmp_path / "r2", cache=str(db))
    assert _calls(tmp_path) == 2  # the two results holding a secret were not stored
    data = b"".join(p.read_bytes() for p in tmp_path.glob("cache.sqlite*"))
    assert TOKEN.encode() not in data and SECRET.encode() not in data
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM responses WHERE endpoint_type = 'mcp'").fetchone() == (2,)
        assert conn.execute("SELECT DISTINCT host FROM responses").fetchall() == [("stdio",)]


@pytest.fixture
def _count_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLSFILE", str(tmp_path / "calls"))  # (inherited by the HTTP server started next)


def test_streamable_http_calls_are_cached_by_url(
    tmp_path: Path, _count_calls: None, http_server: tuple[str, Path]
) -> None:
    url, _ = http_server
    pipeline, evalset = write_pipeline(
        tmp_path, {"tools": {"type": "mcp", "url": url, "timeout_s": 20}}, STEPS, _cases(N)
    )
    db = str(tmp_path / "cache.sqlite")
    first = run(pipeline, evalset, tmp_path / "r1", cache=db)
    assert _calls(tmp_path) == 2 * N
    second = run(pipeline, evalset, tmp_path / "r2", cache=db)
    assert _calls(tmp_path) == 0 and _summary(second) == _summary(first)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT DISTINCT host FROM responses").fetchall() == [("127.0.0.1",)]
    # another URL (here: the same server, another query) is another endpoint identity
    other = write_pipeline(
        tmp_path,
        {"tools": {"type": "mcp", "url": url + "?tenant=b", "timeout_s": 20}},
        STEPS,
        _cases(N),
    )
    run(*other, tmp_path / "r3", cache=db)
    assert _calls(tmp_path) == 2 * N
