"""The ``python`` check: a trusted local function named in the pipeline judges the output.

``callable: "package.module:function"`` is imported with :mod:`importlib` (from ``sys.path``,
like a pytest plugin) the first time it is used. Its signature is::

    def fn(output, context) -> bool | tuple[bool, str]: ...
    async def fn(output, context) -> bool | tuple[bool, str]: ...

``output`` is the parsed output (a string for ``parse: text``). ``context`` is a read-only
mapping: the step's template context (``vars``, ``expect``, ``case``, ``steps``, ``step``,
``trial``, ``attempt``) plus ``value`` (the check's rendered ``value``, or ``None``),
``text`` (the raw response text), ``tool_calls`` and ``latency_ms``.

Return ``True``/``False``, or ``(passed, reason)``; promptfoo's ``{"pass": …, "reason": …}``
mapping is accepted too. A failing result without a reason is reported as
``python check <callable> returned False``. Sync functions run in a worker thread so they
cannot stall other units. An exception in the function (or its import), or a return value
of another type, raises :class:`~reliability_cli.checks.base.CheckCodeError`: the
runner records the attempt as an error of kind ``exception``, not as a failed check.

Code checks are refused in eval sets (eval sets are data, never code).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from ..textfmt import one_line
from ._common import CheckValueError, excerpt, held
from .base import CheckCodeError, CheckInput, Verdict


def valid_callable_name(spec: Any) -> bool:
    """``package.module:function`` with dotted identifiers on both sides."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        return False
    module, attr = spec.split(":")
    return all(part.isidentifier() for part in module.split(".")) and all(
        part.isidentifier() for part in attr.split(".")
    )


@lru_cache(maxsize=128)
def load_callable(spec: str) -> Callable[..., Any]:
    """Import ``package.module:function`` (cached); raise CheckCodeError if that fails."""

    module_name, _, attr = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:
        raise CheckCodeError(f"python check cannot import '{spec}': {type(exc).__name__}: {exc}") from None
    if not callable(target):
        raise CheckCodeError(f"python check '{spec}' is not callable")
    return target


#: A ``python`` check that takes longer than this is an ``exception`` error of the attempt.
_CHECK_TIMEOUT_S = 60.0


async def python_check(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """Call the pipeline's function with ``(output, context)`` and read its verdict."""
    import asyncio

    name = spec.get("callable")
    if not isinstance(name, str) or not valid_callable_name(name):
        raise CheckValueError(f"python needs callable: 'package.module:function', got {excerpt(name)}")
    fn = load_callable(name)
    context = MappingProxyType(
        {
            **inp.context,
            "value": spec.get("value"),
            "text": inp.text,
            "tool_calls": tuple(inp.tool_calls),
            "latency_ms": inp.latency_ms,
        }
    )
    from ..offload import call_async, call_sync

    try:  # off the event loop, in daemon threads (offload.py); bounded like the step it judges
        timeout = _CHECK_TIMEOUT_S
        if inspect.iscoroutinefunction(fn):
            result = await call_async(fn, inp.output, context, timeout_s=timeout)
        else:
            result = await call_sync(fn, inp.output, context, timeout_s=timeout)
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, timeout)
    except asyncio.TimeoutError:
        raise CheckCodeError(f"python check {name} did not return within {_CHECK_TIMEOUT_S:g} s") from None
    except Exception as exc:
        raise CheckCodeError(one_line(f"python check {name} raised {type(exc).__name__}: {exc}")) from exc
    return _verdict(name, result)


def _verdict(name: str, result: Any) -> Verdict:

    passed: Any = result
    reason: Any = None
    if isinstance(result, tuple) and len(result) == 2:
        passed, reason = result
    elif isinstance(result, Mapping) and "pass" in result:
        passed, reason = result["pass"], result.get("reason")
    if type(passed).__name__ == "bool_":  # numpy.bool_ from a computed comparison
        passed = bool(passed)
    if not isinstance(passed, bool) or (reason is not None and not isinstance(reason, str)):
        raise CheckCodeError(
            f"python check {name} returned {type(result).__name__} "
            f"{excerpt(repr(result))}; expected bool or (bool, reason)"
        )
    if passed:
        return held(reason or f"python check {name} returned True")
    return Verdict.fail(reason or f"python check {name} returned False")
