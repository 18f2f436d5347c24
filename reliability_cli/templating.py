"""The one sandboxed Jinja2 environment relcheck renders pipeline templates in.

Only strings from the pipeline file are ever compiled. Eval-set data and model output enter
as *values* of the context and are never compiled, so a case whose text holds
``{{ 7*7 }}`` sends exactly that text. The environment is Jinja2's
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` with undefined names as errors; no
environment variable is in the context.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

CONTEXT_NAMES = frozenset({"vars", "expect", "case", "steps", "step", "trial", "attempt"})
_MARKERS = ("{{", "{%", "{#")
_SINGLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}|\{\{).)*)\}\}\s*$", re.DOTALL)


class RenderError(Exception):
    """A template failed for one case (undefined name, sandbox violation, bad filter)."""


@lru_cache(maxsize=1)
def environment() -> Any:
    from jinja2 import StrictUndefined

    from .sandbox import BoundedSandbox  # the immutable sandbox with bounded arithmetic and sizes

    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.clear()  # no range(), lipsum(), dict(), cycler(): data in, text out
    env.filters["tojson"] = _tojson
    return env


def _tojson(value: Any, indent: int | None = None) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=False)


def is_template(text: str) -> bool:
    """Whether ``text`` holds Jinja2 markup (``{{``, ``{%`` or ``{#``): the one definition."""
    return any(m in text for m in _MARKERS)


@dataclass(frozen=True)
class Template:
    """A compiled pipeline string. Plain strings without markers are kept as constants."""

    source: str
    _compiled: Any = None
    _expr: Any = None  # compiled expression when the source is exactly one ``{{ … }}``

    def render(self, context: Mapping[str, Any]) -> str:
        """Render to text."""
        if self._compiled is None:
            return self.source
        from .sandbox import bounded_chunks

        try:
            return bounded_chunks(self._compiled.generate(context))
        except Exception as exc:  # jinja2 raises many types; all are a template failure
            raise RenderError(_describe(exc)) from None

    def value(self, context: Mapping[str, Any]) -> Any:
        """The native value when the source is exactly one expression, else the text."""
        if self._expr is None:
            return self.render(context)
        try:
            result = self._expr(**context)
        except Exception as exc:
            raise RenderError(_describe(exc)) from None
        from jinja2 import Undefined

        if isinstance(result, Undefined):
            raise RenderError(_describe_undefined(result))
        return result


def compile_template(source: str) -> Template:
    """Compile ``source`` in the sandbox; raises ``jinja2.TemplateSyntaxError``."""
    if not is_template(source):
        return Template(source)
    env = environment()
    compiled = env.from_string(source)
    expr = None
    match = _SINGLE_EXPR.match(source)
    if match:
        try:
            expr = env.compile_expression(match.group("expr"), undefined_to_none=False)
        except Exception:
            expr = None
    return Template(source, compiled, expr)


def compile_value(value: Any) -> Any:
    """Compile every string inside a nested mapping/list (for mock replies, http bodies)."""
    if isinstance(value, str):
        return compile_template(value)
    if isinstance(value, dict):
        return {k: compile_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compile_value(v) for v in value]
    return value


def render_value(value: Any, context: Mapping[str, Any], native: bool = True) -> Any:
    """Render a structure compiled by :func:`compile_value`, value by value."""
    if isinstance(value, Template):
        return value.value(context) if native else value.render(context)
    if isinstance(value, dict):
        return {k: render_value(v, context, native) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context, native) for v in value]
    return value


def references(source: str) -> Iterator[tuple[str, ...]]:
    """Yield the context paths a template names: ``("vars", "ticket")``, ``("steps", "a")``.

    Top-level names come first as 1-tuples; attribute or constant-subscript access adds one
    level (``expect[step.id]`` yields just ``("expect",)``).
    """
    if not is_template(source):
        return
    from jinja2 import meta, nodes

    env = environment()
    ast = env.parse(source)
    for name in sorted(meta.find_undeclared_variables(ast)):
        yield (name,)
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        base = node.node
        if not isinstance(base, nodes.Name) or base.ctx != "load":
            continue
        if isinstance(node, nodes.Getattr):
            yield (base.name, node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield (base.name, node.arg.value)


def _describe(exc: Exception) -> str:
    from jinja2 import UndefinedError
    from jinja2.exceptions import SecurityError

    if isinstance(exc, UndefinedError):
        return f"template: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"template: refused by the sandbox: {exc}"
    return f"template: {type(exc).__name__}: {exc}"


def _describe_undefined(value: Any) -> str:
    try:
        str(value)
    except Exception as exc:
        return _describe(exc)
    return "template: undefined value"
