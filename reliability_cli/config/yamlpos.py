"""Safe YAML loading that remembers where every value came from.

PyYAML's ``safe_load`` forgets line numbers; users need them in every error. This module
composes the node tree with the safe loader, then builds plain Python values itself while
recording the position of every key and value by its key path. Duplicate keys, which
``safe_load`` silently lets the last one win, are errors here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import Location, RelcheckError
from .limits import MAX_INT_DIGITS, MAX_YAML_DEPTH, check_node_budget

Path = tuple[str | int, ...]


@dataclass
class Positions:
    """Positions (1-based line, column) of values and keys, by key path."""

    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """The location of ``path``, or of its nearest ancestor that has one."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                line, col = table[probe]
                return Location(self.file, line, col, format_path(path))
            if key and probe in self.values:
                line, col = self.values[probe]
                return Location(self.file, line, col, format_path(path))
            probe = probe[:-1]
        pos = self.values.get(())
        return Location(self.file, pos[0] if pos else None, pos[1] if pos else None, format_path(path) or None)


def format_path(path: Path) -> str:
    """``("steps", 0, "checks", 1)`` → ``steps[0].checks[1]``."""
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else str(seg)
    return out


_CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_CANONICAL_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+")


def data_scalar(text: str) -> Any:
    """Plain scalars of an eval set: strings, except true/false/null and canonical numbers.

    ``no``, ``on``, ``0123``, ``1.10`` and dates stay exactly what was written.
    """
    if text == "true":
        return True
    if text == "false":
        return False
    if text in ("null", "~", ""):
        return None
    if _CANONICAL_INT.fullmatch(text):
        return int(text)
    if _CANONICAL_FLOAT.fullmatch(text) and repr(float(text)) == text:
        return float(text)
    return text


#: libyaml's parser when PyYAML was built with it (several times faster), else the pure-Python one;
#: both give every node its line and column, and both resolve tags with the same safe resolver.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _DepthBoundedSafeLoader(yaml.SafeLoader):
    """The pure-Python safe loader composing at most ``MAX_YAML_DEPTH`` levels: its composer
    recurses per level, so a deeper file would end in ``RecursionError`` (libyaml stops at
    1,000 levels by itself; both then meet :func:`check_node_budget`)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.MarkedYAMLError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


if _LOADER is yaml.SafeLoader:
    _LOADER = _DepthBoundedSafeLoader

# What YAML allows in a stream (YAML 1.1 "printable"); anything else is refused with its line.
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def load_yaml(
    text: str,
    file: str,
    *,
    error: type[RelcheckError],
    data_scalars: bool = False,
    transform: Callable[[str, Path, tuple[int, int]], str] | None = None,
) -> tuple[Any, Positions]:
    """Parse ``text`` with PyYAML's safe loader; return the data and its positions.

    Args:
        text: the YAML source.
        file: the file name used in error locations.
        error: the error class to raise (``ConfigError`` or ``EvalSetError``).
        data_scalars: resolve plain scalars with :func:`data_scalar` (eval sets) instead of
            YAML 1.1's rules (where ``no`` is ``False``).
        transform: called on every string value (after resolution) with its path and
            position; used for ``${VAR}`` interpolation.
    """
    positions = Positions(file)
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        name = "NUL" if bad.group() == "\x00" else f"U+{ord(bad.group()):04X}"
        raise error(
            f"invalid YAML: a control character ({name}) in the text; YAML allows none", Location(file, line, column)
        )
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{exc.context}: {problem}"
        raise error(f"invalid YAML: {problem}", loc) from None
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {exc}", Location(file)) from None
    finally:
        loader.dispose()
    if node is None:
        return None, positions
    check_node_budget(
        node, lambda message, n: error(message, Location(file, n.start_mark.line + 1, n.start_mark.column + 1))
    )

    def build(n: yaml.Node, path: Path) -> Any:
        positions.values[path] = (n.start_mark.line + 1, n.start_mark.column + 1)
        if not isinstance(n, yaml.ScalarNode) and n.tag not in _COLLECTION_TAGS:
            raise error(
                f"unsupported YAML tag {n.tag}",
                _loc(n, path),
                hint="relcheck loads YAML with a safe loader: no custom tags",
            )
        if isinstance(n, yaml.MappingNode):
            try:
                loader.flatten_mapping(n)
            except yaml.MarkedYAMLError as exc:
                raise error(f"invalid YAML: {exc.problem}", _loc(n, path)) from None
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                key = build_scalar(key_node, path, is_key=True)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise error("a key must be a plain string", _loc(key_node, path))
                key = str(key) if not isinstance(key, str) else key
                sub = path + (key,)
                if key in out:
                    raise error(
                        f"duplicate key '{key}'", _loc(key_node, sub), hint="YAML would silently keep only the last one"
                    )
                positions.keys[sub] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = build(value_node, sub)
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, path + (i,)) for i, item in enumerate(n.value)]
        return build_scalar(n, path)

    def build_scalar(n: yaml.Node, path: Path, is_key: bool = False) -> Any:
        if not isinstance(n, yaml.ScalarNode):
            raise error("a key must be a plain string", _loc(n, path))
        plain = not n.style  # (None from the pure-Python parser, "" from libyaml's)
        if is_key and plain and n.tag in _IMPLICIT_TAGS:
            value = n.value  # `on:` is a key named "on", not True
        elif data_scalars and plain and n.tag in _IMPLICIT_TAGS:
            try:
                value = data_scalar(n.value)
            except ValueError:  # an integer past Python's 4,300-digit conversion limit
                raise error(
                    f"a number of {len(n.value):,} digits; at most {MAX_INT_DIGITS:,} are allowed",
                    _loc(n, path),
                    hint="quote it to keep it as text",
                ) from None
        else:
            try:
                value = loader.construct_object(n, deep=True)
            except yaml.constructor.ConstructorError as exc:
                raise error(f"invalid YAML: {exc.problem}", _loc(n, path)) from None
            except ValueError:
                raise error(
                    f"a number of {len(n.value):,} digits; at most {MAX_INT_DIGITS:,} are allowed",
                    _loc(n, path),
                    hint="quote it to keep it as text",
                ) from None
        if isinstance(value, str) and transform is not None and not is_key:
            value = transform(value, path, (n.start_mark.line + 1, n.start_mark.column + 1))
        if not isinstance(value, (str, int, float, bool, type(None))):
            # dates, binary: keep what was written, never a Python object
            value = n.value
        return value

    def _loc(n: yaml.Node, path: Path) -> Location:
        return Location(file, n.start_mark.line + 1, n.start_mark.column + 1, format_path(path) or None)

    return build(node, ()), positions


_IMPLICIT_TAGS = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:str",
}
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
