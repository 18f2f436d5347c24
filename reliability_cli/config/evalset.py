"""Load eval sets (SPEC §3) from JSONL, YAML or CSV, with file and line in every error.

JSONL and CSV are streamed (memory does not grow with the file); YAML and ``.json`` are read
whole. Eval sets are data: their strings are never compiled as templates, and a ``python``
check in one is refused.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..boundedjson import BadJson
from ..boundedjson import loads as bounded_loads
from ..errors import EvalSetError, Location, MultipleErrors, RelcheckError
from .limits import MAX_WHOLE_EVALSET_BYTES, bounded_lines, open_regular, read_regular
from .pipeline import CheckPlan, Pipeline
from .yamlpos import load_yaml

CASE_KEYS = ("id", "vars", "expect", "tags", "checks")
MAX_ERRORS = 20


@dataclass(frozen=True)
class Case:
    """One eval case.

    Attributes:
        id: The case's id, unique across the run's eval sets.
        vars: Template variables (``{{ vars.x }}``); data, never templated or executed.
        expect: Expected values, for checks (``{{ expect.x }}``) and for ``--isolate``'s gold
            inputs.
        tags: The case's tags (``--filter-tag``).
        checks: Extra checks of this case, by step id, already compiled.
        location: Where the case is in its file (for messages).
    """

    id: str
    vars: Mapping[str, Any] = field(default_factory=dict)
    expect: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    checks: Mapping[str, tuple[CheckPlan, ...]] = field(default_factory=dict)
    location: Location | None = None


@dataclass(frozen=True)
class EvalSet:
    """The cases of one run, in order, and the hash of every file they came from.

    Attributes:
        cases: The cases, in file order.
        hashes: Each file's path → SHA-256 of its bytes (recorded in the manifest).
    """

    cases: tuple[Case, ...]
    hashes: Mapping[str, str]

    def __len__(self) -> int:
        return len(self.cases)

    def select(self, tags: Sequence[str] = (), limit: int | None = None) -> EvalSet:
        """Cases having any of ``tags`` (all when empty), then the first ``limit``.

        Args:
            tags: Keep the cases having any of these tags; all cases when empty.
            limit: Keep at most this many (after the tag filter); all when ``None``.

        Returns:
            A new :class:`EvalSet` with the same file hashes.
        """
        cases: Iterable[Case] = self.cases
        if tags:
            wanted = set(tags)
            cases = [c for c in cases if wanted.intersection(c.tags)]
        cases = tuple(cases)
        if limit is not None:
            cases = cases[:limit]
        return EvalSet(cases, self.hashes)


def load_evalsets(paths: Sequence[str | os.PathLike[str]], pipeline: Pipeline | None = None) -> EvalSet:
    """Load and merge eval sets; ids must be unique across all of them.

    Args:
        paths: JSONL, JSON, YAML or CSV files, in order.
        pipeline: When given, each case's ``expect`` keys and CSV columns are checked against
            its steps (a name that is no step is an error, with a did-you-mean).

    Returns:
        The cases, in file order, and each file's SHA-256.

    Raises:
        EvalSetError: a file is unreadable, malformed, empty, or ids repeat.
    """
    hashes: dict[str, str] = {}
    cases = tuple(iter_evalsets(paths, pipeline, hashes))
    return EvalSet(cases, hashes)


def iter_evalsets(
    paths: Sequence[str | os.PathLike[str]],
    pipeline: Pipeline | None = None,
    hashes: dict[str, str] | None = None,
    unique: bool = True,
) -> Iterator[Case]:
    """Yield the cases of ``paths`` one by one, validating as :func:`load_evalsets` does.

    JSONL and CSV are streamed: read in binary line by line, hashed and decoded as they pass,
    so memory does not grow with the file. YAML and ``.json`` eval sets are read and parsed
    whole (YAML needs the whole document to place its errors). ``unique=False`` skips the
    duplicate-id check (for a second pass over files already checked, so nothing grows with
    their size). ``hashes`` receives each file's SHA-256 (of its raw bytes) once it has been
    read to the end. Invalid cases and duplicate ids are raised once every file has been
    read; a line that breaks the file's format (not UTF-8, invalid JSON, a CSV row with the
    wrong number of fields) raises at once, after the streamed cases before it.
    """
    if not paths:
        raise EvalSetError("no eval set: give --evalset FILE or set `evalset:` in the pipeline")
    hashes = {} if hashes is None else hashes
    seen: dict[str, tuple[str | None, int | None]] = {}  # id → where first defined (small, for large sets)
    problems: list[RelcheckError] = []
    step_ids = {s.id for s in pipeline.steps} if pipeline else None
    for path in paths:
        file = str(path)
        suffix = Path(path).suffix.lower()
        rows: Iterable[tuple[Any, Location]]
        if suffix not in (".jsonl", ".ndjson", ".csv", ".yaml", ".yml", ".json"):  # before reading anything
            raise EvalSetError(
                f"unknown eval set format '{suffix or '(none)'}'", Location(file), hint="use .jsonl, .yaml or .csv"
            )
        if suffix in (".jsonl", ".ndjson"):
            rows = _jsonl_stream(Path(path), file, hashes)
        elif suffix == ".csv":
            rows = _csv_stream(Path(path), file, hashes, step_ids)
        else:
            raw = _read(Path(path), file)
            hashes[file] = hashlib.sha256(raw).hexdigest()
            text = _decode(raw, file)
            rows = _yaml_rows(text, file) if suffix in (".yaml", ".yml") else _json_rows(text, file)
        count = 0
        for row, loc in rows:
            count += 1
            try:
                case = _case(row, loc, step_ids)
            except RelcheckError as exc:
                problems.append(exc)
                if len(problems) >= MAX_ERRORS:
                    break
                continue
            if not unique:
                yield case
                continue
            if case.id in seen:
                first = Location(*seen[case.id])
                problems.append(EvalSetError(f"duplicate case id '{case.id}'", loc, hint=f"first defined at {first}"))
                continue
            seen[case.id] = (loc.file, loc.line)
            if not problems:
                yield case
        if count == 0:
            problems.append(EvalSetError("the eval set is empty: no cases", Location(file)))
    if problems:
        raise problems[0] if len(problems) == 1 else MultipleErrors(problems[:MAX_ERRORS])


def _jsonl_stream(path: Path, file: str, hashes: dict[str, str]) -> Iterator[tuple[Any, Location]]:
    """JSONL rows read line by line (bounded memory), hashing the bytes as they pass."""
    digest = hashlib.sha256()
    fh = open_regular(path, file, EvalSetError, "eval set")
    with fh:
        for lineno, line in _decoded(bounded_lines(fh, file, EvalSetError), file, digest):
            if not line.strip():
                continue
            try:
                row = bounded_loads(line, unique_keys=True)
            except BadJson as exc:
                raise EvalSetError(exc.msg, Location(file, lineno, exc.colno)) from None
            yield row, Location(file, lineno)
    hashes[file] = digest.hexdigest()


def _csv_stream(
    path: Path, file: str, hashes: dict[str, str], step_ids: set[str] | None = None
) -> Iterator[tuple[Any, Location]]:
    """CSV rows read line by line (bounded memory), hashing the bytes as they pass."""
    digest = hashlib.sha256()
    fh = open_regular(path, file, EvalSetError, "eval set")
    with fh:
        yield from _csv_rows(_text_lines(bounded_lines(fh, file, EvalSetError), file, digest), file, step_ids)
        for raw in fh:  # _csv_rows stops only at the end, but hash every byte regardless
            digest.update(raw)
    hashes[file] = digest.hexdigest()


# A line as io.StringIO(text, newline="") splits it (what csv.reader expects): ends after
# "\r\n", "\r" or "\n", and no other character.
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _text_lines(fh: Iterable[bytes], file: str, digest: Any) -> Iterator[str]:
    """The UTF-8 text of binary ``fh`` (a BOM at the start is dropped) in the lines
    ``io.StringIO(text, newline="")`` would give, so ``csv.reader``'s ``line_num`` is unchanged.

    A UTF-8 sequence never contains the byte "\n", so decoding line by line accepts and
    refuses exactly what decoding the whole file does, and the failing line is the physical one.
    """
    for _, text in _decoded(fh, file, digest):
        cr = text.find("\r")
        if cr == -1 or (cr == len(text) - 2 and text.endswith("\n")):
            if text:  # a file that is only a BOM has no lines
                yield text
        else:  # a lone "\r" ends a line too
            yield from _LINES.findall(text)


def _decoded(fh: Iterable[bytes], file: str, digest: Any) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line of binary ``fh``, decoded as UTF-8 (a BOM at the
    start is dropped), hashing the bytes into ``digest`` as they pass."""
    for lineno, raw in enumerate(fh, start=1):
        digest.update(raw)
        try:
            text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(exc, Location(file, lineno)) from None
        yield lineno, text


def _not_utf8(exc: UnicodeDecodeError, loc: Location) -> EvalSetError:
    # exc.object, not the raw bytes: with a BOM, "utf-8-sig" reports offsets past the BOM
    return EvalSetError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x})", loc)


def _read(path: Path, file: str) -> bytes:
    return read_regular(path, file, EvalSetError, "eval set", MAX_WHOLE_EVALSET_BYTES)


@contextmanager
def _file_errors(file: str) -> Iterator[None]:
    """Turn the OS's complaints about an eval set file into one EvalSetError."""
    try:
        yield
    except FileNotFoundError:
        raise EvalSetError("no such eval set file", Location(file)) from None
    except IsADirectoryError:
        raise EvalSetError("is a directory, not an eval set file", Location(file)) from None
    except OSError as exc:
        raise EvalSetError(f"cannot read: {exc.strerror}", Location(file)) from None


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1  # offsets in exc.object: past any BOM
        raise _not_utf8(exc, Location(file, line)) from None


def _json_rows(text: str, file: str) -> Iterable[tuple[Any, Location]]:
    try:
        data = bounded_loads(text, unique_keys=True)
    except BadJson as exc:
        raise EvalSetError(exc.msg, Location(file, exc.lineno, exc.colno)) from None
    if not isinstance(data, list):
        raise EvalSetError("a .json eval set must be a list of cases", Location(file, 1))
    for i, row in enumerate(data):
        yield row, Location(file, None, None, f"[{i}]")


def _yaml_rows(text: str, file: str) -> Iterable[tuple[Any, Location]]:
    data, positions = load_yaml(text, file, error=EvalSetError, data_scalars=True)
    prefix: tuple[Any, ...] = ()
    if isinstance(data, dict) and set(data) == {"cases"}:
        data, prefix = data["cases"], ("cases",)
    if data is None:
        return
    if not isinstance(data, list):
        raise EvalSetError("a YAML eval set must be a list of cases (or `cases:` with a list)", Location(file, 1, 1))
    for i, row in enumerate(data):
        loc = positions.locate(prefix + (i,))
        yield row, Location(file, loc.line, loc.column)


def _csv_rows(lines: Iterable[str], file: str, step_ids: set[str] | None = None) -> Iterable[tuple[Any, Location]]:
    """Rows of CSV ``lines`` (as ``io.StringIO(text, newline="")`` splits them); a row's line
    is where it starts, from ``reader.line_num``, so quoted fields may span lines. With the
    pipeline's ``step_ids``, an ``expect.<step>`` column naming no step is an error."""
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise EvalSetError(f"invalid CSV: {exc}", Location(file, 1)) from None
    seen_cols: set[str] = set()
    for col in header:
        if col not in ("id", "tags") and not col.startswith(("vars.", "expect.")):
            raise EvalSetError(
                f"unknown CSV column '{col}'",
                Location(file, 1, None, col),
                hint="columns are id, tags, vars.<name>, expect.<step>",
            )
        if col in seen_cols:
            raise EvalSetError(
                f"duplicate CSV column '{col}'",
                Location(file, 1, None, col),
                hint="each column may appear once (a later one would silently win)",
            )
        seen_cols.add(col)
        if step_ids is not None and col.startswith("expect.") and col[7:] not in step_ids:
            import difflib

            close = difflib.get_close_matches(col[7:], sorted(step_ids), n=1)
            raise EvalSetError(
                f"CSV column '{col}' names no step of the pipeline",
                Location(file, 1, None, col),
                hint=(f"did you mean 'expect.{close[0]}'? " if close else "") + "steps: " + ", ".join(sorted(step_ids)),
            )
    if "id" not in header:
        raise EvalSetError("the CSV has no 'id' column", Location(file, 1))
    line = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise EvalSetError(f"invalid CSV: {exc}", Location(file, reader.line_num)) from None
        loc = Location(file, line + 1)
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise EvalSetError(f"row has {len(values)} fields, the header has {len(header)}", loc)
        row: dict[str, Any] = {"vars": {}, "expect": {}}
        for col, value in zip(header, values):
            if col == "id":
                row["id"] = value
            elif col == "tags":
                row["tags"] = [t.strip() for t in value.split(";") if t.strip()]
            else:
                group, name = col.split(".", 1)
                row[group][name] = value
        yield row, loc


def _case(row: Any, loc: Location, step_ids: set[str] | None) -> Case:
    def err(msg: str, key: str | None = None, hint: str | None = None) -> EvalSetError:
        return EvalSetError(msg, Location(loc.file, loc.line, loc.column, key or loc.key), hint=hint)

    if not isinstance(row, dict):
        raise err(f"a case must be an object with an 'id', got {type(row).__name__}")
    for key in row:
        if key not in CASE_KEYS:
            raise err(f"unknown key '{key}'", key, hint="a case has " + ", ".join(CASE_KEYS))
    case_id = row.get("id")
    if case_id is None or case_id == "":
        raise err("missing required key 'id'", "id")
    if not isinstance(case_id, str):
        raise err(
            f"'id' must be a string, got {type(case_id).__name__} {case_id!r}", "id", hint=f'write "id": "{case_id}"'
        )
    for key in ("vars", "expect"):
        if not isinstance(row.get(key, {}), dict):
            raise err(f"'{key}' must be a mapping", key)
    tags = row.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise err("'tags' must be a list of strings", "tags")
    checks_raw = row.get("checks", {})
    if not isinstance(checks_raw, dict):
        raise err("'checks' must map a step id to a list of checks", "checks")
    checks: dict[str, tuple[CheckPlan, ...]] = {}
    if checks_raw:
        from ..checks import REGISTRY, validate_spec
    for step_id, specs in checks_raw.items():
        key = f"checks.{step_id}"
        if step_ids is not None and step_id not in step_ids:
            raise err(f"checks name unknown step '{step_id}'", key, hint="steps: " + ", ".join(sorted(step_ids)))
        if not isinstance(specs, list):
            specs = [specs]
        plans = []
        for j, spec in enumerate(specs):
            if not isinstance(spec, dict):
                raise err("a check must be a mapping like {type: equals, value: …}", f"{key}[{j}]")
            entry = REGISTRY.get(str(spec.get("type", "")).removeprefix("not-"))
            if entry is not None and entry.code:
                raise err(
                    f"a '{spec['type']}' check runs code and is refused in an eval set",
                    f"{key}[{j}]",
                    hint="eval sets are data; put code checks in the pipeline",
                )
            problems = validate_spec(spec)
            if problems:
                raise err(problems[0], f"{key}[{j}]")
            plans.append(CheckPlan(spec, {}, Location(loc.file, loc.line, loc.column, f"{key}[{j}]"), source="evalset"))
        checks[step_id] = tuple(plans)
    return Case(case_id, row.get("vars") or {}, row.get("expect") or {}, tuple(tags), checks, loc)


def evalset_hash(hashes: Mapping[str, str]) -> str:
    """One digest over every eval set file (order-sensitive)."""
    return hashlib.sha256(json.dumps(list(hashes.values())).encode()).hexdigest()
