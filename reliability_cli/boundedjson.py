"""JSON parsing with budgets, for everything relcheck did not write itself.

Replies from servers, tool-call arguments, model output parsed as JSON and eval-set files
are untrusted. Python's ``json`` module has no limits of its own beyond the interpreter's:
a document nested 100,000 levels deep raises ``RecursionError``, an integer of 5,000 digits
raises a bare ``ValueError``, and a duplicate key silently keeps the last value. Here every
one of those is a :class:`BadJson` (a ``ValueError``) with a message a user can act on:

* nesting deeper than :data:`MAX_DEPTH` (100) arrays/objects;
* integers longer than Python's conversion limit (4,300 digits);
* with ``unique_keys=True`` (eval sets), a key repeated within one object — with the line
  and column of that object's opening brace.
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
        lineno, colno = _duplicate_position(text)
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
    if depth_exceeds(value, max_depth):
        raise BadJson(f"JSON nested deeper than {max_depth} levels")
    return value


def _duplicate_position(text: str | bytes) -> tuple[int | None, int | None]:
    """Line and column of the ``{`` of the first object holding a repeated key.

    The C parser tells neither, so the text is parsed again (only after a duplicate was found)
    by the stdlib's pure-Python scanner, whose object hook sees where each object starts.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None, None
    decoder = json.JSONDecoder(object_pairs_hook=_unique)

    def parse_object(s_and_end: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        try:
            return json.decoder.JSONObject(s_and_end, *args, **kwargs)  # type: ignore[attr-defined]
        except _Duplicate as exc:
            if getattr(exc, "pos", None) is None:
                exc.pos = s_and_end[1] - 1  # type: ignore[attr-defined]  # the innermost object: raised first
            raise

    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    try:
        decoder.decode(text)
    except _Duplicate as exc:
        pos = getattr(exc, "pos", None)
        if pos is None:
            return None, None
        line = text.count("\n", 0, pos) + 1
        return line, pos - (text.rfind("\n", 0, pos) + 1) + 1
    except (ValueError, RecursionError):
        pass
    return None, None


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
