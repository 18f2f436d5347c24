"""Throttling and backoff are bounded (issue 10, item 19): ``Retry-After: 0`` or a date in the
past cannot cause a burst of resends, and absurd backoff values fail validation."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reliability_cli.endpoints.throttle import MAX_RESENDS, MIN_WAIT_S, throttle_wait_s

from ..endpoints.helpers import always, attempts, raw_server, run, write_pipeline


def test_the_wait_floor_doubles_per_resend():
    assert [throttle_wait_s(0.0, n) for n in range(4)] == [MIN_WAIT_S, 2 * MIN_WAIT_S, 4 * MIN_WAIT_S, 8 * MIN_WAIT_S]
    assert throttle_wait_s(5.0, 0) == 5.0  # a longer wait asked for is honoured
    assert throttle_wait_s(0.0, 10_000) > 1e9  # no overflow, just "too long"
    assert MAX_RESENDS <= 100


@pytest.mark.parametrize("retry_after", ["0", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_retry_after_zero_or_past_does_not_flood(tmp_path: Path, retry_after: str):
    seen: list = []
    body = {"error": {"message": "slow down", "type": "rate_limit"}}
    with raw_server(always(429, body, {"retry-after": retry_after}, seen)) as url:
        path = write_pipeline(
            tmp_path,
            {
                "name": "flood",
                "endpoints": {"llm": {"type": "openai", "base_url": url, "model": "m", "timeout_s": 5}},
                "steps": [{"id": "a", "endpoint": "llm", "prompt": "hi", "retry": {"max_attempts": 1}}],
            },
            [{"id": "c0"}],
        )
        run(path, tmp_path / "run", max_throttle_wait=1.0)
    (only,) = attempts(tmp_path / "run")
    assert only["error_kind"] == "http_429"
    # floors 0.05 + 0.1 + 0.2 + 0.4 s fit in the 1 s allowed; the next (0.8 s) does not
    assert len(seen) == 5, len(seen)
    assert only["throttled"] == 4


def _run_within(tmp_path: Path, status: int, body: dict, headers: dict, cases: int) -> tuple[list, dict]:
    """A one-step eval of ``cases`` against a server answering every request alike, with
    ``--max-throttle-wait 2``; (the requests the server saw, results.json). Fails if the run is
    still going after 120 s (the units held past what they may wait)."""
    seen: list = []
    with raw_server(always(status, body, headers, seen)) as url:
        path = write_pipeline(
            tmp_path,
            {
                "name": "held",
                "endpoints": {"llm": {"type": "openai", "base_url": url, "model": "m", "timeout_s": 5}},
                "steps": [{"id": "a", "endpoint": "llm", "prompt": "hi", "retry": {"max_attempts": 1}}],
            },
            [{"id": f"c{i}"} for i in range(cases)],
        )
        done = threading.Event()
        outcome: dict = {}

        def go() -> None:
            outcome["results"] = run(path, tmp_path / "run", max_throttle_wait=2.0)
            done.set()

        threading.Thread(target=go, daemon=True).start()
        assert done.wait(120), "the units were held past --max-throttle-wait"
    return seen, outcome["results"]


def test_a_retry_after_beyond_max_throttle_wait_fails_the_run_fast(tmp_path: Path):
    """A server asking for an hour pauses the endpoint, but no request is held past what it
    may wait: the one that got the 429 and every one queued behind the pause end as
    ``http_429`` at once, naming the wait, and only the first is ever sent (before the fix the
    other units slept through the hour)."""
    body = {"error": {"message": "hourly quota used", "type": "rate_limit"}}
    seen, results = _run_within(tmp_path, 429, body, {"retry-after": "3600"}, 6)
    assert len(seen) == 1  # the probe; the rest were refused without a request
    rows = attempts(tmp_path / "run")
    assert sorted(r["case"] for r in rows) == [f"c{i}" for i in range(6)]
    assert {r["error_kind"] for r in rows} == {"http_429"}
    first = [r for r in rows if "asks to wait 3,600.0 s" in r["reason"]]
    held = [r for r in rows if "not sent: the endpoint is paused for" in r["reason"]]
    assert len(first) == 1 and len(held) == 5
    assert all("--max-throttle-wait 2" in r["reason"] for r in rows)
    assert results["exit_code"] == 3  # every unit errored: over max_error_rate


def test_a_reported_budget_spent_for_hours_fails_the_run_fast(tmp_path: Path):
    """Rate-limit headers that leave nothing until a reset far away (here a hostile 1,000,000 h)
    do not hold the units queued behind them: each ends as ``http_429``, not sent."""
    body = {"choices": [{"message": {"role": "assistant", "content": "ok"}}]}
    spent = {
        "x-ratelimit-limit-requests": "1",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1000000h",
    }
    seen, _ = _run_within(tmp_path, 200, body, spent, 4)
    assert len(seen) == 1
    rows = sorted(attempts(tmp_path / "run"), key=lambda r: r["case"])
    assert [r["outcome"] for r in rows] == ["pass", "error", "error", "error"]
    assert all(
        r["error_kind"] == "http_429" and "not sent: the rate-limit budget the server reported is spent" in r["reason"]
        for r in rows[1:]
    )


@pytest.mark.parametrize(
    "key,value",
    [
        ("initial_s", 1e308),
        ("max_s", 1e308),
        ("initial_s", 3601),
        ("factor", 1e308),
        ("initial_s", ".inf"),
        ("max_s", ".nan"),
    ],
)
def test_absurd_backoff_fails_validation(cli, tmp_path: Path, key: str, value: object):
    (tmp_path / "cases.jsonl").write_text('{"id": "c0"}\n')
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"""version: 1
name: backoff
evalset: cases.jsonl
endpoints:
  sim: {{type: mock}}
defaults:
  retry:
    backoff: {{{key}: {value}}}
steps:
  - {{id: a, endpoint: sim, prompt: hi}}
""")
    code, out, err = cli("validate", path)
    assert code == 2, err
    assert f"defaults.retry.backoff.{key}" in err and f"{path}:8" in err, err


def test_sane_backoff_still_validates(cli, tmp_path: Path):
    (tmp_path / "cases.jsonl").write_text('{"id": "c0"}\n')
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "version: 1\nname: ok\nevalset: cases.jsonl\nendpoints:\n  sim: {type: mock}\n"
        "defaults:\n  retry:\n    backoff: {initial_s: 3600, max_s: 3600, factor: 10}\n"
        "steps:\n  - {id: a, endpoint: sim, prompt: hi}\n"
    )
    code, out, err = cli("validate", path)
    assert code == 0, err
