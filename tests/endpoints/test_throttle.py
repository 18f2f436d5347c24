"""429/503 with Retry-After are waited out and resent; quota exhaustion and 401 stop early."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import pytest

from reliability_cli.config.models import OpenAIEndpoint
from reliability_cli.endpoints import AttemptError, AttemptKey, Request
from reliability_cli.endpoints.http import build
from reliability_cli.endpoints.throttle import Pacer, quota_exhausted, retry_after_s
from reliability_cli.mockserver import FaultConfig, run_in_thread

from ..helpers import run_relcheck
from .helpers import (
    always,
    cases,
    completion,
    http_response,
    one_step,
    raw_server,
    read_request,
    run,
    step,
    write_pipeline,
)


def throttling_server(times: int, headers: dict[str, str], status: int = 429):
    """Answers ``status`` with ``headers`` to the first ``times`` requests, then 200."""
    seen = Counter[str]()

    async def handler(reader, writer):
        while True:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            seen["requests"] += 1
            if seen["requests"] <= times:
                writer.write(http_response(status, {"error": {"message": "slow down"}}, headers))
            else:
                writer.write(http_response(200, completion("ok")))
            await writer.drain()

    return handler, seen


async def call(url: str, max_wait: float = 120.0, timeout_s: float = 5.0):
    endpoint = build("llm", OpenAIEndpoint(type="openai", base_url=url, model="m"), {"max_throttle_wait": max_wait})
    request = Request(AttemptKey("c", 1, "s", 1), [{"role": "user", "content": "x"}], {}, {}, timeout_s)
    try:
        return await endpoint.call(request)
    finally:
        await endpoint.aclose()


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (429, {"retry-after": "0.3"}),
        (429, {"retry-after-ms": "300"}),
        (503, {"Retry-After": "0.3"}),
    ],
)
def test_throttling_is_waited_out_not_counted_in_latency_or_deadline(status, headers):
    handler, seen = throttling_server(2, headers, status)
    with raw_server(handler) as url:
        started = time.perf_counter()
        # The deadline (0.5 s) is shorter than the waits (0.6 s): waits are excluded from it.
        response = asyncio.run(call(url, timeout_s=0.5))
        elapsed = time.perf_counter() - started
    assert response.text == "ok" and response.throttled == 2 and seen["requests"] == 3
    assert elapsed >= 0.6
    assert (response.latency_ms or 0) < 300


def test_throttling_gives_up_after_max_throttle_wait():
    handler, seen = throttling_server(100, {"retry-after": "0.2"})
    with raw_server(handler) as url:
        started = time.perf_counter()
        with pytest.raises(AttemptError) as info:
            asyncio.run(call(url, max_wait=0.5))
        elapsed = time.perf_counter() - started
    assert info.value.kind == "http_429" and info.value.throttled == 2 and seen["requests"] == 3
    assert "max-throttle-wait" in info.value.reason
    assert 0.4 <= elapsed < 1.5


def test_429_without_retry_after_is_an_error_at_once():
    handler, seen = throttling_server(1, {})
    with raw_server(handler) as url, pytest.raises(AttemptError) as info:
        asyncio.run(call(url))
    assert info.value.kind == "http_429" and info.value.throttled == 0 and not info.value.fatal


def test_throttled_in_results_not_failures(tmp_path):
    config = FaultConfig(status_rates={429: 0.3, 503: 0.1}, retry_after=0.01, seed=2)
    with run_in_thread(config) as server:
        path = write_pipeline(tmp_path / "p", one_step(f"{server.base_url}/v1"), cases(40))
        results = run(path, tmp_path / "out", concurrency=8)
        injected = Counter(server.counts)
    s = step(results, "answer")
    assert s["throttled"] == injected["status_429"] + injected["status_503"] > 0
    assert s["passed"] == 40 and s["errors"] == 0 and s["attempts"] == 40


def test_insufficient_quota_is_never_waited_and_stops_the_run(tmp_path):
    with run_in_thread(FaultConfig(quota_exhausted=True, retry_after=1)) as server:
        path = write_pipeline(tmp_path / "p", one_step(f"{server.base_url}/v1", attempts=3), cases(30))
        started = time.perf_counter()
        results = run(path, tmp_path / "out", concurrency=4, max_throttle_wait=60)
        elapsed = time.perf_counter() - started
    assert elapsed < 5
    assert results["exit_code"] == 3
    assert results["run"]["stop_reason"] == "endpoint_rejected:llm:http_429"
    assert step(results, "answer")["throttled"] == 0


def test_401_everywhere_stops_with_exit_3_naming_the_endpoint(tmp_path):
    denies = always(401, {"error": {"message": "Incorrect API key provided"}})
    with raw_server(denies) as url:
        pipeline = one_step(url, attempts=3)
        pipeline["endpoints"]["llm"]["api_key_env"] = "RELCHECK_TEST_KEY"
        path = write_pipeline(tmp_path / "p", pipeline, cases(200))
        proc = run_relcheck(
            "eval",
            path,
            "--out",
            tmp_path / "out",
            "--no-progress",
            "--concurrency",
            "4",
            env={"RELCHECK_TEST_KEY": "sk-test-denied"},
        )
    assert proc.returncode == 3, proc.stderr
    assert "endpoint 'llm' rejected its first requests (http_401)" in proc.stdout + proc.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["end_to_end"]["total"] < 40  # stopped early, not 200 cases
    assert step(results, "answer")["attempts"] == step(results, "answer")["reached"]  # 401 is never retried


def test_retry_after_parsing():
    assert retry_after_s(429, {"retry-after": "2"}) == 2
    assert retry_after_s(429, {"retry-after": "1.5", "retry-after-ms": "250"}) == 0.25
    assert retry_after_s(503, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0
    assert retry_after_s(500, {"retry-after": "2"}) is None
    assert retry_after_s(429, {}) is None
    assert retry_after_s(429, {"retry-after": "soon"}) is None
    assert quota_exhausted(429, b'{"error": {"code": "insufficient_quota", "type": "insufficient_quota"}}')
    assert not quota_exhausted(429, b'{"error": {"code": "rate_limit_exceeded"}}')
    assert not quota_exhausted(500, b"insufficient_quota")


def test_rate_limit_rpm_paces_requests():
    async def go():
        pacer = Pacer(rpm=600)  # one every 0.1 s
        started = time.perf_counter()
        await asyncio.gather(*(pacer.wait() for _ in range(5)))
        return time.perf_counter() - started

    assert 0.35 <= asyncio.run(go()) < 0.8
