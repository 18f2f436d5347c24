"""User callables run in relcheck's daemon threads and on a helper loop (``offload``). A
process forked from one that has already run some (``relcheck traces``' workers) inherits
their bookkeeping but not the threads: its calls must still run, not wait forever for a
thread that is not there."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from reliability_cli import offload

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")


def _twice(x: int) -> int:
    return 2 * x


async def _thrice(x: int) -> int:
    await asyncio.sleep(0)
    return 3 * x


async def _both(x: int) -> tuple[int, int]:
    return (
        await offload.call_sync(_twice, x, timeout_s=20.0),
        await offload.call_async(_thrice, x, timeout_s=20.0),
    )


def test_callables_run_in_a_child_forked_after_the_parent_ran_some() -> None:
    assert asyncio.run(_both(1)) == (2, 3)  # the pool has an idle thread, the helper loop runs
    assert any(t.name.startswith("relcheck-callable-") for t in threading.enumerate())
    pid = os.fork()
    if pid == 0:
        try:
            code = 0 if asyncio.run(_both(5)) == (10, 15) else 3
        except BaseException as exc:  # a timeout (the bug), or anything else
            print(repr(exc), file=sys.stderr)
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert asyncio.run(_both(7)) == (14, 21)  # the parent's threads and loop are untouched
