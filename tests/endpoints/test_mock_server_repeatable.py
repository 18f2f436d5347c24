"""Two identical runs against one long-running mock server get identical results (#11).

The server keys each fault on the ``x-relcheck-attempt`` header relcheck sends, not on how
often it has seen a request, so its history does not change the second run.
"""

from __future__ import annotations

from typing import Any

from reliability_cli.mockserver import FaultConfig, run_in_thread

from .helpers import cases, one_step, run, write_pipeline

# timing figures, and the adaptive controller's (how fast answers came decides how far it grew)
_TIMING = ("latency", "duration", "started", "finished", "elapsed", "_ms", "_s", "per_min", "_peak", "concurrency")


def _untimed(value: Any) -> Any:
    """``value`` without timing figures, run ids or paths of the run directory."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if not any(t in k for t in _TIMING) and k not in ("id", "dir")}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def test_two_runs_against_one_server_process_are_identical(tmp_path):
    config = FaultConfig(
        status_rates={500: 0.15, 429: 0.05}, retry_after=0, fail_rate=0.15, malformed_rate=0.05, seed=5
    )
    with run_in_thread(config) as server:
        path = write_pipeline(tmp_path / "p", one_step(f"{server.base_url}/v1", attempts=3), cases(60))
        first = run(path, tmp_path / "one")
        seen_after_first = server.counts["requests"]
        second = run(path, tmp_path / "two")
        assert server.counts["requests"] == 2 * seen_after_first  # the same requests, again
    assert first["end_to_end"]["rate"] < 1.0  # faults were injected and some stayed
    assert _untimed(first) == _untimed(second)
    assert first["units"] == second["units"]


def test_the_draw_is_keyed_on_the_attempt_header_not_on_history():
    from reliability_cli.mockserver.faults import FaultPlan

    plan = FaultPlan(FaultConfig(fail_rate=0.5, seed=1))
    body = {"messages": [{"role": "user", "content": "hi"}]}
    headers = [f"c{i}/1/s/1/0/chained" for i in range(200)]
    once = [plan.decide(body, h).outcome for h in headers]
    again = [plan.decide(body, h).outcome for h in headers]
    assert once == again and {"ok", "wrong"} == set(once)
    # without the header, an identical body is drawn afresh each time it is seen
    bare = [plan.decide(body).outcome for _ in range(200)]
    assert {"ok", "wrong"} == set(bare)


def test_the_attempt_header_percent_encodes_each_part_as_quote_does():
    from urllib.parse import quote

    from reliability_cli.endpoints.base import AttemptKey, Request
    from reliability_cli.endpoints.http import attempt_identity

    ids = ["c000001", "a.b_c-d~e", "with/slash", "spa ce", "ünïcode", "per%cent", "", "lone\ud800surrogate", "a+b"]
    for case in ids:
        for step in ("answer", "step/one"):
            key = AttemptKey(case=case, trial=2, step=step, attempt=1)
            header = attempt_identity(Request(key, (), {}, {}, 1.0, phase="isolated"), resend=3)

            def q(text: str) -> str:
                return quote(text.encode("utf-8", "surrogatepass"), safe="")

            assert header == f"{q(case)}/2/{q(step)}/1/3/isolated"
            assert header.isascii() and header.count("/") == 5
