"""Every fault the mock server injects lands in results.json under the right error_kind.

Real sockets on 127.0.0.1: the mock server runs in a background thread, relcheck runs
in-process. Counts must match what the server says it injected, unit for unit.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from reliability_cli.mockserver import FaultConfig, run_in_thread

from .helpers import attempts, cases, free_port, one_step, run, step, write_pipeline


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_each_fault_kind_is_counted_exactly(tmp_path, monkeypatch, transport):
    monkeypatch.setenv("RELCHECK_HTTP_TRANSPORT", transport)
    config = FaultConfig(
        status_rates={500: 0.08, 429: 0.08, 401: 0.0},
        retry_after=0.01,
        malformed_rate=0.06,
        drop_rate=0.06,
        hang_rate=0.03,
        fail_rate=0.06,
        seed=1,
    )
    n = 150
    # The deadline is far beyond any answered request's time, even on a machine whose cores are
    # all busy: only the injected hangs reach it. (With a short deadline, a slow machine made an
    # answered request time out on the client, or abandoned one before the server read it, so
    # the server's counts and the client's stopped agreeing: the test measured the machine.)
    timeout_s = 5.0
    with run_in_thread(config) as server:
        path = write_pipeline(tmp_path / "p", one_step(f"{server.base_url}/v1", timeout_s=timeout_s), cases(n))
        results = run(path, tmp_path / "out", concurrency=32)
        injected = Counter(server.counts)

    s = step(results, "answer")
    # Units: every case exactly once.
    assert [u["case"] for u in results["units"]] == [f"c{i}" for i in range(n)]
    assert s["reached"] == n
    # Attempts: every request the server saw is one attempt, except throttled resends.
    assert injected["requests"] == s["attempts"] + s["throttled"]
    assert s["throttled"] == injected["status_429"] > 0
    assert s["error_kinds"] == {
        k: v
        for k, v in {
            "http_500": injected["status_500"],
            "parse": injected["malformed"],
            "protocol": injected["drop"],
            "timeout": injected["hang"],
        }.items()
        if v
    }
    assert all(injected[k] > 0 for k in ("status_500", "malformed", "drop", "hang", "wrong"))
    assert s["attempt_outcomes"] == {
        "pass": injected["ok"],
        "fail": injected["wrong"],
        "error": sum(s["error_kinds"].values()),
    }
    assert s["passed"] == injected["ok"]
    # The journal agrees line for line; timeouts ended at the deadline, not before it.
    rows = attempts(tmp_path / "out")
    assert len(rows) == n
    assert sum(r["throttled"] for r in rows) == injected["status_429"]
    hangs = [r for r in rows if r["error_kind"] == "timeout"]
    assert len(hangs) == injected["hang"] and all(r["latency_ms"] >= 0.95 * timeout_s * 1000 for r in hangs)


@pytest.mark.parametrize("n", [3, 40])
def test_an_endpoint_refusing_from_the_start_is_bad_input_naming_base_url(tmp_path, cli, n):
    path = write_pipeline(tmp_path / "p", one_step(f"http://127.0.0.1:{free_port()}/v1", attempts=2), cases(n))
    base_url_line = next(i for i, line in enumerate(path.read_text().splitlines(), 1) if "base_url:" in line)
    code, stdout, stderr = cli("eval", path, "--out", tmp_path / "out", "--concurrency", "4")
    assert code == 2
    assert f"pipeline.yaml:{base_url_line}:" in stderr and "endpoints.llm.base_url" in stderr
    assert "endpoint 'llm' is unreachable: connection refused by 127.0.0.1" in stderr
    assert ("each of its first 20 requests" if n == 40 else f"all {2 * n} of its requests") in stderr
    assert "Traceback" not in stdout + stderr
    # No verdict was written; what was tried stays in the journal, classified as connect.
    assert not (tmp_path / "out" / "results.json").exists()
    rows = attempts(tmp_path / "out")
    assert rows and {r["error_kind"] for r in rows} == {"connect"}  # connect errors are retried
    assert len(rows) == 2 * n if n == 3 else 20 <= len(rows) < 2 * n


def test_a_server_lost_mid_run_is_counted_as_connect_errors(tmp_path):
    import threading

    from reliability_cli.runner import RunOptions, run_eval

    server_ctx = run_in_thread()
    server = server_ctx.__enter__()
    stopped = threading.Event()

    def on_unit(record: dict) -> None:  # after 30 units the server goes away: the rest cannot connect
        done.append(record)
        if len(done) == 30:
            stopper = threading.Thread(target=server_ctx.__exit__, args=(None, None, None))
            stopper.start()
            stopper.join(30)  # (its own loop, in its own thread)
            stopped.set()

    done: list[dict] = []
    try:
        path = write_pipeline(tmp_path / "p", one_step(f"{server.base_url}/v1"), cases(80))
        outcome = run_eval(str(path), RunOptions(out=str(tmp_path / "out"), concurrency=1), on_unit=on_unit)
    finally:
        if not stopped.is_set():
            server_ctx.__exit__(None, None, None)
    s = step(outcome.results.to_dict(), "answer")
    assert s["passed"] == 30
    kinds = s["error_kinds"]  # (the first request may still go out on a kept-alive connection: protocol)
    assert sum(kinds.values()) == 50 and kinds["connect"] >= 49 and set(kinds) <= {"connect", "protocol"}
    assert outcome.exit_code == 3 and outcome.results.to_dict()["run"]["stop_reason"] is None  # above max_error_rate


def test_retries_recover_injected_errors(tmp_path):
    config = FaultConfig(status_rates={500: 0.2}, drop_rate=0.1, seed=5)
    with run_in_thread(config) as server:
        path = write_pipeline(tmp_path / "p", one_step(f"{server.base_url}/v1", attempts=4), cases(60))
        results = run(path, tmp_path / "out", concurrency=16)
        injected = Counter(server.counts)
    s = step(results, "answer")
    assert s["attempts"] == injected["requests"]
    assert s["retry_recovered"] > 0
    assert s["passed"] + s["errors"] == 60


def test_tokens_and_cost_from_usage(tmp_path):
    with run_in_thread() as server:
        pipeline = one_step(f"{server.base_url}/v1", extra={"price": {"input": 1000.0, "output": 2000.0}})
        path = write_pipeline(tmp_path / "p", pipeline, cases(4))
        results = run(path, tmp_path / "out")
    s = step(results, "answer")
    rows = attempts(tmp_path / "out")
    tokens_in = sum(r["tokens_in"] for r in rows)
    tokens_out = sum(r["tokens_out"] for r in rows)
    assert s["tokens"] == {"input": tokens_in, "output": tokens_out} and tokens_out == 4
    assert s["cost_usd"] == pytest.approx((tokens_in * 1000 + tokens_out * 2000) / 1e6)
    assert s["passed"] == 4


def test_tool_calls_are_kept_for_checks(tmp_path):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with run_in_thread() as server:
        base = server.base_url
        pipeline = {
            "name": "tools",
            "endpoints": {
                "oa": {"type": "openai", "base_url": f"{base}/v1", "model": "m", "params": {"tools": tools}},
                "an": {
                    "type": "anthropic",
                    "base_url": base,
                    "model": "m",
                    "params": {"tools": [{"name": "lookup", "input_schema": {"type": "object"}}]},
                },
            },
            "steps": [
                {
                    "id": s_id,
                    "endpoint": ep,
                    "prompt": 'CALL: lookup {"id": "{{ vars.q }}", "n": 2}',
                    "checks": [{"type": "tool-call", "name": "lookup", "arguments": {"id": "{{ vars.q }}"}}],
                }
                for s_id, ep in (("openai_step", "oa"), ("anthropic_step", "an"))
            ],
        }
        path = write_pipeline(tmp_path / "p", pipeline, cases(3))
        results = run(path, tmp_path / "out")
    assert results["end_to_end"]["passed"] == 3, json.dumps(results["steps"], indent=1)[:2000]
