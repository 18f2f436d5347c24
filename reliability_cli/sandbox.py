"""The template sandbox with bounded arithmetic and sizes.

Jinja2's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` stops a template from
reaching Python internals, but not from asking for an astronomically large value:
``{{ 7 ** 999999999 }}`` computes for hours (and Jinja would fold it at *compile* time, so
``relcheck validate`` would hang), ``[x] * 10**8`` or ``"x" | center(10**9)`` allocate
gigabytes. Here every operator and call that can grow a value is checked *before* it runs:

=======================================  ==============================================
what                                     bound
=======================================  ==============================================
``a ** b`` on integers                   result at most :data:`MAX_INT_BITS` bits
``a * b`` on integers                    result at most :data:`MAX_INT_BITS` bits
``seq * n``, ``seq + seq`` (str, list)   at most :data:`MAX_STR` characters / :data:`MAX_ITEMS` items
``%`` formatting, ``format``, ``center``,  no width or precision above :data:`MAX_STR`; the
``indent``, ``ljust``, ``zfill`` …        result at most :data:`MAX_STR` characters
``join``, ``replace``                    result at most :data:`MAX_STR` characters
one rendered template                    at most :data:`MAX_RENDERED` characters
=======================================  ==============================================

Intercepted operators are never constant-folded by Jinja's compiler (``as_const`` refuses
them in a sandbox), so compiling a pipeline cannot hang either. A template that passes a
bound fails for that case with a ``template`` error naming the bound.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from jinja2 import pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.filters import do_center, do_format, do_indent, do_join, do_replace
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter

MAX_INT_BITS = 100_000  # about 30,000 decimal digits
MAX_STR = 1_000_000
MAX_ITEMS = 100_000
MAX_RENDERED = 10_000_000

_SIZED = (str, list, tuple)
# a width or precision in a printf-style (%10.3f) or format-spec ({:>10}) placeholder
_PRINTF_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_NUMBER = re.compile(r"\d+")


class LimitError(SecurityError):
    """A template asked for a value past relcheck's bounds."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bound(value: Any) -> int:
    return MAX_STR if isinstance(value, str) else MAX_ITEMS


def _check_power(base: Any, exponent: Any) -> None:
    if (
        _is_int(base)
        and _is_int(exponent)
        and exponent > 0
        and abs(base) > 1
        and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS
    ):
        raise LimitError(f"{_short(base)} ** {_short(exponent)} is past the bound of {MAX_INT_BITS:,}-bit integers")


def _check_mul(left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise LimitError(f"a product past the bound of {MAX_INT_BITS:,}-bit integers")
        return
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, _SIZED) and _is_int(times) and times > 0:
            bound = _bound(seq)
            if len(seq) * times > bound:
                what = "characters" if isinstance(seq, str) else "items"
                raise LimitError(
                    f"repeating {len(seq):,} {what} {_short(times)} times is past the bound of {bound:,} {what}"
                )


def _check_add(left: Any, right: Any) -> None:
    if isinstance(left, _SIZED) and isinstance(right, _SIZED) and len(left) + len(right) > _bound(left):
        raise LimitError(f"a concatenation past the bound of {_bound(left):,}")


def _check_printf(fmt: str) -> None:
    for match in _PRINTF_WIDTH.finditer(fmt):
        text = match.group()
        if "*" in text:
            raise LimitError("a '*' width in % formatting is not allowed in templates")
        for number in _NUMBER.findall(text):
            if len(number) > 7 or int(number) > MAX_STR:
                raise LimitError(f"a format width of {_short(number)} is past the bound of {MAX_STR:,}")


def _short(value: Any) -> str:
    text = str(value) if not _is_int(value) or value.bit_length() < 200 else f"<{value.bit_length()}-bit integer>"
    return text if len(text) <= 40 else text[:39] + "…"


def _sized_str(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(str(value))


def _join_size(items: Iterable[Any], sep: str) -> int:
    total = 0
    count = 0
    for item in items:
        total += _sized_str(item)
        count += 1
        if total > MAX_STR:
            break
    return total + max(0, count - 1) * len(sep)


_METHOD_WIDTH = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with the bounds of this module's docstring."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters.update(
            center=_bounded_center,
            indent=_bounded_indent,
            format=_bounded_format,
            join=_bounded_join,
            replace=_bounded_replace,
        )

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            _check_power(left, right)
        elif operator_ == "*":
            _check_mul(left, right)
        elif operator_ == "+":
            _check_add(left, right)
        elif operator_ == "%" and isinstance(left, str):
            _check_printf(left)
        return super().call_binop(context, operator_, left, right)

    def wrap_str_format(self, value: Any) -> Any:
        """``str.format`` / ``format_map`` through a formatter that checks every field's
        width once nested fields (``{:>{w}}``) are filled in."""
        if super().wrap_str_format(value) is None:
            return None
        text: str = value.__self__
        formatter = _BoundedFormatter(self)
        is_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                return str(formatter.vformat(text, (), args[0]))
            return str(formatter.vformat(text, args, kwargs))

        return wrapper

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            _check_str_method(owner, name, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _check_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    values = list(args) + list(kwargs.values())
    if name in _METHOD_WIDTH:
        for value in values:
            if _is_int(value) and value > MAX_STR:
                raise LimitError(f"str.{name}({_short(value)}) is past the bound of {MAX_STR:,} characters")
        if name == "expandtabs" and values and _is_int(values[0]) and values[0] * text.count("\t") > MAX_STR:
            raise LimitError(f"str.expandtabs result past the bound of {MAX_STR:,} characters")
    elif name == "join" and values:
        seq = values[0]
        if isinstance(seq, (list, tuple, str)) and _join_size(seq, text) > MAX_STR:
            raise LimitError(f"str.join result past the bound of {MAX_STR:,} characters")
    elif name == "replace" and len(values) >= 2 and isinstance(values[0], str) and isinstance(values[1], str):
        _check_replace(text, values[0], values[1])


class _BoundedFormatter(SandboxedFormatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        for number in _NUMBER.findall(format_spec):
            if len(number) > 7 or int(number) > MAX_STR:
                raise LimitError(f"a format width of {_short(number)} is past the bound of {MAX_STR:,}")
        return super().format_field(value, format_spec)


def _check_replace(text: str, old: str, new: str) -> None:
    count = text.count(old) if old else len(text) + 1
    if len(text) + count * (len(new) - len(old)) > MAX_STR:
        raise LimitError(f"replace result past the bound of {MAX_STR:,} characters")


def _bounded_center(value: Any, width: int = 80) -> str:
    if _is_int(width) and width > MAX_STR:
        raise LimitError(f"center({_short(width)}) is past the bound of {MAX_STR:,} characters")
    return do_center(value, width)


def _bounded_indent(value: Any, width: Any = 4, first: bool = False, blank: bool = False) -> str:
    text = str(value)
    size = len(width) if isinstance(width, str) else width if _is_int(width) else 0
    if size * (text.count("\n") + 1) + len(text) > MAX_STR:
        raise LimitError(f"indent result past the bound of {MAX_STR:,} characters")
    return do_indent(text, width, first, blank)


def _bounded_format(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_printf(str(value))
    return do_format(value, *args, **kwargs)


@pass_eval_context
def _bounded_join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
    if attribute is None and isinstance(value, (list, tuple)) and _join_size(value, d) > MAX_STR:
        raise LimitError(f"join result past the bound of {MAX_STR:,} characters")
    return do_join(eval_ctx, value, d, attribute)


@pass_eval_context
def _bounded_replace(eval_ctx: Any, s: Any, old: str, new: str, count: int | None = None) -> str:
    if isinstance(old, str) and isinstance(new, str):
        _check_replace(str(s), old, new)
    return do_replace(eval_ctx, s, old, new, count)


def bounded_chunks(chunks: Iterable[str]) -> str:
    """Join a template's output stream, stopping once it passes :data:`MAX_RENDERED` characters."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_RENDERED:
            raise LimitError(f"the rendered text is past the bound of {MAX_RENDERED:,} characters")
        out.append(chunk)
    return "".join(out)


__all__ = ["MAX_INT_BITS", "MAX_ITEMS", "MAX_RENDERED", "MAX_STR", "BoundedSandbox", "LimitError", "bounded_chunks"]
