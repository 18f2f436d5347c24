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
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

CONTEXT_NAMES = frozenset({"vars", "expect", "case", "steps", "step", "trial", "attempt"})
_MARKERS = ("{{", "{%", "{#")
_SINGLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}|\{\{).)*)\}\}\s*$", re.DOTALL)


class RenderError(Exception):
    """A template failed for one case (undefined name, sandbox violation, bad filter)."""


#: what :meth:`Template.render` and :meth:`Template.value` need of jinja2 and the sandbox, set
#: by :func:`environment` (jinja2 is imported only once a template is compiled)
_jinja: dict[str, Any] = {}


@lru_cache(maxsize=1)
def environment() -> Any:
    from jinja2 import StrictUndefined, Undefined

    from .sandbox import MAX_RENDERED, BoundedSandbox, bounded_chunks  # the immutable sandbox, bounded

    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.clear()  # no range(), lipsum(), dict(), cycler(): data in, text out
    env.filters["tojson"] = _tojson
    _jinja.update(undefined=Undefined, max_rendered=MAX_RENDERED, bounded_chunks=bounded_chunks)
    return env


def _loaded() -> dict[str, Any]:
    environment()
    return _jinja


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
    #: the source as text and lookups (see :func:`_lookups`), when it is only that; else None
    _parts: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)
    #: the expression as a lookup, when ``_expr`` is one; else None
    _path: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)

    def render(self, context: Mapping[str, Any]) -> str:
        """Render to text."""
        if self._compiled is None:
            return self.source
        if self._parts is not None:
            text = _render_parts(self._parts, context)
            if text is not None:
                return text
        try:
            # (not ``generate``: its wrapper only re-raises with jinja2's traceback, and the error
            # becomes a RenderError here anyway)
            compiled = self._compiled
            bounded = (_jinja or _loaded())["bounded_chunks"]
            return bounded(compiled.root_render_func(compiled.new_context(dict(context))))
        except Exception as exc:  # jinja2 raises many types; all are a template failure
            raise RenderError(_describe(exc)) from None

    def value(self, context: Mapping[str, Any]) -> Any:
        """The native value when the source is exactly one expression, else the text."""
        if self._expr is None:
            return self.render(context)
        if self._path is not None:
            try:
                return _resolve(self._path, context)
            except _Miss:
                pass
        try:
            result = self._expr(**context)
        except Exception as exc:
            raise RenderError(_describe(exc)) from None
        if isinstance(result, (_jinja or _loaded())["undefined"]):
            raise RenderError(_describe_undefined(result))
        return result


# ---------------------------------------------------------------- lookups without jinja2
#
# Most pipeline templates only look values up: ``{{ vars.ticket }}``, ``{{ expect[step.id] }}``,
# ``Find the account of {{ steps.extract.output }}.``. For those, rendering through jinja2 (a
# new Context per call) costs more than the rest of an in-process attempt; here they are
# evaluated directly — but only where the result is provably jinja2's own: every step is a
# plain ``dict`` (or mapping proxy) holding the key, no attribute name is one a dict has (for
# which the sandbox's ``getattr`` would find the method), and the text of a rendered template
# is made of ``str`` values (jinja2 writes ``str(value)``). Anything else — a missing key, a
# list, a number in text, an undefined name — goes through jinja2, which gives the value, the
# text or the error exactly as before.

_MAPPINGS = (dict, MappingProxyType)


class _Miss(Exception):
    """The direct lookup cannot vouch for the result: jinja2 evaluates the template."""


_MISS = _Miss()


def _resolve(path: tuple[Any, ...], context: Mapping[str, Any]) -> Any:
    """Evaluate a lookup: ``(name, key, …)``; a key is a constant or a nested lookup."""
    try:
        value = context[path[0]]
        for key in path[1:]:
            if type(value) not in _MAPPINGS:
                raise _MISS
            value = value[_resolve(key, context) if type(key) is tuple else key]
    except (KeyError, TypeError):  # (an unhashable key: TypeError)
        raise _MISS from None
    return value


def _render_parts(parts: tuple[Any, ...], context: Mapping[str, Any]) -> str | None:
    """The text of a template of text and lookups, or None when jinja2 must render it."""
    out = []
    for part in parts:
        if type(part) is str:
            out.append(part)
            continue
        try:
            value = _resolve(part, context)
        except _Miss:
            return None
        if type(value) is not str:
            return None
        out.append(value)
    text = "".join(out)
    return text if len(text) <= (_jinja or _loaded())["max_rendered"] else None  # (jinja2 raises the bound's error)


def _lookup(node: Any) -> tuple[Any, ...] | None:
    """A jinja2 expression node as a lookup path, or None when it is anything else."""
    from jinja2 import nodes

    if isinstance(node, nodes.Name):
        return (node.name,) if node.ctx == "load" else None
    if isinstance(node, nodes.Getattr):
        attr = node.attr
        if attr.startswith("_") or any(hasattr(kind, attr) for kind in _MAPPINGS):
            return None  # the sandbox's getattr would find the attribute first
        base = _lookup(node.node)
        return None if base is None else (*base, attr)
    if isinstance(node, nodes.Getitem) and node.ctx == "load":
        base = _lookup(node.node)
        if base is None:
            return None
        arg = node.arg
        if isinstance(arg, nodes.Const) and isinstance(arg.value, (str, int)) and not isinstance(arg.value, bool):
            return (*base, arg.value)
        key = _lookup(arg)
        return None if key is None else (*base, key)
    return None


def _lookups(env: Any, source: str) -> tuple[Any, ...] | None:
    """``source`` as a sequence of text (``str``) and lookups (``tuple``), or None."""
    from jinja2 import nodes

    parts: list[Any] = []
    for node in env.parse(source).body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
                continue
            path = _lookup(child)
            if path is None:
                return None
            parts.append(path)
    return tuple(parts)


def compile_template(source: str) -> Template:
    """Compile ``source`` in the sandbox; raises ``jinja2.TemplateSyntaxError``."""
    if not is_template(source):
        return Template(source)
    env = environment()
    compiled = env.from_string(source)
    expr = None
    path = None
    match = _SINGLE_EXPR.match(source)
    if match:
        try:
            expr = env.compile_expression(match.group("expr"), undefined_to_none=False)
        except Exception:
            expr = None
        if expr is not None:
            from jinja2.parser import Parser

            path = _lookup(Parser(env, match.group("expr"), state="variable").parse_expression())
    return Template(source, compiled, expr, _lookups(env, source), path)


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
