"""A fake clock for the adaptive controller, and a simulated provider driven by it.

:class:`FakeClock` keeps virtual time: ``sleep`` parks the caller until :meth:`FakeClock.run`
advances time to its deadline, which it does only once every task is blocked. Nothing real
is timed, so the tests are exact under any CPU load.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from reliability_cli.endpoints.adaptive import AdaptiveController, Cost

SETTLE = 10_000  # at most this many event-loop turns for every runnable task to reach its next wait


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return 1_800_000_000.0 + self.t

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.t + max(0.0, seconds), next(self._seq), future))
        await future

    async def run(self, main: Awaitable[Any], limit_s: float = 3600.0) -> Any:
        """Run ``main`` to completion, advancing virtual time whenever everything waits."""
        task = asyncio.ensure_future(main)
        end = self.t + limit_s
        loop = asyncio.get_running_loop()
        while not task.done():
            for _ in range(SETTLE):
                await asyncio.sleep(0)
                if task.done() or not getattr(loop, "_ready", True):  # CPython: nothing else runnable
                    break
            if task.done():
                break
            while self._timers and self._timers[0][2].cancelled():
                heapq.heappop(self._timers)
            if not self._timers:
                raise RuntimeError("deadlock: every task waits and no timer is set")
            when, _, future = heapq.heappop(self._timers)
            if when > end:
                task.cancel()
                raise RuntimeError("virtual time limit reached")
            self.t = max(self.t, when)
            future.set_result(None)
        return task.result()


@dataclass
class Provider:
    """A simulated provider: a request bucket (``rpm``, ``burst_s`` of burst), an optional
    concurrency cap, a fixed latency, and header ``style`` ``openai``/``anthropic``/``none``.
    ``outage`` is a virtual-time interval answering 503 with no ``Retry-After``."""

    clock: FakeClock
    rpm: float | None = None
    burst_s: float = 1.0
    cap: int | None = None
    latency_s: float = 0.3
    style: str = "openai"
    outage: tuple[float, float] | None = None
    cap_retry_after: float = 1.0
    in_flight: int = 0
    max_in_flight: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "429": 0, "503": 0})
    level: float = -1.0
    at: float = 0.0

    def __post_init__(self) -> None:
        if self.rpm:
            self.level = self.capacity
            self.at = self.clock.now()

    @property
    def rate(self) -> float:
        return (self.rpm or 0) / 60.0

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate * self.burst_s)

    def headers(self) -> dict[str, str]:
        if not self.rpm or self.style == "none":
            return {}
        remaining = str(max(0, math.floor(self.level)))
        reset = (self.capacity - self.level) / self.rate
        if self.style == "openai":
            return {
                "x-ratelimit-limit-requests": str(int(self.rpm)),
                "x-ratelimit-remaining-requests": remaining,
                "x-ratelimit-reset-requests": f"{reset * 1000:.0f}ms",
            }
        when = datetime.fromtimestamp(self.clock.wall() + math.ceil(reset), timezone.utc)
        return {
            "anthropic-ratelimit-requests-limit": str(int(self.rpm)),
            "anthropic-ratelimit-requests-remaining": remaining,
            "anthropic-ratelimit-requests-reset": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }

    async def handle(self) -> tuple[int, dict[str, str]]:
        now = self.clock.now()
        if self.outage and self.outage[0] <= now < self.outage[1]:
            self.counts["503"] += 1
            return 503, {}
        if self.cap is not None and self.in_flight >= self.cap:
            self.counts["429"] += 1
            return 429, {"retry-after": f"{self.cap_retry_after:g}"}
        if self.rpm:
            self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
            self.at = now
            if self.level < 1:
                self.counts["429"] += 1
                wait = (1 - self.level) / self.rate
                retry = (
                    {"retry-after-ms": str(math.ceil(wait * 1000))}
                    if self.style == "openai"
                    else {"retry-after": str(math.ceil(wait))}
                )
                return 429, {**self.headers(), **retry}
            self.level -= 1
        headers = self.headers()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.clock.sleep(self.latency_s)
        finally:
            self.in_flight -= 1
        self.counts["ok"] += 1
        return 200, headers


@dataclass
class Run:
    """What :func:`drive` observed."""

    sent: int = 0
    done: int = 0
    max_in_flight: int = 0
    windows: list[tuple[float, int]] = field(default_factory=list)  # (time, window) after each answer


def retry_after(headers: dict[str, str]) -> float | None:
    if "retry-after-ms" in headers:
        return float(headers["retry-after-ms"]) / 1000
    if "retry-after" in headers:
        return float(headers["retry-after"])
    return None


async def drive(
    controller: AdaptiveController,
    provider: Provider,
    units: int,
    workers: int,
    on_answer: Callable[[Run], None] | None = None,
) -> Run:
    """``workers`` tasks share ``units`` requests; a throttled one (429/503 with Retry-After)
    is resent, as the HTTP endpoint does, and so is a 503 without one (a retry)."""
    run = Run()
    left = iter(range(units))
    in_flight = 0

    async def worker() -> None:
        nonlocal in_flight
        for _ in left:
            while True:
                ticket = await controller.acquire(Cost(prompt=10, output=10))
                in_flight += 1
                run.sent += 1
                run.max_in_flight = max(run.max_in_flight, in_flight)
                status, headers = await provider.handle()
                in_flight -= 1
                own_wait = controller.release(
                    ticket,
                    status=status,
                    headers=headers,
                    retry_after=retry_after(headers) if status in (429, 503) else None,
                )
                run.windows.append((controller.clock.now(), controller.window))
                if on_answer is not None:
                    on_answer(run)
                if status == 200:
                    run.done += 1
                    break
                if own_wait:  # as the HTTP endpoint does: only this request waits
                    await controller.clock.sleep(own_wait)
                if retry_after(headers) is None:
                    await controller.clock.sleep(0.5)  # a retry's backoff

    await asyncio.gather(*(worker() for _ in range(workers)))
    return run


def controller(clock: FakeClock, **options: Any) -> AdaptiveController:
    return AdaptiveController("llm", clock=clock, rng=random.Random(0), wall_clock=clock.wall, **options)
