"""How many units the engine keeps in flight.

With ``--concurrency N`` it is N: a hard cap. By default it is enough that each HTTP
endpoint's adaptive controller, not the unit scheduler, is what binds: the sum of the HTTP
endpoints' ceilings (``max_concurrency``, default
:data:`~reliability_cli.endpoints.adaptive.DEFAULT_CEILING`), at most :data:`MAX_AUTO`.
A pipeline with only in-process endpoints (``mock``, ``python``) keeps :data:`IN_PROCESS_DEFAULT`.
"""

from __future__ import annotations

from ..config import Pipeline

__all__ = ["IN_PROCESS_DEFAULT", "MAX_AUTO", "units_in_flight"]

IN_PROCESS_DEFAULT = 8
MAX_AUTO = 1024
HTTP_TYPES = frozenset({"openai", "anthropic", "http"})


def units_in_flight(pipeline: Pipeline, cap: int | None) -> int:
    """``cap`` when the user gave one, else the default described in the module docstring."""
    if cap is not None:
        return max(1, cap)
    from ..endpoints.adaptive import DEFAULT_CEILING

    ceilings = [
        getattr(ep, "max_concurrency", None) or DEFAULT_CEILING
        for ep in pipeline.endpoints.values()
        if getattr(ep, "type", None) in HTTP_TYPES
    ]
    if not ceilings:
        return IN_PROCESS_DEFAULT
    return min(MAX_AUTO, sum(ceilings))
