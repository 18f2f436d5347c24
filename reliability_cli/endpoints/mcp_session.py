"""One MCP session of the SDK, owned by its own task.

The SDK's ``Client`` is an anyio context manager that must be entered and left in the same
task, while relcheck's units call tools from many worker tasks. So each session lives in an
*owner task*: it enters the client, lists the tools, signals ready and waits to be told to
stop; any task may call through :attr:`Session.client` meanwhile. Closing tells the owner to
leave the context, which runs the SDK's bounded shutdown (stdin closed, then SIGTERM and
SIGKILL of the server's process group).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["Session"]

_CLOSE_S = 10.0  # the SDK's stdio shutdown is bounded at ~6 s (stdin close, SIGTERM, SIGKILL)
_PAGES = 100


class Session:
    """An SDK session in its owner task; :attr:`dead` once it has ended or dropped."""

    def __init__(self) -> None:
        self.client: Any = None
        self.tools: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.dead = False
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self, connect: Any, timeout_s: float) -> None:
        async def owner() -> None:
            try:
                async with connect() as client:
                    self.client = client
                    self.tools = await _list_all(client)
                    self._ready.set()
                    await self._stop.wait()
            except BaseException as exc:  # noqa: BLE001 - reported to the waiting caller
                self.error = exc
                if isinstance(exc, asyncio.CancelledError):
                    raise
            finally:
                self.dead = True
                self._ready.set()

        self._task = asyncio.create_task(owner())
        try:
            await asyncio.wait_for(asyncio.shield(self._ready.wait()), timeout_s)
        except asyncio.TimeoutError:
            await self.close()
            raise
        except asyncio.CancelledError:  # the caller was cancelled (Ctrl-C): stop the handshake too
            self._stop.set()
            self._task.cancel()  # the endpoint's aclose() still awaits the owner's cleanup
            raise
        if self.client is None or self.error is not None:
            await self.close()

    async def close(self) -> None:
        self._stop.set()
        task = self._task
        if task is None or task.done():
            return
        if self.client is None:
            task.cancel()  # still in the handshake: nothing to wait for
        try:
            await asyncio.wait_for(asyncio.shield(task), _CLOSE_S)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except BaseException:  # noqa: BLE001 - the owner reports its own failure
            pass


async def _list_all(client: Any) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    cursor = None
    for _ in range(_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools
