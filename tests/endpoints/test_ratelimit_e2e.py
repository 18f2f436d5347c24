"""End to end against the benchmark's rate-limited server on 127.0.0.1: counts, not times."""

from __future__ import annotations

from reliability_cli.reports.terminal import render_text
from reliability_cli.results.schema import from_dict

from ..helpers import load_bench
from .helpers import attempts, cases, one_step, run, write_pipeline

server = load_bench("ratelimit_server")


def test_default_flags_at_a_header_reported_limit(tmp_path):
    config = server.LimitConfig(rpm=3000, latency_ms=50, sigma=0.2, burst_s=0.5)  # 50/s, 25 of burst
    with server.in_thread(config) as url:
        path = write_pipeline(
            tmp_path / "p",
            one_step(f"{url}/v1", prompt="q {{ vars.q }}", checks=[{"type": "equals", "value": "ok"}]),
            cases(150),
        )
        results = run(path, tmp_path / "out")  # default flags: no --concurrency
        counts = server.stats(url)
    assert results["end_to_end"]["passed"] == 150
    assert results["run"]["concurrency"] == 256 and results["run"]["concurrency_cap"] is None
    [llm] = results["endpoints"]
    assert llm["name"] == "llm" and llm["type"] == "openai" and llm["limit_rpm"] == 3000
    assert llm["requests"] == counts["requests"] == 150 + counts["status_429_rate"]
    assert llm["status_429"] == counts["status_429_rate"] <= 15  # paced: without it, most requests are refused
    assert (
        llm["tokens"] == counts["tokens"] == sum(a["tokens_in"] + a["tokens_out"] for a in attempts(tmp_path / "out"))
    )
    assert 1 <= llm["concurrency_final"] <= llm["concurrency_peak"] <= 256 and llm["in_flight_peak"] <= 256
    assert list(results).index("endpoints") < list(results).index("units")
    text = render_text(from_dict(results))
    assert f"llm  {llm['requests_per_min']:,.0f} req/min (limit 3,000)" in text
    assert f"concurrency {llm['concurrency_final']} · {llm['status_429']} throttled" in text


def test_max_concurrency_is_a_ceiling_and_a_concurrency_cap_is_found(tmp_path):
    config = server.LimitConfig(concurrency_cap=6, latency_ms=40, sigma=0.1, style="none")
    with server.in_thread(config) as url:
        pipeline = one_step(
            f"{url}/v1", prompt="q", checks=[{"type": "equals", "value": "ok"}], extra={"max_concurrency": 12}
        )
        path = write_pipeline(tmp_path / "p", pipeline, cases(120))
        results = run(path, tmp_path / "out", max_throttle_wait=600)
        counts = server.stats(url)
    assert results["end_to_end"]["passed"] == 120
    assert results["run"]["concurrency"] == 12
    [llm] = results["endpoints"]
    assert llm["in_flight_peak"] <= 12 and llm["concurrency_peak"] <= 12
    assert counts["max_in_flight"] == 6  # the cap was reached
    assert llm["status_429"] == counts["status_429_cap"] <= 12  # and not hammered


def test_rate_limit_tpm_admits_on_estimates_corrected_by_usage(tmp_path):
    # No headers: only the client-side budget paces. 30,000 TPM = 500 tokens/s; each request is
    # estimated at 25 prompt + 100 max_tokens and uses 25 + 20.
    config = server.LimitConfig(tpm=30_000, latency_ms=30, sigma=0.1, style="none", completion_tokens=20)
    with server.in_thread(config) as url:
        pipeline = one_step(
            f"{url}/v1",
            prompt="x" * 100,
            checks=[{"type": "equals", "value": "ok"}],
            extra={"rate_limit_tpm": 30_000, "params": {"max_tokens": 100}},
        )
        path = write_pipeline(tmp_path / "p", pipeline, cases(60))
        results = run(path, tmp_path / "out", max_throttle_wait=600)
        counts = server.stats(url)
    assert results["end_to_end"]["passed"] == 60
    [llm] = results["endpoints"]
    assert llm["tokens"] == counts["tokens"] == 60 * 45
    assert llm["limit_tpm"] == 30_000
    assert counts["status_429_rate"] <= 6
