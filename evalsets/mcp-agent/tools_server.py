"""The order-desk MCP server of the mcp-agent eval set (stdio), written with the MCP SDK's
``MCPServer``. It fails at seeded rates, so the eval set measures how a pipeline copes.

Every call draws twice from SHA-256 of ``"{seed}|{tool}|{arguments}|{n}|error"`` (and
``…|slow``), where ``n`` counts the calls this process has seen with exactly these
arguments: a draw below ``TOOLS_ERROR_RATE`` answers ``isError`` (a transient failure), a
draw below ``TOOLS_SLOW_RATE`` delays the answer by ``TOOLS_SLOW_MS``. Each case has its own
order id, so the draws are the same whatever the concurrency, and a retry draws anew.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections import Counter
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

SEED = os.environ.get("TOOLS_SEED", "0")
ERROR_RATE = float(os.environ.get("TOOLS_ERROR_RATE", "0"))
SLOW_RATE = float(os.environ.get("TOOLS_SLOW_RATE", "0"))
SLOW_S = float(os.environ.get("TOOLS_SLOW_MS", "0")) / 1000
_seen: Counter[str] = Counter()

app = MCPServer("order-desk")


def _draw(tool: str, arguments: dict[str, Any], n: int, what: str) -> float:
    text = f"{SEED}|{tool}|{json.dumps(arguments, sort_keys=True)}|{n}|{what}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


async def _faults(tool: str, arguments: dict[str, Any]) -> None:
    key = f"{tool}|{json.dumps(arguments, sort_keys=True)}"
    _seen[key] += 1
    n = _seen[key]
    if _draw(tool, arguments, n, "slow") < SLOW_RATE:
        await asyncio.sleep(SLOW_S)
    if _draw(tool, arguments, n, "error") < ERROR_RATE:
        raise ToolError("transient: the order database did not answer")


class Order(BaseModel):
    order_id: str
    status: str
    total: float


class Shipment(BaseModel):
    order_id: str
    carrier: str
    eta_days: int


class Refund(BaseModel):
    order_id: str
    refunded: float


@app.tool()
async def lookup_order(order_id: str) -> Order:
    """Look up an order: its status and total."""
    await _faults("lookup_order", {"order_id": order_id})
    return Order(order_id=order_id, status="shipped", total=40.0)


@app.tool()
async def track_shipment(order_id: str) -> Shipment:
    """Track the shipment of an order."""
    await _faults("track_shipment", {"order_id": order_id})
    return Shipment(order_id=order_id, carrier="DHL", eta_days=2)


@app.tool()
async def issue_refund(order_id: str, amount: float) -> Refund:
    """Refund part of an order."""
    await _faults("issue_refund", {"order_id": order_id, "amount": amount})
    return Refund(order_id=order_id, refunded=amount)


if __name__ == "__main__":
    app.run()
