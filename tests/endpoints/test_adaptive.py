"""The adaptive controller on a fake clock: it grows to the limit, backs off on 429, pauses the
endpoint on Retry-After, honours each header style, never exceeds max_concurrency, recovers
after a burst of 503s, and accounts tokens against reported usage. Exact: virtual time only."""

from __future__ import annotations

import asyncio

import pytest

from reliability_cli.endpoints.adaptive import BLIND_MAX_WINDOW, INITIAL_WINDOW, PausedTooLong
from reliability_cli.endpoints.ratelimit_headers import parse_duration, read_limits

from .fakeclock import FakeClock, Provider, controller, drive


def simulate(units: int, workers: int = 300, **provider_options):
    clock = FakeClock()
    options = {k: provider_options.pop(k) for k in ("ceiling", "rpm", "tpm") if k in provider_options}
    ctl = controller(clock, **options)
    provider = Provider(clock, **provider_options)
    start = clock.now()
    run = asyncio.run(clock.run(drive(ctl, provider, units, workers)))
    return ctl, provider, run, clock.now() - start


def test_durations_and_header_styles():
    assert parse_duration("6m0s") == 360
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration("0.5") == 0.5
    assert parse_duration("soon") is None and parse_duration("5x") is None and parse_duration("") is None
    openai = read_limits(
        {
            "x-ratelimit-limit-requests": "2400",
            "x-ratelimit-remaining-requests": "7",
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-limit-tokens": "90000",
            "x-ratelimit-remaining-tokens": "89000",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    assert openai["requests"].limit == 2400 and openai["requests"].remaining == 7 and openai["requests"].reset_s == 1
    assert openai["tokens"].reset_s == 360
    anthropic = read_limits(
        {
            "anthropic-ratelimit-output-tokens-limit": "8000",
            "anthropic-ratelimit-output-tokens-remaining": "10",
            "anthropic-ratelimit-output-tokens-reset": "2026-01-01T00:00:30Z",
        },
        wall_now=1767225600.0,
    )  # 2026-01-01T00:00:00Z
    assert anthropic["output_tokens"].remaining == 10 and anthropic["output_tokens"].reset_s == 30
    assert read_limits({"content-type": "application/json"}) == {}


@pytest.mark.parametrize("style", ["openai", "anthropic"])
def test_paces_to_a_header_reported_rate_with_few_429s(style):
    # 1,200 RPM = 20/s with one second of burst; 300 ms latency; 300 workers want it all at once.
    ctl, provider, run, elapsed = simulate(400, rpm=1200, style=style)
    assert run.done == 400
    assert provider.counts["429"] <= 0.02 * run.sent
    ideal = 400 / 20
    assert ideal * 0.9 <= elapsed <= ideal * 1.10
    assert ctl.figures()["limit_rpm"] == 1200


def test_grows_to_a_concurrency_cap_and_settles_below_it():
    # No rate headers: a provider that rejects beyond 20 in flight (429, Retry-After 1 s).
    ctl, provider, run, elapsed = simulate(2000, cap=20, latency_s=0.3)
    assert run.done == 2000
    assert provider.max_in_flight == 20  # it reached the cap
    assert provider.counts["429"] <= 0.02 * run.sent  # and stayed near it without hammering
    assert 16 <= ctl.window <= 21
    assert elapsed <= 1.35 * 2000 * 0.3 / 20


def test_never_exceeds_max_concurrency_and_grows_to_it():
    ctl, provider, run, _ = simulate(3000, latency_s=0.3, ceiling=50)
    assert run.max_in_flight == 50 and provider.max_in_flight == 50
    assert ctl.window == 50 and ctl.figures()["concurrency_peak"] == 50
    ctl, provider, run, _ = simulate(3000, latency_s=0.3, ceiling=50, cap=30)
    assert run.max_in_flight <= 50


def test_slow_start_doubles_per_round_trip():
    clock = FakeClock()
    ctl = controller(clock)
    provider = Provider(clock, latency_s=0.4)  # answers before the blind phase starts
    seen = []
    asyncio.run(clock.run(drive(ctl, provider, 8 + 16 + 32, 200, on_answer=lambda r: seen.append(ctl.window))))
    assert seen[0] == INITIAL_WINDOW + 1  # the probe's answer opens the window
    assert seen[7] == 2 * INITIAL_WINDOW and seen[8 + 16 - 1] == 4 * INITIAL_WINDOW


def test_a_429_halves_the_window_once_per_round_trip():
    async def go():
        clock = FakeClock()
        ctl = controller(clock)
        probe = await ctl.acquire()
        assert ctl.window == 1  # the first request goes alone
        ctl.release(probe, status=200)
        opened = ctl.limit  # its answer opens the window (and, the window being full, grows it by one)
        assert opened == INITIAL_WINDOW + 1
        tickets = [await ctl.acquire() for _ in range(8)]
        for t in tickets[:4]:
            ctl.release(t, status=200)
        grown = ctl.limit  # nobody waited for room: the window was not what bound, so it did not grow
        ctl.release(tickets[4], status=429)  # no Retry-After: an error, still a congestion signal
        after_first = ctl.limit
        ctl.release(tickets[5], status=429)  # sent before that decrease: the same congestion
        return grown, after_first, ctl.limit, ctl.paused_until

    grown, after_first, after_second, paused = asyncio.run(go())
    assert grown == INITIAL_WINDOW + 1
    assert after_first == pytest.approx(grown / 2) and after_second == after_first
    assert paused < 0  # no Retry-After: no pause


def test_retry_after_pauses_the_whole_endpoint_with_jitter():
    clock = FakeClock()

    async def go():
        ctl = controller(clock)
        first = await ctl.acquire()
        start = clock.now()
        ctl.release(first, status=429, retry_after=2.0)
        admitted = []

        async def one():
            await ctl.acquire()
            admitted.append(clock.now() - start)

        await asyncio.gather(*(one() for _ in range(3)))
        return admitted

    admitted = asyncio.run(clock.run(go()))
    assert len(admitted) == 3
    assert all(2.0 <= t <= 2.0 + 0.2 for t in admitted)  # nobody goes before the pause ends (jitter ≤ 10%)


def test_a_pause_longer_than_a_request_may_wait_fails_it_at_once():
    # Retry-After: 3600 (an exhausted hourly quota) with 120 s of --max-throttle-wait left: the
    # waiter is told at once, on the virtual clock, instead of sleeping through the hour.
    clock = FakeClock()

    async def go():
        ctl = controller(clock)
        first = await ctl.acquire()
        ctl.release(first, status=503, retry_after=3600.0)
        start = clock.now()
        with pytest.raises(PausedTooLong) as info:
            await ctl.acquire(max_pause=120.0)
        refused_after = clock.now() - start
        # a request that may wait that long waits it out, as before
        await ctl.acquire(max_pause=4000.0)
        return info.value, refused_after, clock.now() - start

    refused, refused_after, admitted_after = asyncio.run(clock.run(go(), limit_s=7200.0))
    assert refused_after == 0.0
    assert refused.status == 503 and 3600.0 <= refused.remaining_s <= 3601.0
    assert 3600.0 <= admitted_after <= 3601.0


def test_a_reported_budget_spent_for_longer_than_a_request_may_wait_fails_it_at_once():
    # The provider's headers say: 1 request, none left, reset in 10 hours. The next request is
    # refused at once rather than paced into the next day; the user's own rate_limit_rpm of
    # 1/minute is a pace asked for, and is waited out whatever the budget.
    clock = FakeClock()
    spent = {
        "x-ratelimit-limit-requests": "1",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "10h0m0s",
    }

    async def go():
        ctl = controller(clock)
        ctl.release(await ctl.acquire(), status=200, headers=spent)
        start = clock.now()
        with pytest.raises(PausedTooLong) as info:
            await ctl.acquire(max_pause=120.0)
        refused_after = clock.now() - start
        own = controller(clock, rpm=0.5)  # one request every 120 s
        own.release(await own.acquire(max_pause=1.0), status=200)
        before = clock.now()
        await own.acquire(max_pause=1.0)
        return info.value, refused_after, clock.now() - before

    refused, refused_after, paced = asyncio.run(clock.run(go()))
    assert refused_after == 0.0 and refused.status is None
    assert refused.remaining_s == pytest.approx(36_000.0)
    assert paced == pytest.approx(120.0)


def test_recovers_after_a_burst_of_503s():
    clock = FakeClock()
    ctl = controller(clock, ceiling=40)
    provider = Provider(clock, latency_s=0.3, outage=(1005.0, 1007.0))
    run = asyncio.run(clock.run(drive(ctl, provider, 3000, 300)))
    before = [w for t, w in run.windows if t < 1005.0]
    during = [w for t, w in run.windows if 1005.0 <= t < 1007.5]
    assert max(before) == 40
    assert min(during) <= 5  # backed off
    assert provider.counts["503"] > 0
    recovered = [t for t, w in run.windows if t > 1007.0 and w >= 36]
    assert recovered and recovered[0] - 1007.0 <= 20.0  # back near the ceiling within 20 s


def test_rpm_and_tpm_budgets_and_usage_correction():
    clock = FakeClock()

    async def go():
        ctl = controller(clock, rpm=600, tpm=6000)  # 10 requests/s; 100 tokens/s, 100 of burst
        t0 = clock.now()
        a = await ctl.acquire(ctl.estimate(200, 50))  # 50 + 50 tokens; the burst: at once
        b = await ctl.acquire(ctl.estimate(200, 50))  # a whole second of tokens later
        waited_b = clock.now() - t0
        level = ctl.budgets["tpm"].level
        ctl.usage(b, 40, 10)  # it used 50 of the 100 it was charged: 50 come back
        refunded = ctl.budgets["tpm"].level - level
        ctl.usage(a, 40, 10)
        return waited_b, refunded, ctl.stats.tokens, ctl.prompt_ratio

    waited_b, refunded, tokens, ratio = asyncio.run(clock.run(go()))
    assert waited_b == pytest.approx(1.0)
    assert refunded == pytest.approx(50.0)
    assert tokens == 100
    assert ratio < 1.0  # 40 reported prompt tokens for an estimate of 50: later estimates shrink


def test_estimates_use_characters_over_four_plus_max_tokens():
    ctl = controller(FakeClock())
    cost = ctl.estimate(400, 150)
    assert cost.prompt == 100 and cost.output == 150 and cost.total == 250
    assert ctl.estimate(400, None).output == 256  # no max_tokens: the default until usage teaches


def test_replay_mode_counts_but_never_waits():
    async def go():
        clock = FakeClock()
        ctl = controller(clock, rpm=1, enabled=False)
        for _ in range(5):
            ctl.release(await ctl.acquire(), status=429, retry_after=60)
        return clock.now(), ctl.figures()

    now, figures = asyncio.run(go())
    assert now == 1000.0 and figures["requests"] == 5 and figures["status_429"] == 5


def record_sends(ctl, clock):
    """The virtual time (from the start) of every request the controller admits."""
    sent_at = []
    real_admit = ctl._admit

    def admit(cost):
        sent_at.append(clock.now() - 1000.0)
        return real_admit(cost)

    ctl._admit = admit
    return sent_at


def test_with_no_answer_yet_the_window_grows_with_time():
    # 2 s per answer and no limit: the probe alone, then 16 in flight after 0.5 s, doubling every
    # 0.5 s, up to BLIND_MAX_WINDOW; the first answer ends the phase (then slow start per answer).
    clock = FakeClock()
    ctl = controller(clock)
    provider = Provider(clock, latency_s=2.0)
    sent_at = record_sends(ctl, clock)
    asyncio.run(clock.run(drive(ctl, provider, 400, 400)))
    before_first_answer = [t for t in sent_at if t < 2.0]
    assert [sum(1 for t in before_first_answer if t == at) for at in (0.0, 0.5, 1.0, 1.5)] == [1, 15, 16, 32]
    assert len(before_first_answer) == 64 <= BLIND_MAX_WINDOW  # the doubling stops at its top or an answer


def test_the_blind_phase_respects_max_concurrency():
    ctl, provider, run, _ = simulate(300, latency_s=2.0, ceiling=20)
    assert run.max_in_flight == 20 and provider.max_in_flight == 20


def test_a_slow_rate_limited_provider_is_served_near_the_ideal():
    # 2,400 RPM (40/s, one second of burst) at 2 s per answer, 600 requests: the ideal is 15 s.
    # A client that knew the limit from the start would send its last request at 14 s (40 at
    # once, then 40/s) and have its answer at 16 s (1.067x); with 8 in flight for the whole first
    # round trip the last request left at 15.8 s (1.19x).
    clock = FakeClock()
    ctl = controller(clock)
    provider = Provider(clock, rpm=2400, latency_s=2.0)
    sent_at = record_sends(ctl, clock)
    run = asyncio.run(clock.run(drive(ctl, provider, 600, 600)))
    assert run.done == 600
    assert provider.counts["429"] <= 0.02 * run.sent
    assert max(sent_at) <= 14.0 + 0.8
    assert clock.now() - 1000.0 <= 1.12 * 15.0


def test_a_429_from_a_known_concurrency_cap_does_not_pause_the_endpoint():
    # A gateway capping 16 in flight (429, Retry-After 1 s, no rate headers): the first 429
    # pauses the endpoint (its cause is unknown); later probes above the learned cap only
    # make that one request wait, so the pauses add up to one Retry-After and its jitter.
    ctl, provider, run, elapsed = simulate(2000, cap=16, latency_s=0.3)
    assert run.done == 2000
    assert provider.counts["429"] >= 2  # it probed above the cap more than once
    assert ctl.figures()["paused_s"] <= 1.1
    assert elapsed <= 1.10 * 2000 * 0.3 / 16


def test_the_first_request_probes_so_a_small_burst_is_not_overrun():
    # A provider whose budget holds less than the initial window (600 RPM with 0.4 s of burst:
    # 4 requests): sent blind, 8 requests at once would draw 4 rejections before any header
    # was read. The probe's answer reports what is left, and the rest are paced by it.
    clock = FakeClock()
    ctl = controller(clock)  # nothing configured: all it knows comes from the provider's headers
    provider = Provider(clock, rpm=600, burst_s=0.4)
    run = asyncio.run(clock.run(drive(ctl, provider, 100, 100)))
    elapsed = clock.now() - 1000.0
    assert run.done == 100
    assert provider.counts["429"] == 0
    assert elapsed <= 1.10 * 100 / 10
