"""Budgets for input files: what relcheck reads, how much, and how deep.

Pipelines and eval sets come from users, but also from pull requests and generators; a
careless or hostile file must get one clear error (file, line; exit 2), never a hang, a
crash or an exhausted machine:

* **Only regular files** are read. A FIFO, a character device (``/dev/zero``), a socket or
  a symlink to one is refused *before it is opened* (``stat``), and the file is opened
  non-blocking and checked again, so nothing can block or stream forever.
* **Size**: a file read whole (pipelines, YAML and ``.json`` eval sets) may hold at most
  :data:`MAX_PIPELINE_BYTES` / :data:`MAX_WHOLE_EVALSET_BYTES`; a streamed line (JSONL,
  CSV) at most :data:`MAX_LINE_BYTES`.
* **YAML nesting**: at most :data:`MAX_YAML_DEPTH` levels of mappings and sequences.
* **YAML aliases**: expanding ``*aliases`` may add at most
  ``max(MAX_ALIAS_NODES, number of nodes written)`` keys and values (a "billion laughs" file is
  refused at once, before anything is expanded); a recursive alias is refused.
* **Numbers**: integers longer than 4,300 digits (Python's conversion limit) are refused.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from typing import Any

from ..errors import Location, RelcheckError

MAX_PIPELINE_BYTES = 16 * 1024 * 1024
MAX_WHOLE_EVALSET_BYTES = 256 * 1024 * 1024
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_YAML_DEPTH = 100
MAX_ALIAS_NODES = 100_000
MAX_INT_DIGITS = 4300

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: str | os.PathLike[str], file: str, error: type[RelcheckError], what: str) -> os.stat_result:
    """``stat`` ``path`` (following symlinks) and refuse anything but a regular file, without opening it."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"no such {what} file", Location(file)) from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror}", Location(file)) from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"is a directory, not {_article(what)} file", Location(file))
    if not stat.S_ISREG(info.st_mode):
        raise error(
            f"is {_kind(info.st_mode)}, not a regular file; relcheck reads {what}s from regular files only",
            Location(file),
        )
    return info


def open_regular(path: str | os.PathLike[str], file: str, error: type[RelcheckError], what: str) -> Any:
    """Open a regular file for binary reading; never blocks (``O_NONBLOCK``, re-checked with ``fstat``)."""
    check_regular(path, file, error, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise error(f"no such {what} file", Location(file)) from None
        raise error(f"cannot read: {exc.strerror}", Location(file)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # replaced between stat and open
            raise error(f"is {_kind(info.st_mode)}, not a regular file", Location(file))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(
    path: str | os.PathLike[str], file: str, error: type[RelcheckError], what: str, max_bytes: int
) -> bytes:
    """The whole of a regular file of at most ``max_bytes`` bytes."""
    with open_regular(path, file, error, what) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(
            f"the file is larger than {max_bytes // (1024 * 1024)} MiB, the limit for {_article(what)} file read whole",
            Location(file),
            hint="split it, or use a streamed format (.jsonl or .csv)" if what == "eval set" else None,
        )
    return data


def bounded_lines(
    fh: Any,
    file: str,
    error: type[RelcheckError],
    limit: int = MAX_LINE_BYTES,
    first_line: int = 1,
    hint: str | None = None,
) -> Any:
    """The lines of binary ``fh``, each at most ``limit`` bytes (a file without newlines
    cannot be read into memory whole); ``first_line`` numbers the first one in the error."""
    lineno = first_line - 1
    while True:
        line = fh.readline(limit + 1)
        if not line:
            return
        lineno += 1
        if len(line) > limit and not line.endswith(b"\n"):
            raise error(f"line longer than {size_text(limit)}", Location(file, lineno), hint=hint)
        yield line


def size_text(n: int) -> str:
    """``16 MiB`` (whole mebibytes), else ``5,739 bytes``."""
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def _article(what: str) -> str:
    return f"an {what}" if what[:1] in "aeiou" else f"a {what}"


# ------------------------------------------------------------------ YAML node budgets


def check_node_budget(root: Any, on_error: Callable[[str, Any], Exception]) -> None:
    """Refuse a composed YAML node graph that nests past :data:`MAX_YAML_DEPTH`, whose
    aliases would add more than the alias budget, or that contains a recursive alias.

    Runs over each distinct node once (memoised, iterative), so a billion-laughs graph is
    measured in microseconds without expanding anything. ``on_error(message, node)`` builds
    the exception to raise, located at ``node``.
    """
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        kids = _children(node)
        if not leaving:
            if key in sizes:
                continue
            on_path.add(key)
            stack.append((node, True))
            if len(on_path) > MAX_YAML_DEPTH:
                raise on_error(f"YAML nested deeper than {MAX_YAML_DEPTH} levels", node)
            for kid in kids:
                if id(kid) in on_path:
                    raise on_error("a recursive YAML alias (a value that contains itself)", kid)
                if id(kid) not in sizes:
                    stack.append((kid, False))
            continue
        on_path.discard(key)
        sizes[key] = 1 + sum(sizes[id(k)] for k in kids)
        heights[key] = 1 + max((heights[id(k)] for k in kids), default=0)
        if heights[key] > MAX_YAML_DEPTH:
            raise on_error(f"YAML nested deeper than {MAX_YAML_DEPTH} levels", node)
        extra = sizes[key] - len(sizes)  # an upper bound of what aliases add below this node
        if extra > MAX_ALIAS_NODES and extra > len(sizes):
            raise on_error(
                f"YAML aliases expand to more than {max(MAX_ALIAS_NODES, len(sizes)):,} extra keys and values "
                "(an alias bomb?); relcheck refuses to expand them",
                node,
            )


def _children(node: Any) -> list[Any]:
    value = getattr(node, "value", None)
    if not isinstance(value, list):
        return []  # a scalar
    if value and isinstance(value[0], tuple):  # a mapping: (key, value) pairs
        return [part for pair in value for part in pair]
    return value
