"""JSON parsing with budgets, for everything relcheck did not write itself.

Replies from servers, tool-call arguments, model output parsed as JSON and eval-set files
are untrusted. Python's ``json`` module has no limits of its own beyond the interpreter's:
a document nested 100,000 levels deep raises ``RecursionError``, an integer of 5,000 digits
raises a bare ``ValueError``, and a duplicate key silently keeps the last value. Here every
one of those is a :class:`BadJson` (a ``ValueError``) with a message a user can act on:

* nesting deeper than :data:`MAX_DEPTH` (100) arrays/objects;
* integers longer than Python's conversion limit (4,300 digits);
* with ``unique_keys=True`` (eval sets), a key repeated within one object.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_DEPTH", "BadJson", "depth_exceeds", "loads"]

#: The deepest nesting of arrays and objects accepted anywhere (replies, arguments, eval sets).
MAX_DEPTH = 100


class BadJson(ValueError):
    """Text that is not JSON within relcheck's budgets; ``str()`` says why."""

    def __init__(self, message: str, lineno: int | None = None, colno: int | None = None) -> None:
        super().__init__(message)
        self.msg = message
        self.lineno = lineno
        self.colno = colno


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH, unique_keys: bool = False) -> Any:
    """``json.loads`` within the budgets above.

    Raises:
        BadJson: invalid JSON (``lineno``/``colno`` set where the parser knows them), too
            deep, an integer too long, or (``unique_keys``) a duplicate key.
    """
    try:
        value = json.loads(text, object_pairs_hook=_unique if unique_keys else None)
    except json.JSONDecodeError as exc:
        raise BadJson(f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise BadJson(f"JSON nested deeper than {max_depth} levels") from None
    except _Duplicate as exc:
        lineno, colno = _where_repeated(text) or (None, None)
        raise BadJson(
            f"duplicate key {json.dumps(exc.key, ensure_ascii=False)[:80]} in one object "
            "(JSON would silently keep only the last one)",
            lineno,
            colno,
        ) from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        detail = str(exc)
        if "digits" in detail:
            detail = "a number longer than 4300 digits"
        raise BadJson(f"invalid JSON: {detail}") from None
    if _brackets(text) > max_depth and depth_exceeds(value, max_depth):
        raise BadJson(f"JSON nested deeper than {max_depth} levels")
    return value


def _brackets(text: str | bytes) -> int:
    """How many ``[`` and ``{`` the text holds: a bound on the document's nesting depth (each
    level opens one; those inside strings only make the bound looser), counted in C so that
    a small reply is not walked by :func:`depth_exceeds`."""
    if isinstance(text, bytes):
        return text.count(b"[") + text.count(b"{")
    return text.count("[") + text.count("{")


def _where_repeated(text: str | bytes) -> tuple[int, int] | None:
    """Line and column of the first repeated key (``text`` held one), for the error message.

    The error path only: the document is parsed again by json's pure-Python scanner, whose
    objects are parsed by a wrapper that knows where each object starts. The innermost
    object with a repeated key raises first; its members are then walked once more
    (``scanstring`` for keys, the scanner to skip values) to find the key's second place."""
    from json.decoder import JSONObject, scanstring  # type: ignore[attr-defined]
    from json.scanner import py_make_scanner  # type: ignore[attr-defined]

    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
    found: list[int] = []

    def parse_object(s_and_end: tuple[str, int], *args: Any) -> Any:
        s, start = s_and_end
        scan_once = args[1]
        try:
            return JSONObject(s_and_end, *args)
        except _Duplicate as exc:
            if not found:
                found.append(_second_key(s, start, exc.key, scan_once, scanstring))
            raise

    decoder = json.JSONDecoder(object_pairs_hook=_unique)
    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    scan = py_make_scanner(decoder)
    try:
        scan(text, len(text) - len(text.lstrip(" \t\n\r")))
    except (_Duplicate, ValueError, RecursionError, StopIteration):
        pass
    if not found or found[0] < 0:
        return None
    offset = found[0]
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _second_key(s: str, pos: int, key: str, scan_once: Any, scanstring: Any) -> int:
    """Offset of ``key``'s second occurrence among the members of the object after ``pos``."""
    seen: set[str] = set()
    ws = " \t\n\r"
    n = len(s)
    while pos < n:
        while pos < n and s[pos] in ws + ",":
            pos += 1
        if pos >= n or s[pos] != '"':
            return -1
        at = pos
        name, pos = scanstring(s, pos + 1)
        if name == key and name in seen:
            return at
        seen.add(name)
        while pos < n and s[pos] in ws + ":":
            pos += 1
        _, pos = scan_once(s, pos)
    return -1


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests lists/dicts more than ``limit`` deep (iterative: no recursion)."""
    if not isinstance(value, (list, dict)):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (list, dict)):
                stack.append((child, depth + 1))
    return False
