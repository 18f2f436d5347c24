"""``relcheck mock-server``: a local OpenAI- and Anthropic-compatible server with seeded fault
injection, loopback only. :mod:`.faults` draws the faults; :mod:`.server` speaks HTTP."""

from __future__ import annotations

from .faults import FaultConfig, parse_status_rates
from .server import WRONG_REPLY, MockServer, run_in_thread, serve

__all__ = ["WRONG_REPLY", "FaultConfig", "MockServer", "parse_status_rates", "run_in_thread", "serve"]
