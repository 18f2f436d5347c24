"""The ``python`` endpoint: a trusted local callable named in the pipeline file.

Like a pytest plugin, it is code the pipeline's author chose to run. It is called with the
template context (``vars``, ``expect``, ``steps``, ``messages`` …) and may be sync or async;
both run off the event loop in daemon threads (:mod:`reliability_cli.offload`), so one that
blocks can neither stall other units nor keep relcheck alive after Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
from collections.abc import Callable
from typing import Any

from ..config.models import PythonEndpoint as PythonConfig
from ..errors import ConfigError
from ..offload import CallableExit, call_async, call_sync
from ..records import ToolCall
from ..textfmt import one_line
from .base import AttemptError, Request, Response


def import_callable(spec: str) -> Callable[..., Any]:
    """Import ``package.module:function``; raises ConfigError naming what is missing."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"cannot import module '{module_name}' for callable '{spec}': {type(exc).__name__}: {exc}"
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"'{module_name}' has no callable '{attr}'")
    return fn


class PythonEndpoint:
    def __init__(self, name: str, config: PythonConfig) -> None:
        self.name = name
        self.config = config
        self._fn = import_callable(config.callable)
        self._is_async = inspect.iscoroutinefunction(self._fn)

    async def call(self, request: Request) -> Response:
        context = dict(request.context)
        context["messages"] = [dict(m) for m in request.messages]
        context["params"] = dict(request.params)
        try:  # off the event loop, in daemon threads: blocking code cannot hold the run (offload.py)
            if self._is_async:
                result = await call_async(self._fn, context, timeout_s=request.timeout_s)
            else:
                result = await call_sync(self._fn, context, timeout_s=request.timeout_s)
        except asyncio.TimeoutError:
            raise AttemptError("timeout", f"callable did not return within {request.timeout_s:g} s") from None
        except CallableExit as exc:
            raise AttemptError("exception", one_line(str(exc))) from None
        except Exception as exc:
            raise AttemptError("exception", one_line(f"{type(exc).__name__}: {exc}")) from None
        if isinstance(result, str):
            return Response(result)
        tool_calls: tuple[ToolCall, ...] = ()
        if isinstance(result, dict) and isinstance(result.get("tool_calls"), list):
            tool_calls = tuple(
                ToolCall(str(c.get("name")), c.get("arguments")) for c in result["tool_calls"] if isinstance(c, dict)
            )
        try:
            text = json.dumps(result, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(result)
        return Response(text, output=result, tool_calls=tool_calls)

    async def aclose(self) -> None:
        return None
