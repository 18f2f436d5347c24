"""OTLP JSON traces: one ``TracesData`` document, or JSON Lines of them (the file exporter).

Both encodings in use are read: the OTLP/JSON one (hex ids, enum integers) and protobuf's
canonical JSON (``MessageToJson``: base64 ids, enum names); 64-bit integers as strings or
numbers; camelCase or the proto's snake_case field names. GenAI attributes are read in their
current and older spellings (``gen_ai.provider.name`` / ``gen_ai.system``,
``gen_ai.usage.input_tokens`` / ``prompt_tokens``); OpenInference and MCP spans too.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping, Sequence
from sys import intern
from typing import Any

from .records import (
    MAX_NS,
    BadRecord,
    BadRecords,
    HashingFile,
    TraceRecord,
    as_int,
    check_order,
    checked_ns,
    error_kind,
    json_items,
    new_record,
    output_text,
    read_record,
)

STATUS_ERROR = (2, "2", "STATUS_CODE_ERROR", "ERROR")
_VALUE_KEYS = {
    "stringValue": None,
    "string_value": None,
    "boolValue": None,
    "bool_value": None,
    "intValue": int,
    "int_value": int,
    "doubleValue": float,
    "double_value": float,
}


def _get(d: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = d.get(camel)
    return d.get(snake) if value is None else value


def value_of(v: Any) -> Any:
    """An OTLP ``AnyValue`` as a plain value (arrays as lists, kvlists as dicts)."""
    if not isinstance(v, dict):
        return v
    for key, conv in _VALUE_KEYS.items():
        if key in v:
            raw = v[key]
            return conv(raw) if conv is not None and raw is not None else raw
    arr = _get(v, "arrayValue", "array_value")
    if arr is not None:
        return [value_of(x) for x in (arr.get("values") or [])]
    kv = _get(v, "kvlistValue", "kvlist_value")
    if kv is not None:
        return attributes_of(kv.get("values") or [])
    raw = _get(v, "bytesValue", "bytes_value")
    return raw


def attributes_of(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        raise BadRecord("attributes: expected a list of {key, value}")
    out: dict[str, Any] = {}
    try:
        for a in items:
            v = a.get("value")
            text = v.get("stringValue") if v.__class__ is dict else None
            out[a["key"]] = text if text is not None else value_of(v)
    except (AttributeError, KeyError, TypeError):
        raise BadRecord("attributes: an item is not {key, value}") from None
    return out


def hex_id(value: Any, length: int, what: str, required: bool = True) -> str | None:
    """A trace (16 bytes) or span (8 bytes) id, hex or base64, as lowercase hex."""
    if value in (None, ""):
        if required:
            raise BadRecord(f"{what}: missing")
        return None
    if not isinstance(value, str):
        raise BadRecord(f"{what}: expected a string, got {json.dumps(value)[:40]}")
    if len(value) == 2 * length:
        try:
            bytes.fromhex(value)
            return value.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != length:
        raise BadRecord(f"{what}: {value[:40]!r} is neither {2 * length} hex digits nor base64 of {length} bytes")
    if not any(raw):
        if required:
            raise BadRecord(f"{what}: all zero (invalid)")
        return None
    return raw.hex()


def _nanos(value: Any, what: str, required: bool) -> int | None:
    if value in (None, "", 0, "0"):
        if required:
            raise BadRecord(f"{what}: missing")
        return None
    if isinstance(value, bool):
        raise BadRecord(f"{what}: expected an integer")
    try:
        ns = int(value)
    except (TypeError, ValueError, OverflowError):
        raise BadRecord(f"{what}: expected an integer of nanoseconds, got {json.dumps(value)[:40]}") from None
    return checked_ns(ns, what, json.dumps(value)[:40])


def default_step(attrs: Mapping[str, Any], name: str) -> str | None:
    """The step a span stands for when no pipeline maps it: ``gen_ai.operation.name`` with the
    tool, agent or model name (``execute_tool lookup``, ``chat gpt-4o``); MCP's method with
    its tool; OpenInference's span kind with its tool or model. ``None``: not a GenAI span."""
    op = attrs.get("gen_ai.operation.name")
    tool = attrs.get("gen_ai.tool.name") or attrs.get("tool.name")
    method = attrs.get("mcp.method.name")
    if method is not None:  # an MCP span (which may also say execute_tool): its method is more exact
        return f"{method} {tool}" if tool else str(method)
    if op is None:
        kind = attrs.get("openinference.span.kind")
        if kind is None:
            return None
        target = tool or attrs.get("llm.model_name") or name
        return f"{str(kind).lower()} {target}"
    if op == "execute_tool":
        target = tool
    elif op in ("invoke_agent", "create_agent"):
        target = attrs.get("gen_ai.agent.name")
    else:
        target = attrs.get("gen_ai.request.model") or attrs.get("gen_ai.response.model")
    return f"{op} {target}" if target else str(op)


_OUTPUT_KEYS = ("gen_ai.output.messages", "gen_ai.completion", "output.value", "gen_ai.tool.call.result")
_OUTPUT_ANY = frozenset((*_OUTPUT_KEYS, "gen_ai.completion.0.content"))  # a span without any has no output


def _output(attrs: Mapping[str, Any], events: Sequence[dict[str, Any]]) -> str | None:
    """The span's output, where the opt-in content attributes (or events) carry it."""
    for key in _OUTPUT_KEYS:
        value = attrs.get(key)
        if value is not None:
            return _decoded_text(value)
    if "gen_ai.completion.0.content" in attrs:  # the older indexed spelling
        return "\n".join(str(attrs[k]) for k in (f"gen_ai.completion.{i}.content" for i in range(16)) if k in attrs)
    for ev in events:
        if ev.get("name") == "gen_ai.choice":
            ev_attrs = ev.get("attrs", {})
            body = ev_attrs.get("message") or ev_attrs.get("gen_ai.event.content")
            if body is not None:
                return _decoded_text(body)
    return None


def _decoded_text(value: Any) -> str | None:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return output_text(json.loads(value))
        except ValueError:
            return value
    return output_text(value)


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return None


_TOKENS_IN = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
_TOKENS_OUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion")


def span_record(span: Any, line: int | None) -> TraceRecord:
    """One OTLP span → its record.

    The hot path of ``relcheck traces`` (a million spans go through it): the file exporter's
    case — camelCase keys, lowercase hex ids, times as decimal strings, string and integer
    attributes, no events — is read by :func:`_plain_record`; any other span, and any span
    that path has a doubt about, by :func:`_general_record`: both give the same record."""
    found = _plain_record(span, line) if span.__class__ is dict else None
    return _general_record(span, line) if found is None else found


def _plain_record(span: dict[str, Any], line: int | None) -> TraceRecord | None:
    get = span.get
    trace = get("traceId")
    span_id = get("spanId")
    parent = get("parentSpanId")
    start = get("startTimeUnixNano")
    end = get("endTimeUnixNano")
    items = get("attributes")
    name = get("name")
    status = get("status")
    if not (
        trace.__class__ is str
        and span_id.__class__ is str
        and start.__class__ is str
        and end.__class__ is str
        and name.__class__ is str
        and items.__class__ is list
        and len(trace) == 32
        and len(span_id) == 16
        and (parent is None or (parent.__class__ is str and len(parent) == 16))
        and (status is None or status.__class__ is dict)
        and start not in ("", "0")
        and end not in ("", "0")
        and not get("events")
    ):
        return None
    ids = trace + span_id if parent is None else trace + span_id + parent
    attrs: dict[str, Any] = {}
    try:
        # lowercase hex digits only: fromhex skips whitespace (then fewer bytes) and reads
        # uppercase (then another hex text)
        if bytes.fromhex(ids).hex() != ids:
            return None
        start_ns = int(start)
        end_ns = int(end)
        if not 0 < start_ns <= end_ns <= MAX_NS:  # the general code names what is wrong
            return None
        for a in items:
            v = a.get("value")
            if v.__class__ is dict:
                text = v.get("stringValue")
                if text is None:
                    text = v.get("intValue") if len(v) == 1 else None
                    text = value_of(v) if text is None else int(text)
            else:
                text = value_of(v)
            attrs[a["key"]] = text
    except (AttributeError, KeyError, TypeError, ValueError, RecursionError):
        return None
    kind = reason = None
    errored = status.get("code") in STATUS_ERROR if status else False
    if errored:
        message = status.get("message") or None  # type: ignore[union-attr]
        kind = error_kind(attrs.get("error.type") or None, message)
        reason = message or kind
    op = attrs.get("gen_ai.operation.name")
    tokens_in: Any = 0
    tokens_out: Any = 0
    if "gen_ai.operation.name" in attrs or "openinference.span.kind" in attrs:
        tokens_in = attrs.get("gen_ai.usage.input_tokens")
        if tokens_in.__class__ is not int:
            tokens_in = as_int(_first(attrs, *_TOKENS_IN))
        tokens_out = attrs.get("gen_ai.usage.output_tokens")
        if tokens_out.__class__ is not int:
            tokens_out = as_int(_first(attrs, *_TOKENS_OUT))
    call = attrs.get("gen_ai.tool.call.id")
    return new_record(  # type: ignore[no-any-return]
        TraceRecord,
        (
            intern(trace),  # (one object per trace: the spill's marshal then writes it once a buffer)
            start_ns,
            end_ns,
            span_id,
            parent,
            errored,
            kind,
            reason,
            tokens_in,
            tokens_out,
            None if call is None else str(call),
            line,
            name,
            op,
            None if attrs.keys().isdisjoint(_OUTPUT_ANY) else _output(attrs, ()),
            attrs,
            default_step(attrs, name),
        ),
    )


def _general_record(span: Any, line: int | None) -> TraceRecord:
    if not isinstance(span, dict):
        raise BadRecord("a span must be an object")
    trace = hex_id(_get(span, "traceId", "trace_id"), 16, "traceId")
    span_id = hex_id(_get(span, "spanId", "span_id"), 8, "spanId")
    parent = hex_id(_get(span, "parentSpanId", "parent_span_id"), 8, "parentSpanId", required=False)
    name = span.get("name")
    if not isinstance(name, str):
        raise BadRecord("name: missing or not a string")
    start = _nanos(_get(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano", True)
    end = _nanos(_get(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano", False)
    assert start is not None  # required
    check_order(start, end, "startTimeUnixNano", "endTimeUnixNano")
    attrs = attributes_of(span.get("attributes") or [])
    raw_events = span.get("events")
    events: list[dict[str, Any]] = (
        [
            {"name": ev.get("name"), "attrs": attributes_of(ev.get("attributes") or [])}
            for ev in raw_events
            if isinstance(ev, dict)
        ]
        if raw_events
        else []
    )
    status = span.get("status") or {}
    if not isinstance(status, dict):
        raise BadRecord("status: expected an object")
    errored = status.get("code") in STATUS_ERROR
    message = status.get("message") or None
    kind = reason = None
    if errored:
        exc: dict[str, Any] = next((e["attrs"] for e in events if e["name"] == "exception"), {})
        kind = error_kind(attrs.get("error.type") or exc.get("exception.type"), message)
        reason = message or exc.get("exception.message") or kind
    tokens_in = tokens_out = 0
    if "gen_ai.operation.name" in attrs or "openinference.span.kind" in attrs:
        tokens_in = as_int(_first(attrs, *_TOKENS_IN))
        tokens_out = as_int(_first(attrs, *_TOKENS_OUT))
    call = attrs.get("gen_ai.tool.call.id")
    return TraceRecord(
        trace=trace,  # type: ignore[arg-type]
        start=start,  # type: ignore[arg-type]
        end=end,
        id=span_id,  # type: ignore[arg-type]
        parent=parent,
        error=errored,
        error_kind=kind,
        reason=reason,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        call_id=str(call) if call is not None else None,
        line=line,
        name=name,
        kind=attrs.get("gen_ai.operation.name"),
        output=_output(attrs, events),
        attributes=attrs,
        default_step=default_step(attrs, name),
    )


def read(source: HashingFile, bad: BadRecords) -> Iterator[TraceRecord]:
    """Every span of an OTLP JSON file, in file order."""
    file = str(source.path)
    for doc, line, item in json_items(source, bad, ()):
        try:
            spans = list(_spans(doc))
        except BadRecord as exc:
            exc.line, exc.item = exc.line or line, item
            bad.add(file, exc)
            continue
        for j, span in enumerate(spans):
            found = _plain_record(span, line) if span.__class__ is dict else None  # (span_record, inline)
            if found is not None:
                yield found
                continue
            try:
                yield read_record(_general_record, span, line)
            except BadRecord as exc:
                exc.line = line
                exc.message = f"span {j} of the document: {exc.message}" if line is not None else exc.message
                exc.item = item if item is not None else (j if line is None else None)
                bad.add(file, exc)


def _spans(doc: Any) -> Iterator[Any]:
    if not isinstance(doc, dict):
        raise BadRecord("expected a TracesData object with resourceSpans")
    resource_spans = _get(doc, "resourceSpans", "resource_spans")
    if not isinstance(resource_spans, list):
        raise BadRecord("expected a TracesData object with resourceSpans")
    for rs in resource_spans:
        if not isinstance(rs, dict):
            raise BadRecord("resourceSpans: an item is not an object")
        scopes = (
            _get(rs, "scopeSpans", "scope_spans")
            or _get(rs, "instrumentationLibrarySpans", "instrumentation_library_spans")
            or []
        )
        for ss in scopes:
            if not isinstance(ss, dict) or not isinstance(ss.get("spans", []), list):
                raise BadRecord("scopeSpans: an item without a list of spans")
            yield from ss.get("spans") or []


def looks_like(item: Any) -> bool:
    return isinstance(item, dict) and ("resourceSpans" in item or "resource_spans" in item)
