"""A small seeded fake chat model for the langgraph-agent eval set: no network, no key.

It answers what it is told to (the right answer) except with probability ``fail_rate``,
when it answers ``WRONG`` instead. Each draw is the first 8 bytes of the SHA-256 of
``"{seed}|{case}|{trial}|{node}|{visit}|{attempt}"`` as a fraction of 2^64 (the same rule
as relcheck's mock endpoint), so a run is identical whatever the concurrency, and a retry
(``attempt`` > 1, which relcheck passes in the run config) draws afresh.
"""

from __future__ import annotations

import hashlib
from typing import Any

WRONG = "<fake-model: wrong answer>"


class FakeModel:
    def __init__(self, fail_rate: float = 0.03) -> None:
        self.fail_rate = fail_rate
        self.calls = 0

    def draw(self, config: Any, node: str, visit: int = 0) -> float:
        c = (config or {}).get("configurable", {})
        key = f"{c.get('seed', 0)}|{c.get('case')}|{c.get('trial', 1)}|{node}|{visit}|{c.get('attempt', 1)}"
        return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64

    def answer(self, config: Any, node: str, right: Any, visit: int = 0) -> Any:
        """``right``, or ``WRONG`` with probability ``fail_rate``."""
        self.calls += 1
        return WRONG if self.draw(config, node, visit) < self.fail_rate else right
