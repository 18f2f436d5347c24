"""Progress on stderr: a rich bar in a terminal, a plain line at most every 10 s otherwise."""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any

PLAIN_EVERY_S = 10.0
RATE_WINDOW_S = 10.0


class CurrentRate:
    """Requests per minute over the last :data:`RATE_WINDOW_S` seconds (the rate now, not the run's mean)."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self.events: deque[tuple[float, int]] = deque()
        self.total = 0
        self.started = time.monotonic()

    def add(self, now: float, requests: int) -> None:
        self.events.append((now, requests))
        self.total += requests
        while self.events and self.events[0][0] < now - self.window_s:
            self.total -= self.events.popleft()[1]

    def per_min(self, now: float) -> float:
        span = min(self.window_s, max(now - self.started, 1e-9))
        return self.total * 60.0 / span


class NoProgress:
    def start(self, total: int) -> None: ...

    def unit_done(self, record: dict[str, Any]) -> None: ...

    def stop(self) -> None: ...


class PlainProgress(NoProgress):
    """For CI logs: one line at most every 10 seconds, and one at the end."""

    def __init__(self) -> None:
        self.total = self.done = self.passed = self.requests = 0
        self.started = self.last = time.monotonic()
        self.rate = CurrentRate()

    def start(self, total: int) -> None:
        self.total = total
        self.started = self.last = time.monotonic()
        self.rate = CurrentRate()

    def unit_done(self, record: dict[str, Any]) -> None:
        self.done += 1
        self.passed += bool(record.get("passed"))
        self.requests += _requests(record)
        now = time.monotonic()
        self.rate.add(now, _requests(record))
        if now - self.last >= PLAIN_EVERY_S:
            self.last = now
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = self.passed / self.done if self.done else 0.0
        left = (self.total - self.done) * elapsed / self.done if self.done else 0.0
        sys.stderr.write(
            f"relcheck: {self.done}/{self.total} units, e2e {rate:.1%}, "
            f"{self.requests / elapsed:.0f} req/s, now {self.rate.per_min(now):,.0f} req/min, ETA {_clock(left)}\n"
        )
        sys.stderr.flush()

    def stop(self) -> None:
        if self.done and time.monotonic() - self.started >= PLAIN_EVERY_S:
            self._line(time.monotonic())


class RichProgress(NoProgress):
    """Units done/total, running end-to-end pass rate, requests per second, ETA."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]eval"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("e2e {task.fields[rate]}"),
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task: Any = None
        self.done = self.passed = self.requests = 0
        self.started = time.monotonic()
        self.last_refresh = 0.0
        self.rate = CurrentRate()

    def start(self, total: int) -> None:
        self.progress.start()
        self.started = time.monotonic()
        self.task = self.progress.add_task("eval", total=total, rate="—", speed="")

    def unit_done(self, record: dict[str, Any]) -> None:
        self.done += 1
        self.passed += bool(record.get("passed"))
        self.requests += _requests(record)
        now = time.monotonic()
        self.rate.add(now, _requests(record))
        if now - self.last_refresh < 0.1:
            return
        self.last_refresh = now
        self.progress.update(
            self.task,
            completed=self.done,
            rate=f"{self.passed / self.done:.1%}",
            speed=f"{self.rate.per_min(now):,.0f} req/min",
        )

    def stop(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.done)
        self.progress.stop()


def _requests(record: dict[str, Any]) -> int:
    """Requests a finished unit sent: its chained attempts plus its isolated ones."""
    return int(record.get("attempts") or 0) + sum(int(s.get("attempts") or 0) for s in record.get("isolated") or ())


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def make_progress(enabled: bool) -> NoProgress:
    if not enabled:
        return NoProgress()
    if sys.stderr.isatty():
        return RichProgress()
    return PlainProgress()
