"""Run user code (``python`` endpoints and checks) off the event loop, so it cannot hold a run.

A pipeline's own Python code may block: a sync function past its ``timeout_s``, an ``async``
one that calls ``time.sleep``. On the event loop's thread such code would stall every unit
and the Ctrl-C / SIGTERM handlers (which run on that loop); in asyncio's default executor a
thread still blocked at exit would keep the process alive (``asyncio.run`` joins it). So:

* sync callables run in relcheck's own pool of **daemon** threads (never joined at exit);
* async callables run on one helper event loop in a daemon thread, so one that blocks stalls
  only other callables, never the run, and its ``timeout_s`` is still enforced;
* ``SystemExit`` and ``KeyboardInterrupt`` raised by user code become :class:`CallableExit`
  (an ordinary exception: the attempt is an ``exception`` error), never an exit of relcheck
  or an asyncio traceback.

A call that timed out keeps its thread until the code returns (Python cannot kill a
thread); the pool grows up to :data:`MAX_THREADS`, past which calls wait for a free thread
(and time out if none frees up).

A process forked from one that ran callables (``relcheck traces``' worker processes) inherits
the pool's bookkeeping but none of its threads, and the helper loop but not the thread that
runs it: the child starts afresh (:func:`os.register_at_fork`), so its calls do not queue for
threads that are not there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["MAX_THREADS", "CallableExit", "call_async", "call_sync"]

MAX_THREADS = 256


class CallableExit(Exception):
    """User code raised ``SystemExit`` or ``KeyboardInterrupt``; ``str()`` names it."""


def _exit_of(exc: BaseException) -> CallableExit:
    detail = f"SystemExit({exc.code!r})" if isinstance(exc, SystemExit) else type(exc).__name__
    return CallableExit(f"{detail} raised by the callable")


class _DaemonPool:
    def __init__(self, max_threads: int) -> None:
        self.max_threads = max_threads
        self._queue: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]]] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._idle <= 0 and self._threads < self.max_threads:
                self._threads += 1
                threading.Thread(target=self._work, name=f"relcheck-callable-{self._threads}", daemon=True).start()
            else:
                self._idle -= 1  # reserve an idle thread for this item
        self._queue.put((future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            future, fn, args = self._queue.get()
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except (SystemExit, KeyboardInterrupt) as exc:
                    future.set_exception(_exit_of(exc))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, fn, args
            with self._lock:
                self._idle += 1


_POOL = _DaemonPool(MAX_THREADS)
_HELPER: dict[str, asyncio.AbstractEventLoop] = {}
_HELPER_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    """The threads of the parent's pool and helper loop do not exist here: forget them (never
    close the inherited loop: its selector and wake-up socket are shared with the parent)."""
    global _POOL, _HELPER_LOCK
    _POOL = _DaemonPool(MAX_THREADS)
    _HELPER.clear()
    _HELPER_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _helper_loop() -> asyncio.AbstractEventLoop:
    with _HELPER_LOCK:
        loop = _HELPER.get("loop")
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="relcheck-async-callables", daemon=True).start()
            _HELPER["loop"] = loop
        return loop


async def call_sync(fn: Callable[..., Any], *args: Any, timeout_s: float) -> Any:
    """``fn(*args)`` in a daemon thread; ``TimeoutError`` after ``timeout_s`` (the thread runs on)."""
    future = _POOL.submit(fn, *args)
    return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)


async def call_async(fn: Callable[..., Awaitable[Any]], *args: Any, timeout_s: float) -> Any:
    """``await fn(*args)`` on the helper loop; ``TimeoutError`` after ``timeout_s`` (the
    coroutine is cancelled there, which takes effect once it yields)."""

    async def guarded() -> Any:
        try:
            result = fn(*args)
            while asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
            return result
        except (SystemExit, KeyboardInterrupt) as exc:
            raise _exit_of(exc) from None

    future = asyncio.run_coroutine_threadsafe(guarded(), _helper_loop())
    return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
