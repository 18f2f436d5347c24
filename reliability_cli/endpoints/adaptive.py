"""The adaptive controller of one HTTP endpoint: how many requests may be in flight, and when
the next one may be sent.

Every request of an ``openai``, ``anthropic`` or ``http`` endpoint passes :meth:`acquire`
before it is sent and :meth:`release` when it ends. The controller holds three things:

- **A concurrency window** (AIMD). The first request goes alone (a *probe*): its answer
  carries the provider's rate-limit headers, so the requests after it are paced by what the
  provider has left instead of spending a small burst blind (a token budget of one second
  is gone after four long prompts). The first answer of any kind opens the window to
  :data:`INITIAL_WINDOW`; in slow start it then grows by one per success while the window is
  full (doubling per round trip). A slow provider is not left with one request in flight:
  once :data:`BLIND_AFTER_S` pass with no answer, the window is :data:`INITIAL_WINDOW` twice
  over and doubles every :data:`BLIND_STEP_S` up to :data:`BLIND_MAX_WINDOW` (2 s per answer
  needs 80 in flight at 2,400 RPM); the first answer (a 429 comes back at once, with its
  headers) ends that phase. A congestion
  signal — a 429 or 503, or a ``connect``/``protocol`` error — halves it (at most once per
  round trip: responses to requests sent before the last decrease do not decrease it again)
  and ends slow start. It then grows back quickly (one per success) up to just below the
  level where congestion happened, holds there for a plateau (2 s, doubled each time
  congestion recurs at about the same level, up to 60 s: a provider's concurrency cap is
  probed rarely), and beyond it grows additively (one per round trip). A 429 whose rate-limit
  headers say the budget is exhausted is a rate signal, not a concurrency one: the window
  grows straight back to where it was. The window never exceeds the endpoint's
  ``max_concurrency`` (the ceiling, default :data:`DEFAULT_CEILING`) and grows only while it
  is what binds, so it settles near rate × latency.
- **Budgets** (token buckets): ``rate_limit_rpm`` (one request every ``60/rpm`` s, no burst),
  ``rate_limit_tpm`` (tokens per minute, one second's worth of burst), and the provider's own
  budgets from its rate-limit headers (:mod:`.ratelimit_headers`), refilled at ``limit / 60``
  per second and re-read from every response (corrected for the requests sent since that
  request left). A request is admitted against an estimate of its tokens (:class:`Cost`),
  corrected by the usage its response reports (:meth:`usage`).
- **A pause.** A 429/503 with ``Retry-After`` pauses the whole endpoint until then, plus a
  jitter of up to 10% (at most 1 s), instead of each waiter retrying on its own. The one
  exception is a provider's concurrency cap once it is known: a 429 without rate-limit
  headers to a request sent while more were in flight than the level at which a 429 came
  before is the window probing above the cap — it halves the window, and only that request
  waits its ``Retry-After``. A request that cannot wait that long (its ``max_pause``, what is
  left of ``--max-throttle-wait``) is not kept waiting: :meth:`acquire` raises
  :class:`PausedTooLong` at once, so a provider asking for an hour fails the run's requests
  fast instead of holding them all for the hour. The same holds for the budgets the
  provider's headers report (``remaining: 0`` until a reset hours away).

Waiters are served in order (one FIFO gate). Time comes from an injectable :class:`Clock`,
so tests drive the controller with a fake one.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .ratelimit_headers import Limit, read_limits

__all__ = [
    "DEFAULT_CEILING",
    "INITIAL_WINDOW",
    "AdaptiveController",
    "Clock",
    "Cost",
    "PausedTooLong",
    "SystemClock",
    "estimate_cost",
    "max_jitter",
]

DEFAULT_CEILING = 256  # in flight per endpoint when max_concurrency is not set: 6,000 RPM × 2 s is 200
PROBE_WINDOW = 1  # in flight until the endpoint first answers (or BLIND_AFTER_S pass)
INITIAL_WINDOW = 8  # once it has
BLIND_AFTER_S = 0.5  # with no answer yet after this long, the window starts growing with time ...
BLIND_STEP_S = 0.5  # ... doubling this often ...
BLIND_MAX_WINDOW = 96  # ... up to this (2,400 RPM × 2 s needs 80 in flight)
BETA = 0.5
PLATEAU_S = 5.0
MAX_PLATEAU_S = 60.0
CONGESTION_STATUS = frozenset({429, 503, 529})
CONGESTION_KINDS = frozenset({"connect", "protocol"})
DEFAULT_OUTPUT_TOKENS = 256.0  # output estimate when a request sets no max_tokens, until usage says more


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Cost:
    """A request's estimated tokens: its prompt and its most output."""

    prompt: float = 0.0
    output: float = 0.0
    raw_prompt: float = 0.0  # characters / 4, before the correction learnt from usage

    @property
    def total(self) -> float:
        return self.prompt + self.output


def estimate_cost(
    prompt_chars: int, max_tokens: int | None, ratio: float = 1.0, output_mean: float = DEFAULT_OUTPUT_TOKENS
) -> Cost:
    """Prompt characters / 4 (scaled by what usage has shown so far) + ``max_tokens`` (or the
    mean output seen so far when the request sets none). No tokenizer is used."""
    raw = float(math.ceil(prompt_chars / 4))
    return Cost(raw * ratio, float(max_tokens) if max_tokens else output_mean, raw)


class Bucket:
    """``rate`` per second up to ``capacity``. A request is admitted when the level covers its
    cost (or the whole capacity, for one bigger than that); the level may go below zero."""

    def __init__(self, rate: float, capacity: float, now: float, level: float | None = None) -> None:
        self.rate = rate
        self.capacity = capacity
        self.level = capacity if level is None else level
        self.at = now

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
            self.at = now

    def wait_s(self, cost: float, now: float) -> float:
        self._refill(now)
        need = min(cost, self.capacity)
        if self.level >= need - 1e-6:  # float rounding must not leave a wait too short to advance time
            return 0.0
        return (need - self.level) / self.rate if self.rate > 0 else 3600.0

    def take(self, cost: float, now: float) -> None:
        self._refill(now)
        self.level -= cost

    def give(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level = min(self.capacity, self.level + amount)


_RESOURCES = ("requests", "tokens", "input_tokens", "output_tokens")


def _amounts(cost: Cost) -> dict[str, float]:
    return {"requests": 1.0, "tokens": cost.total, "input_tokens": cost.prompt, "output_tokens": cost.output}


def max_jitter(retry_after: float) -> float:
    """The most a pause of ``retry_after`` seconds is lengthened by (10%, at most 1 s)."""
    return min(0.1 * retry_after, 1.0)


class PausedTooLong(Exception):
    """The endpoint is paused (a ``Retry-After`` of an HTTP ``status``), or its reported budgets
    are spent (``status`` None), for longer than the request may wait."""

    def __init__(self, remaining_s: float, status: int | None) -> None:
        super().__init__(remaining_s)
        self.remaining_s = remaining_s
        self.status = status


@dataclass
class Ticket:
    """One admitted request."""

    sent_at: float
    seq: int  # how many requests had been admitted, this one included
    cost: Cost
    in_flight: int  # including this one, when it was sent
    saturated: bool  # the window was full when it was sent
    charged: dict[str, float] = field(default_factory=dict)  # totals charged so far, this one included


@dataclass
class _Stats:
    requests: int = 0
    status_429: int = 0
    status_503: int = 0
    congestion_errors: int = 0
    tokens: int = 0
    first_sent: float | None = None
    last_done: float | None = None
    in_flight_peak: int = 0
    window_peak: int = 0
    paused_s: float = 0.0


class AdaptiveController:
    """One endpoint's window, budgets and pause (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        ceiling: int | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        enabled: bool = True,
        wall_clock: Any = time.time,
    ) -> None:
        self.name = name
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.enabled = enabled
        self.ceiling = ceiling or DEFAULT_CEILING
        self.limit = float(min(PROBE_WINDOW, self.ceiling))
        self.in_flight = 0
        self.slow_start = True
        self.recover_to: float | None = None
        self.plateau_until = 0.0
        self.plateau_s = PLATEAU_S
        self.last_cap: float | None = None
        self.last_decrease = -math.inf
        self.paused_until = -math.inf
        self.paused_by: int | None = None  # the status whose Retry-After set paused_until
        self.rpm, self.tpm = rpm, tpm
        now = self.clock.now()
        self.budgets: dict[str, Bucket] = {}
        if rpm:
            self.budgets["rpm"] = Bucket(rpm / 60.0, 1.0, now)
        if tpm:
            self.budgets["tpm"] = Bucket(tpm / 60.0, tpm / 60.0, now)
        self.provider: dict[str, Bucket] = {}  # from rate-limit headers, by resource
        self.provider_limits: dict[str, float] = {}
        self._most_remaining: dict[str, float] = {}
        self._charged = dict.fromkeys(_RESOURCES, 0.0)
        self._wall = wall_clock
        self._gate = asyncio.Lock()
        self._slot_wanted = False  # a request is waiting for room in the window
        self._decrease_seq = 0  # requests admitted when the window was last decreased
        self._freed = asyncio.Event()
        self._answered = False  # any request has ended (an answer, an error)
        self.stats = _Stats()
        self.prompt_ratio = 1.0  # reported prompt tokens / chars-per-4 estimate (running mean)
        self.output_mean = DEFAULT_OUTPUT_TOKENS
        self.latency_s: float | None = None  # running mean of successful requests' time in flight

    def estimate(self, prompt_chars: int, max_tokens: int | None) -> Cost:
        """A request's :class:`Cost`, with what this endpoint's usage has taught so far."""
        return estimate_cost(prompt_chars, max_tokens, self.prompt_ratio, self.output_mean)

    @property
    def window(self) -> int:
        return max(1, int(self.limit))

    # ---------------------------------------------------------------- admission

    async def acquire(self, cost: Cost = Cost(), max_pause: float | None = None) -> Ticket:
        """Wait until the endpoint is not paused, the window has room and every budget covers
        ``cost``; then count the request as in flight.

        Raises:
            PausedTooLong: the endpoint is paused for longer than ``max_pause`` seconds, or the
                budgets its rate-limit headers reported leave nothing for longer than that
                (``status`` None). The user's own ``rate_limit_rpm``/``_tpm`` pace is waited
                for whatever it takes.
        """
        if self.enabled:
            async with self._gate:
                while True:
                    now = self.clock.now()
                    paused, reported = self.paused_until - now, self._provider_wait(cost, now)
                    if max_pause is not None and paused > max_pause:
                        raise PausedTooLong(paused, self.paused_by)
                    if max_pause is not None and reported > max_pause:
                        raise PausedTooLong(reported, None)
                    wait = max(paused, reported, self._own_budget_wait(cost, now))
                    if wait > 0:
                        if self.paused_until > now:
                            self.stats.paused_s += min(wait, self.paused_until - now)
                        await self.clock.sleep(wait)
                        continue
                    grow_at = self._grow_blind(now)
                    if self.in_flight >= self.window:
                        self._freed.clear()
                        self._slot_wanted = True
                        try:
                            await self._wait_freed(None if grow_at is None else grow_at - now)
                        finally:
                            self._slot_wanted = False
                        continue
                    break
        return self._admit(cost)

    def _grow_blind(self, now: float) -> float | None:
        """Before any answer: the window for the time that has passed since the first request,
        and when it next grows (``None`` once an answer came, or at the top)."""
        first = self.stats.first_sent
        if self._answered or first is None:
            return None
        top = float(min(BLIND_MAX_WINDOW, self.ceiling))
        elapsed = now - first
        if elapsed >= BLIND_AFTER_S:
            steps = int((elapsed - BLIND_AFTER_S) / BLIND_STEP_S) + 1
            self.limit = max(self.limit, min(top, INITIAL_WINDOW * 2.0**steps))
        else:
            steps = 0
        if self.limit >= top:
            return None
        return first + BLIND_AFTER_S + steps * BLIND_STEP_S

    async def _wait_freed(self, timeout: float | None) -> None:
        """Until a request ends, or ``timeout`` seconds of the controller's clock pass."""
        if timeout is None:
            await self._freed.wait()
            return
        freed = asyncio.ensure_future(self._freed.wait())
        timer = asyncio.ensure_future(self.clock.sleep(max(0.0, timeout)))
        try:
            await asyncio.wait({freed, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (freed, timer):
                task.cancel()

    def _own_budget_wait(self, cost: Cost, now: float) -> float:
        """The wait for the user's ``rate_limit_rpm`` and ``rate_limit_tpm``."""
        wait = 0.0
        if "rpm" in self.budgets:
            wait = self.budgets["rpm"].wait_s(1.0, now)
        if "tpm" in self.budgets:
            wait = max(wait, self.budgets["tpm"].wait_s(cost.total, now))
        return wait

    def _provider_wait(self, cost: Cost, now: float) -> float:
        """The wait for the budgets the provider's rate-limit headers reported."""
        if not self.provider:
            return 0.0
        amounts = _amounts(cost)
        return max(bucket.wait_s(amounts[resource], now) for resource, bucket in self.provider.items())

    def _admit(self, cost: Cost) -> Ticket:
        now = self.clock.now()
        amounts = _amounts(cost)
        if self.enabled:
            if "rpm" in self.budgets:
                self.budgets["rpm"].take(1.0, now)
            if "tpm" in self.budgets:
                self.budgets["tpm"].take(cost.total, now)
            for resource, bucket in self.provider.items():
                bucket.take(amounts[resource], now)
        for resource, amount in amounts.items():
            self._charged[resource] += amount
        self.in_flight += 1
        s = self.stats
        s.requests += 1
        s.first_sent = now if s.first_sent is None else s.first_sent
        s.in_flight_peak = max(s.in_flight_peak, self.in_flight)
        s.window_peak = max(s.window_peak, self.window)
        return Ticket(now, s.requests, cost, self.in_flight, self.in_flight >= self.window, dict(self._charged))

    # ---------------------------------------------------------------- feedback

    def release(
        self,
        ticket: Ticket,
        *,
        status: int | None = None,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> float:
        """The request ended: with an HTTP ``status`` (and its ``headers``), or an error ``kind``
        (``timeout``, ``connect``…). ``retry_after`` is set when it was throttling to wait out.

        Returns:
            The seconds this request must wait on its own before it queues again: ``retry_after``
            when the 429 was the window probing above a known concurrency cap (the endpoint is
            not paused for it), else 0 (the endpoint's pause, if any, holds every request).
        """
        now = self.clock.now()
        self.in_flight -= 1
        if not self._answered:  # the probe's answer: open the window
            self._answered = True
            self.limit = max(self.limit, float(min(INITIAL_WINDOW, self.ceiling)))
        wanted = self._slot_wanted
        self._freed.set()
        s = self.stats
        s.last_done = now
        if status == 429:
            s.status_429 += 1
        elif status == 503:
            s.status_503 += 1
        elif kind in CONGESTION_KINDS:
            s.congestion_errors += 1
        if not self.enabled:
            return 0.0
        limits = read_limits(headers, self._wall()) if headers else {}
        for resource, reported in limits.items():
            self._observe(resource, reported, ticket, now)
        probing_cap = status == 429 and not limits and self.last_cap is not None and ticket.in_flight > self.last_cap
        own_wait = 0.0
        if retry_after is not None and probing_cap:
            own_wait = retry_after
        elif retry_after is not None:
            jitter = self.rng.uniform(0.0, max_jitter(retry_after))
            if now + retry_after + jitter > self.paused_until:
                self.paused_until = now + retry_after + jitter
                self.paused_by = status
        if status in CONGESTION_STATUS or kind in CONGESTION_KINDS:
            # Only a 429 with no exhausted budget says "too many at once" (a concurrency cap);
            # an exhausted budget is paced by the buckets, a 503 or a broken connection is overload.
            exhausted = any(r.remaining is not None and r.remaining < 1 for r in limits.values())
            self._decrease(ticket, now, cap_signal=status == 429 and not exhausted)
        elif status is not None and 200 <= status < 300:
            self._increase(ticket, now, ticket.saturated or wanted)
        return own_wait

    def usage(self, ticket: Ticket, tokens_in: int | None, tokens_out: int | None) -> None:
        """Correct the token budgets by what the response reports it used."""
        if tokens_in is None and tokens_out is None:
            return
        used = (tokens_in or 0) + (tokens_out or 0)
        self.stats.tokens += used
        if tokens_in and ticket.cost.raw_prompt > 0:
            self.prompt_ratio = 0.9 * self.prompt_ratio + 0.1 * (tokens_in / ticket.cost.raw_prompt)
        if tokens_out is not None:
            self.output_mean = 0.9 * self.output_mean + 0.1 * tokens_out
        if not self.enabled:
            return
        now = self.clock.now()
        if "tpm" in self.budgets:
            self.budgets["tpm"].give(ticket.cost.total - used, now)
        unused = {
            "tokens": ticket.cost.total - used,
            "output_tokens": ticket.cost.output - (tokens_out or 0) if tokens_out is not None else 0.0,
        }
        for resource, amount in unused.items():
            if resource in self.provider and amount:
                self.provider[resource].give(amount, now)

    def _observe(self, resource: str, reported: Limit, ticket: Ticket, now: float) -> None:
        if reported.limit is None or reported.limit <= 0 or reported.remaining is None:
            return
        limit = reported.limit
        rate = limit / 60.0  # both providers' limits are per minute ...
        if reported.reset_s is not None and reported.reset_s >= 10 and reported.remaining < limit:
            rate = min(rate, (limit - reported.remaining) / reported.reset_s)  # ... unless a longer window says less
        self.provider_limits[resource] = limit
        # The burst the provider allows is at least the most it ever reported remaining.
        most = self._most_remaining[resource] = max(self._most_remaining.get(resource, 0.0), reported.remaining)
        capacity = min(limit, most + 1.0)
        # As of now: what it reported, less what was sent after this request, plus the refill since.
        later = self._charged[resource] - ticket.charged.get(resource, 0.0)
        estimate = min(capacity, reported.remaining - later + rate * (now - ticket.sent_at))
        bucket = self.provider.get(resource)
        if bucket is None:
            self.provider[resource] = Bucket(rate, capacity, now, min(estimate, reported.remaining))
            return
        bucket.rate, bucket.capacity = rate, capacity
        bucket.give(0.0, now)
        bucket.level = min(bucket.level, estimate)  # a late (stale) answer may lower the level, never raise it

    def _decrease(self, ticket: Ticket, now: float, cap_signal: bool) -> None:
        if ticket.seq <= self._decrease_seq:
            return  # sent before the last decrease: this round trip already reacted
        self._decrease_seq = self.stats.requests
        self.last_decrease = now
        before = self.limit
        self.limit = max(1.0, before * BETA)
        if not cap_signal:  # step back, then regrow quickly to where it was
            still_below = self.recover_to is not None and before < self.recover_to
            self.recover_to = max(before, self.recover_to) if still_below and self.recover_to else before
            return
        self.slow_start = False
        cap = max(1.0, ticket.in_flight - 1.0)
        similar = self.last_cap is not None and abs(cap - self.last_cap) <= 0.15 * self.last_cap + 1
        self.plateau_s = min(MAX_PLATEAU_S, self.plateau_s * 2) if similar else PLATEAU_S
        self.last_cap = cap
        self.recover_to = min(cap, before)
        self.plateau_until = max(now, self.paused_until) + self.plateau_s

    def _increase(self, ticket: Ticket, now: float, saturated: bool) -> None:
        latency = now - ticket.sent_at
        self.latency_s = latency if self.latency_s is None else 0.9 * self.latency_s + 0.1 * latency
        if not saturated:  # the window is not what binds: no reason to widen it
            return
        rate = self._known_rate()
        if rate is not None and self.last_cap is None:
            # Little's law: a known rate needs rate × latency in flight; the budgets keep the pace.
            need = min(float(self.ceiling), rate * self.latency_s * 1.25 + 2.0)
            if need > self.limit:
                self.limit = need
                self.stats.window_peak = max(self.stats.window_peak, self.window)
                return
        if self.recover_to is not None and self.limit < self.recover_to:
            self.limit = min(self.recover_to, self.limit + 1.0)
        elif self.slow_start:
            self.limit += 1.0
        elif now >= self.plateau_until:
            self.limit += 1.0 / self.limit
        self.limit = min(self.limit, float(self.ceiling))
        self.stats.window_peak = max(self.stats.window_peak, self.window)

    def _known_rate(self) -> float | None:
        """Requests per second the budgets allow, when a budget is known."""
        rates = [b.rate for key, b in self.provider.items() if key == "requests"]
        if "rpm" in self.budgets:
            rates.append(self.budgets["rpm"].rate)
        return min(rates) if rates else None

    # ---------------------------------------------------------------- figures

    def figures(self) -> dict[str, Any]:
        """The endpoint's figures for ``results.json`` (``endpoints``)."""
        s = self.stats
        span = (s.last_done - s.first_sent) if s.first_sent is not None and s.last_done is not None else 0.0
        per_min = 60.0 / span if span > 0 else None
        limit_rpm = self.provider_limits.get("requests")
        if self.rpm:
            limit_rpm = min(limit_rpm, self.rpm) if limit_rpm else self.rpm
        limit_tpm = self.provider_limits.get("tokens")
        if self.tpm:
            limit_tpm = min(limit_tpm, self.tpm) if limit_tpm else self.tpm
        return {
            "requests": s.requests,
            "status_429": s.status_429,
            "status_503": s.status_503,
            "throttled_share": round((s.status_429 + s.status_503) / s.requests, 6) if s.requests else 0.0,
            "congestion_errors": s.congestion_errors,
            "tokens": s.tokens,
            "duration_s": round(span, 3),
            "requests_per_min": round(s.requests * per_min, 1) if per_min else None,
            "tokens_per_min": round(s.tokens * per_min, 1) if per_min and s.tokens else None,
            "limit_rpm": limit_rpm,
            "limit_tpm": limit_tpm,
            "concurrency_final": self.window,
            "concurrency_peak": s.window_peak,
            "in_flight_peak": s.in_flight_peak,
            "ceiling": self.ceiling,
            "paused_s": round(s.paused_s, 3),
            "adaptive": self.enabled,
        }
