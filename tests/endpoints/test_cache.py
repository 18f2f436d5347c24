"""The response cache: a counting server on 127.0.0.1 shows which requests a re-run makes."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reliability_cli.endpoints.cache import cache_info, clear_cache, resolve_path
from reliability_cli.errors import UsageError

from .helpers import (
    Counter,
    attempts,
    raw_server,
    run,
    write_pipeline,
)

SECRET = "sk-cache-test-0123456789"
N = 6


def _pipeline(
    directory: Path,
    url: str,
    final_prompt: str = "Polish: {{ steps.draft.output }}\nREPLY: {{ steps.draft.output }}",
    fail_case: bool = False,
    price: bool = False,
) -> Path:
    pipeline = {
        "name": "cached",
        "endpoints": {
            "llm": {
                "type": "openai",
                "base_url": url,
                "model": "m",
                "api_key_env": "CACHE_TEST_KEY",
                "timeout_s": 5,
                **({"price": {"input": 1e6, "output": 1e6}} if price else {}),
            }
        },
        "steps": [
            {
                "id": "draft",
                "endpoint": "llm",
                "prompt": "Draft for {{ vars.q }}\nREPLY: {{ vars.answer }}",
                "checks": [{"type": "equals", "value": "{{ expect.draft }}"}],
            },
            {
                "id": "final",
                "endpoint": "llm",
                "prompt": final_prompt,
                "checks": [{"type": "contains", "value": "{{ expect.draft }}"}],
            },
        ],
    }
    # with fail_case, c0's draft differs from its gold: it never reaches ``final``
    cases = [
        {
            "id": f"c{i}",
            "vars": {"q": f"q{i}", "answer": f"d{i}"},
            "expect": {"draft": ("WRONG" if fail_case and i == 0 else "") + f"d{i}"},
        }
        for i in range(N)
    ]
    return write_pipeline(directory, pipeline, cases)


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    counter = Counter()
    with raw_server(counter.handler()) as url:
        yield counter, url


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_TEST_KEY", SECRET)


def test_a_second_identical_run_makes_no_call(tmp_path: Path, server: Any) -> None:
    counter, url = server
    db = str(tmp_path / "cache.sqlite")
    path = _pipeline(tmp_path / "p", url)
    first = run(path, tmp_path / "r1", cache=db)
    assert counter.take() == 2 * N
    second = run(path, tmp_path / "r2", cache=db)
    assert counter.take() == 0
    lines = attempts(tmp_path / "r2")
    assert len(lines) == 2 * N and all(line.get("cached") is True for line in lines)
    assert not any(line.get("cached") for line in attempts(tmp_path / "r1"))
    for a, b in zip(first["steps"], second["steps"]):
        assert (a["passed"], a["reached"], a["tokens"]) == (b["passed"], b["reached"], b["tokens"])
        assert a["latency_ms"]["p50"] is not None
        assert b["latency_ms"] == {"p50": None, "p95": None, "max": None}  # no request, no latency
    assert second["end_to_end"]["rate"] == first["end_to_end"]["rate"] == 1.0


def test_editing_the_last_prompt_recalls_only_that_step(tmp_path: Path, server: Any) -> None:
    counter, url = server
    db = str(tmp_path / "cache.sqlite")
    run(_pipeline(tmp_path / "p", url, fail_case=True), tmp_path / "r1", cache=db)
    assert counter.take() == 2 * N - 1  # c0 fails at draft
    edited = _pipeline(
        tmp_path / "p",
        url,
        fail_case=True,
        final_prompt="Polish, kindly: {{ steps.draft.output }}\nREPLY: {{ steps.draft.output }}",
    )
    results = run(edited, tmp_path / "r2", cache=db)
    assert counter.take() == N - 1  # one call per unit reaching ``final``
    by_step = {}
    for line in attempts(tmp_path / "r2"):
        by_step.setdefault(line["step"], []).append(bool(line.get("cached")))
    assert by_step == {"draft": [True] * N, "final": [False] * (N - 1)}
    assert results["steps"][1]["reached"] == N - 1


def test_results_and_the_terminal_report_count_cache_hits(tmp_path: Path, server: Any, cli: Any) -> None:
    counter, url = server
    db = str(tmp_path / "cache.sqlite")
    first = run(_pipeline(tmp_path / "p", url, fail_case=True), tmp_path / "r1", cache=db)
    assert counter.take() == 2 * N - 1
    assert [s["cached"] for s in first["steps"]] == [0, 0]
    edited = _pipeline(tmp_path / "p", url, fail_case=True, final_prompt="Again: {{ steps.draft.output }}")
    second = run(edited, tmp_path / "r2", cache=db)
    assert counter.take() == N - 1
    assert [(s["id"], s["cached"], s["attempts"]) for s in second["steps"]] == [
        ("draft", N, N),
        ("final", 0, N - 1),
    ]
    code, out, err = cli("report", tmp_path / "r2")
    assert code in (0, 1), err
    assert f"Response cache: {N} of {2 * N - 1} attempts answered, no request made (draft {N})" in out
    code, out, _ = cli("report", tmp_path / "r1")
    assert "Response cache" not in out


def test_trials_and_attempts_are_separate_entries(tmp_path: Path, server: Any) -> None:
    counter, url = server
    db = str(tmp_path / "cache.sqlite")
    path = _pipeline(tmp_path / "p", url)
    run(path, tmp_path / "r1", cache=db, trials=2)
    assert counter.take() == 2 * 2 * N  # trial 2 is a sample of its own, not a hit of trial 1
    run(path, tmp_path / "r2", cache=db, trials=3)
    assert counter.take() == 2 * N  # only trial 3 is new
    assert cache_info(db)["entries"] == 3 * 2 * N


def test_cache_only_makes_a_miss_an_error(tmp_path: Path, server: Any) -> None:
    counter, url = server
    db = str(tmp_path / "cache.sqlite")
    results = run(_pipeline(tmp_path / "p", url), tmp_path / "r1", cache=db, cache_only=True)
    assert counter.take() == 0
    assert results["exit_code"] == 3
    assert {line["error_kind"] for line in attempts(tmp_path / "r1")} == {"cache_miss"}
    assert "--cache-only makes no call" in attempts(tmp_path / "r1")[0]["reason"]


def test_no_key_in_the_database(tmp_path: Path, server: Any) -> None:
    counter, url = server
    db = tmp_path / "cache.sqlite"
    path = _pipeline(tmp_path / "p", url)
    run(path, tmp_path / "r1", cache=str(db))
    # a server echoing the key back: that response is not stored
    echo = write_pipeline(
        tmp_path / "e",
        {
            "name": "echo",
            "endpoints": {"llm": {"type": "openai", "base_url": url, "model": "m", "api_key_env": "CACHE_TEST_KEY"}},
            "steps": [{"id": "s", "endpoint": "llm", "prompt": "ECHO-KEY {{ vars.q }}"}],
        },
        [{"id": "e1", "vars": {"q": "x"}}],
    )
    run(echo, tmp_path / "r2", cache=str(db))
    assert counter.take() == 2 * N + 1
    run(echo, tmp_path / "r3", cache=str(db))
    assert counter.take() == 1  # not cached: it held the key
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    for f in tmp_path.glob("cache.sqlite*"):
        data = f.read_bytes()
        assert SECRET.encode() not in data and b"Bearer" not in data
    assert cache_info(str(db))["entries"] == 2 * N


def _eval(path: Path, out: Path, db: Path, *extra: str) -> subprocess.Popen[str]:
    import os

    env = {**os.environ, "RELCHECK_CACHE": str(db), "CACHE_TEST_KEY": SECRET}
    env.pop("CI", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reliability_cli",
            "eval",
            str(path),
            "--out",
            str(out),
            "--no-progress",
            "--quiet",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_runs_share_the_cache(tmp_path: Path, server: Any) -> None:
    counter, url = server
    db = tmp_path / "shared" / "cache.sqlite"
    path = _pipeline(tmp_path / "p", url)
    procs = [_eval(path, tmp_path / f"r{k}", db, "--trials", "3", "--concurrency", "4") for k in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    made = counter.take()
    assert 3 * 2 * N <= made <= 3 * 3 * 2 * N  # each request at least once; duplicates only when raced
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("SELECT COUNT(*) FROM responses").fetchone() == (3 * 2 * N,)
    con.close()
    later = _eval(path, tmp_path / "r9", db, "--trials", "3")
    later.communicate(timeout=120)
    assert later.returncode == 0 and counter.take() == 0


def test_a_resumed_run_answers_from_the_cache(tmp_path: Path, server: Any) -> None:
    counter, url = server
    db = str(tmp_path / "cache.sqlite")
    path = _pipeline(tmp_path / "p", url)
    run(path, tmp_path / "r1", cache=db)
    assert counter.take() == 2 * N
    # r1 as if killed before its last three units finished
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "r1", cut)
    (cut / "results.json").unlink()
    lines = (cut / "attempts.jsonl").read_text().splitlines(keepends=True)
    done = [i for i, line in enumerate(lines) if '"unit_done"' in line]
    (cut / "attempts.jsonl").write_text("".join(lines[: done[N - 4] + 1]))
    results = run(path, cut, resume=str(cut), cache=db)
    assert counter.take() == 0
    assert results["end_to_end"]["total"] == N and results["end_to_end"]["passed"] == N
    assert sum(1 for line in attempts(cut) if line.get("cached")) == 2 * 3


def test_resolve_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_path(environ={}) == str(Path(".relcheck") / "cache.sqlite")
    assert resolve_path(environ={"CI": "true"}) is None  # CI: off unless asked for
    assert resolve_path(environ={"CI": "true", "RELCHECK_CACHE": "/x/c.db"}) == "/x/c.db"
    assert resolve_path(environ={"CI": "true"}, cache_only=True) == str(Path(".relcheck") / "cache.sqlite")
    assert resolve_path(environ={"RELCHECK_CACHE": "off"}) is None
    assert resolve_path(no_cache=True, environ={}) is None
    with pytest.raises(UsageError):
        resolve_path(no_cache=True, cache_only=True, environ={})
    with pytest.raises(UsageError, match="turned off"):
        resolve_path(cache_only=True, environ={"RELCHECK_CACHE": "off"})


def test_cli_cache_info_clear_and_flags(tmp_path: Path, server: Any, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    counter, url = server
    db = tmp_path / "c.sqlite"
    monkeypatch.setenv("RELCHECK_CACHE", str(db))
    monkeypatch.delenv("CI", raising=False)
    path = _pipeline(tmp_path / "p", url)
    code, _, err = cli("eval", path, "--out", tmp_path / "r1", "--no-progress", "--quiet")
    assert code == 0, err
    assert counter.take() == 2 * N
    code, _, _ = cli("eval", path, "--out", tmp_path / "r2", "--no-progress", "--quiet", "--no-cache")
    assert code == 0 and counter.take() == 2 * N
    code, _, _ = cli("eval", path, "--out", tmp_path / "r3", "--no-progress", "--quiet", "--cache-only")
    assert code == 0 and counter.take() == 0
    code, out, _ = cli("cache", "info")
    assert code == 0 and f"{2 * N} response(s)" in out and str(db) in out
    code, out, _ = cli("cache", "info", "--json")
    assert sorted((r["step"], r["entries"]) for r in json.loads(out)["by_step"]) == [("draft", N), ("final", N)]
    code, out, _ = cli("cache", "clear")
    assert code == 0 and f"deleted {2 * N}" in out
    assert clear_cache(str(db)) == 0
    code, _, err = cli("eval", path, "--out", tmp_path / "r4", "--no-progress", "--no-cache", "--cache-only")
    assert code == 2 and "cannot be combined" in err


def test_cached_attempts_do_not_count_toward_max_cost(tmp_path: Path, server: Any) -> None:
    counter, url = server
    db = str(tmp_path / "cache.sqlite")
    path = _pipeline(tmp_path / "p", url, price=True)
    first = run(path, tmp_path / "r1", cache=db, concurrency=1)
    assert counter.take() == 2 * N and first["run"]["cost_usd"] > 1  # every call is "expensive"
    # --max-cost 1: a live run would stop after its first unit; answered from the cache it runs them all
    second = run(path, tmp_path / "r2", cache=db, concurrency=1, max_cost=1.0)
    assert counter.take() == 0 and second["end_to_end"]["total"] == N and second["exit_code"] == 0
