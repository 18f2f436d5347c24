"""The normalised record every trace reader yields, and what the readers share.

A reader (OTLP, LangSmith, Langfuse) turns one span, run or observation into one
:class:`TraceRecord`: ids, name, kind, start and end in nanoseconds since the epoch, whether
it errored and with which kind, tokens, the tool-call id, the output text where the record
carries one, and the attributes a ``traces:`` ``match:`` may look at. Readers stream: they
yield records as they read lines, and a malformed record raises :class:`BadRecord` with its
place, which :class:`BadRecords` counts under ``--skip-bad``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from ..errors import Location, TracesError

T = TypeVar("T")

try:  # optional: parses the spans' JSON about twice as fast; the stdlib's json is the fallback
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None  # type: ignore[assignment]

OUTPUT_LIMIT = 2048  # characters of output kept per attempt in the journal (as eval does)
EXAMPLES_KEPT = 10  # malformed records named in the report under --skip-bad


class TraceRecord(NamedTuple):
    """One span / run / observation, normalised. ``end`` is ``None`` for an incomplete record.

    A tuple whose first :data:`SPILLED` fields are what :mod:`.spill` stores of it, in its
    order, so a stored row is one slice of the record (a million of them go through)."""

    trace: str
    start: int
    end: int | None
    id: str
    parent: str | None
    error: bool
    error_kind: str | None
    reason: str | None
    tokens_in: int
    tokens_out: int
    call_id: str | None
    line: int | None
    name: str
    kind: str | None
    output: str | None
    attributes: Mapping[str, Any]
    default_step: str | None


SPILLED = 12  # trace … line: the fields a stored row keeps (then its step, output and file)
new_record = tuple.__new__  # new_record(TraceRecord, (…17 values…)): without NamedTuple's Python __new__


class BadRecord(Exception):
    """A record that cannot be read; ``line`` (1-based) or ``item`` (0-based) says where."""

    def __init__(self, message: str, line: int | None = None, item: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.item = item

    def location(self, file: str) -> Location:
        return Location(file, self.line, key=f"[{self.item}]" if self.item is not None else None)


@dataclass
class BadRecords:
    """Malformed records: raised at once (exit 2), or counted and skipped (``--skip-bad``)."""

    skip: bool = False
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, file: str, exc: BadRecord) -> None:
        where = exc.location(file)
        if not self.skip:
            raise TracesError(
                f"malformed record: {exc.message}",
                where,
                hint="fix or remove the record, or pass --skip-bad to count and skip it",
            )
        self.count += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(f"{where}: {exc.message}")


def _json_loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError:  # nesting past the interpreter's stack: a malformed record, not a crash
        raise ValueError("nested too deeply") from None


def _fast_loads(data: bytes) -> Any:
    try:
        return _orjson.loads(data)
    except ValueError:  # (orjson refuses what json may accept: NaN, huge integers, UTF-16, …)
        return _json_loads(data)  # the same value, or the same error, as without orjson


loads = _fast_loads if _orjson is not None else _json_loads
"""JSON text → value, as :func:`json.loads` gives it — through ``orjson`` where it is installed,
which gives the same values except that it reads an integer wider than 64 bits (outside
OTLP's int64, and beyond any timestamp or token count) as a float."""


#: The longest line of a traces file, and the largest single (pretty-printed) JSON document,
#: read: each is held in memory whole. An OpenTelemetry Collector's file exporter writes one
#: export batch a line (8,192 spans by default), well below it.
MAX_TRACE_LINE_BYTES = 256 * 1024 * 1024


def trace_lines(fh: Any, file: str, first_line: int = 1) -> Iterator[bytes]:
    """The lines of binary ``fh`` (numbered from ``first_line``), each at most
    :data:`MAX_TRACE_LINE_BYTES`: a longer one (a file without newlines) is refused, exit 2,
    rather than read into memory whole."""
    from ..config.limits import bounded_lines

    hint = "a line is read whole: export smaller batches (the exporters write one batch a line)"
    return bounded_lines(fh, file, TracesError, MAX_TRACE_LINE_BYTES, first_line, hint)  # type: ignore[no-any-return]


class HashingFile:
    """Reads a file in binary, line by line, hashing every byte (the input's SHA-256)."""

    lines_only = False  # a JSON reader may decide the file is one (pretty-printed) document

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256 = hashlib.sha256()

    def lines(self) -> Iterator[tuple[int, bytes]]:
        with open(self.path, "rb") as fh:
            for number, line in enumerate(trace_lines(fh, str(self.path)), 1):
                self.sha256.update(line)
                yield number, line

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


class FileRange(HashingFile):
    """The lines of ``path`` in bytes ``[start, end)`` (both at line starts), numbered from
    ``first_line``: one worker's share of a JSON Lines file (:mod:`.parallel`). Not hashed
    (the whole file's hash is taken by the reader that split it); always read as lines — the
    splitter checked that the file's first record is a line."""

    lines_only = True

    def __init__(self, path: Path, start: int, end: int, first_line: int) -> None:
        super().__init__(path)
        self.start, self.end, self.first_line = start, end, first_line

    def lines(self) -> Iterator[tuple[int, bytes]]:
        left = self.end - self.start
        if left <= 0:
            return
        with open(self.path, "rb") as fh:
            fh.seek(self.start)
            for number, line in enumerate(trace_lines(fh, str(self.path), self.first_line), self.first_line):
                yield number, line
                left -= len(line)
                if left <= 0:
                    return


def json_items(
    source: HashingFile, bad: BadRecords, list_keys: tuple[str, ...] = ("data",)
) -> Iterator[tuple[Any, int | None, int | None]]:
    """Yield ``(item, line, index)``: each line of a JSON Lines file, streamed; or, where the
    file is one JSON document (pretty-printed), the document itself, or each element of a
    top-level array (or of the array under one of ``list_keys``, as the Langfuse API returns).
    A single document is read whole: the exporters that write millions of records write lines.
    """
    file = str(source.path)
    mode: str | None = "lines" if source.lines_only else None  # "lines" or "whole": by the first non-empty line
    buffered: list[bytes] = []
    first = 1
    held = 0  # bytes of the document being buffered
    for number, raw in source.lines():
        if mode == "whole":
            buffered.append(raw)
            held += len(raw)
            if held > MAX_TRACE_LINE_BYTES:
                from ..config.limits import size_text

                raise TracesError(
                    f"a single JSON document larger than {size_text(MAX_TRACE_LINE_BYTES)} "
                    "(such a document is read whole)",
                    Location(file, first),
                    hint="export JSON Lines (one record or TracesData a line), which is streamed, "
                    "e.g. jq -c '.[]' FILE > FILE.jsonl",
                )
            continue
        text = raw.strip()
        if not text:
            continue
        try:
            item = loads(text)
        except ValueError as exc:  # (JSONDecodeError and UnicodeDecodeError)
            if mode is None and text[:1] in (b"{", b"["):
                mode, buffered, first, held = "whole", [raw], number, len(raw)  # a pretty-printed document
                continue
            mode = "lines"
            bad.add(file, BadRecord(f"not valid JSON ({getattr(exc, 'msg', exc)})", line=number))
            continue
        mode = "lines"
        yield from _expand(item, number, list_keys)
    if mode != "whole":
        return
    try:
        doc = loads(b"".join(buffered))
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        bad.add(
            file, BadRecord(f"not valid JSON ({getattr(exc, 'msg', exc)})", line=first - 1 + line if line else first)
        )
        return
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            yield item, None, i
    elif isinstance(doc, dict) and "id" not in doc and any(isinstance(doc.get(k), list) for k in list_keys):
        key = next(k for k in list_keys if isinstance(doc.get(k), list))
        for i, item in enumerate(doc[key]):
            yield item, None, i
    else:
        yield doc, first, None


def _expand(item: Any, number: int, list_keys: tuple[str, ...]) -> Iterator[tuple[Any, int | None, int | None]]:
    if isinstance(item, list):  # a JSON array on one line
        for i, sub in enumerate(item):
            yield sub, number, i
    elif isinstance(item, dict) and any(isinstance(item.get(k), list) for k in list_keys) and "id" not in item:
        key = next(k for k in list_keys if isinstance(item.get(k), list))
        for i, sub in enumerate(item[key]):
            yield sub, number, i
    else:
        yield item, number, None


# ---------------------------------------------------------------- shared field decoding

_FRACTION = re.compile(r"(\.\d+)")


def parse_time(value: Any, what: str) -> int:
    """A timestamp (ISO 8601 text, or a number of s/ms/µs/ns since the epoch) → ns since the epoch.

    Raises:
        BadRecord: neither.
    """
    if isinstance(value, bool) or value is None:
        raise BadRecord(f"{what}: expected a timestamp, got {json.dumps(value)}")
    if isinstance(value, (int, float)):
        return _epoch_number(float(value), what)
    if not isinstance(value, str) or not value:
        raise BadRecord(f"{what}: expected a timestamp, got {json.dumps(value)[:60]}")
    text = value.strip()
    if text.isdigit():
        return _epoch_number(float(text), what)
    iso = text.replace(" ", "T", 1) if "T" not in text else text
    if iso.endswith(("Z", "z")):
        iso = iso[:-1] + "+00:00"
    frac = _FRACTION.search(iso)
    nanos = 0
    if frac is not None:  # datetime keeps microseconds; the rest (to ns) is added back
        digits = frac.group(1)[1:]
        nanos = int((digits + "000000000")[:9]) % 1000
        iso = iso[: frac.start()] + "." + (digits + "000000")[:6] + iso[frac.end() :]
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise BadRecord(f"{what}: not an ISO 8601 timestamp: {text[:60]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # the exporters write UTC without an offset
    delta = moment - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000 + nanos
    return checked_ns(ns, what, text[:60])


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: the latest time a record may carry: OTLP's times are unsigned 64-bit nanoseconds since the
#: epoch (1970 to 2554); every format is held to that range
MAX_NS = 2**64 - 1


def read_record(build: Callable[..., T], *args: Any) -> T:
    """``build(*args)``, a record's reader: a value nested past the interpreter's stack
    (``RecursionError`` while it is walked) is a malformed record, not a crash."""
    try:
        return build(*args)
    except RecursionError:
        raise BadRecord("a value is nested too deeply to read") from None


def checked_ns(ns: int, what: str, shown: Any = None) -> int:
    """``ns`` if it lies in 1970 to 2554 (:data:`MAX_NS`); else :class:`BadRecord` naming ``what``."""
    if 0 <= ns <= MAX_NS:
        return ns
    raise BadRecord(f"{what}: {ns if shown is None else shown} is out of range (a time from 1970 to 2554)")


def check_order(start: int, end: int | None, start_name: str, end_name: str) -> None:
    """:class:`BadRecord` when a record ends before it starts (its latency would be negative)."""
    if end is not None and end < start:
        raise BadRecord(f"{end_name} is before {start_name} (the record ends before it starts)")


def _epoch_number(x: float, what: str) -> int:
    if not math.isfinite(x):
        raise BadRecord(f"{what}: expected a timestamp, got {x}")
    if x > 1e17:
        ns = int(x)
    elif x > 1e14:
        ns = int(x * 1e3)
    elif x > 1e11:
        ns = int(x * 1e6)
    else:
        ns = int(x * 1e9)
    return checked_ns(ns, what, x)


def iso(ns: int | None) -> str | None:
    """ns since the epoch → ISO 8601 UTC text (ms precision)."""
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds")


_CLASS = re.compile(r"^\s*(?:[A-Za-z_]\w*\.)*([A-Z]\w*)\s*(?:[:(]|$)")
# error classes of the OpenAI and Anthropic SDKs (and httpx, asyncio) → SPEC §4's kinds
_KNOWN_KINDS = {
    "timeout": "timeout",
    "TimeoutError": "timeout",
    "APITimeoutError": "timeout",
    "ReadTimeout": "timeout",
    "ConnectTimeout": "timeout",
    "TimeoutException": "timeout",
    "CancelledError": "timeout",
    "ConnectionError": "connect",
    "APIConnectionError": "connect",
    "ConnectError": "connect",
    "RemoteProtocolError": "protocol",
    "RateLimitError": "http_429",
    "InternalServerError": "http_500",
    "BadRequestError": "http_400",
    "AuthenticationError": "http_401",
    "PermissionDeniedError": "http_403",
    "NotFoundError": "http_404",
    "UnprocessableEntityError": "http_422",
    "ConflictError": "http_409",
    "OverloadedError": "http_529",
    "ServiceUnavailableError": "http_503",
    "JSONDecodeError": "parse",
}


def error_kind(explicit: Any, message: str | None) -> str:
    """The kind of an error: ``explicit`` (``error.type``, an exception class) when given,
    else the class at the head of ``message`` (``"ValueError('x')"``, ``"RateLimitError: …"``),
    else ``error``. An HTTP status (``"503"``) becomes ``http_503`` and the SDKs' well-known
    classes become SPEC §4's kinds (``APITimeoutError`` → ``timeout``), so the infrastructure
    share is counted as ``eval`` counts it."""
    kind: str | None = None
    if explicit is not None and str(explicit).strip():
        kind = str(explicit).strip()
        if "." in kind and " " not in kind:
            kind = kind.rsplit(".", 1)[1]
    elif message:
        found = _CLASS.match(message)
        kind = found.group(1) if found else None
    if not kind:
        return "error"
    if kind.isdigit():
        return f"http_{kind}"
    return _KNOWN_KINDS.get(kind, kind)


def excerpt(text: str | None, limit: int = OUTPUT_LIMIT) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit] + "…"


def output_text(value: Any) -> str | None:
    """An output value as text: strings as they are; message shapes (``content``, ``text``,
    ``parts``, LangChain ``generations``, a single ``output`` key) by their text; anything
    else as compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = [t for t in (_message_text(v) for v in value) if t is not None]
        if texts and len(texts) == len(value):
            return "\n".join(texts)
    elif isinstance(value, dict):
        found = _message_text(value)
        if found is not None:
            return found
        gens = value.get("generations")
        if isinstance(gens, list) and gens:
            first = gens[0][0] if isinstance(gens[0], list) and gens[0] else gens[0]
            found = _message_text(first)
            if found is not None:
                return found
        if len(value) == 1:
            (only,) = value.values()
            if isinstance(only, str):
                return only
            found = output_text(only) if isinstance(only, (dict, list)) else None
            if found is not None and not found.startswith(("{", "[")):
                return found
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _message_text(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if not isinstance(v, dict):
        return None
    for key in ("content", "text"):
        if isinstance(v.get(key), str):
            return str(v[key])
    if isinstance(v.get("message"), dict):
        return _message_text(v["message"])
    parts = v.get("parts") if isinstance(v.get("parts"), list) else v.get("content")
    if isinstance(parts, list):
        found = [
            p.get("content") if isinstance(p.get("content"), str) else p.get("text")
            for p in parts
            if isinstance(p, dict) and p.get("type", "text") == "text"
        ]
        texts = [t for t in found if isinstance(t, str)]
        if texts:
            return "".join(texts)
    return None


def as_int(value: Any) -> int:
    """A token count (int, float or numeric string); anything else is 0."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return value
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0
