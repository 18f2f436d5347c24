"""MCP servers for the tests, written with the SDK's server API (``MCPServer``).

``python servers.py`` serves over stdio; ``python servers.py --http`` serves streamable HTTP
on 127.0.0.1 (port 0) and prints ``PORT <n>`` once it listens. ``PIDFILE`` in the environment
names a file the server appends its pid to (so tests can prove no process is left behind);
``CALLSFILE`` one it appends the name of each tool called to (so tests can count calls).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

INVALID_PARAMS = -32602
app = MCPServer("relcheck-test-tools")


class Order(BaseModel):
    order_id: str
    status: str
    total: float


def _called(tool: str) -> None:
    path = os.environ.get("CALLSFILE")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{tool}\n")


@app.tool()
def lookup_order(order_id: str) -> Order:
    """Look up an order by id."""
    _called("lookup_order")
    print(f"lookup_order {order_id}", file=sys.stderr, flush=True)
    if order_id.startswith("missing"):
        raise ToolError(f"no order {order_id}")
    return Order(order_id=order_id, status="shipped", total=12.5)


@app.tool()
def issue_refund(order_id: str, amount: float) -> str:
    """Refund part of an order."""
    _called("issue_refund")
    return f"refunded {amount:.2f} on {order_id}"


@app.tool()
def strict_refund(order_id: str, amount: Any) -> str:
    """Like issue_refund, but rejects a non-number amount with JSON-RPC invalid params."""
    if not isinstance(amount, (int, float)) or isinstance(amount, bool):
        raise MCPError(code=INVALID_PARAMS, message=f"amount must be a number, got {amount!r}")
    return f"refunded {amount:.2f} on {order_id}"


@app.tool()
async def sleep(seconds: float) -> str:
    """Answer after ``seconds``."""
    await asyncio.sleep(seconds)
    return "slept"


@app.tool()
def crash() -> str:
    """Exit the server process at once (a crash mid-run)."""
    print("crashing", file=sys.stderr, flush=True)
    os._exit(3)


def _pidfile() -> None:
    path = os.environ.get("PIDFILE")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")


async def _serve_http() -> None:
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app.streamable_http_app(), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    sock.listen(128)  # listening before the port is announced: early connections wait, never refused
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await server.serve(sockets=[sock])


if __name__ == "__main__":
    _pidfile()
    if "--http" in sys.argv:
        asyncio.run(_serve_http())
    elif "--silent" in sys.argv:  # reads, never answers: a server that hangs in the handshake
        for _line in sys.stdin:
            pass
    else:
        app.run()
