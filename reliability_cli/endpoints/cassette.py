"""Record and replay HTTP exchanges (SPEC §9).

A cassette is JSONL. The first line is a header (``{"relcheck_cassette": 1, …}``); every
other line is one exchange::

    {"endpoint": "llm", "method": "POST", "url": "http://127.0.0.1:8000/v1/chat/completions",
     "path": "/v1/chat/completions", "request_headers": {"content-type": "application/json"},
     "body": {...canonical, sorted keys, redacted...},
     "case": "t1", "trial": 1, "step": "classify", "attempt": 1, "phase": "chained",
     "status": 200, "response_headers": {...}, "response": "<body text>",
     "latency_ms": 12.3, "error": null, "reason": null}

Failed exchanges are lines too: ``status`` is null and ``error`` holds the kind (``timeout``,
``connect``, ``protocol``). Throttled exchanges (429/503 with ``Retry-After``) are lines of
their own, so a replay counts them again, without waiting.

What never reaches the file: any header outside :data:`HEADER_ALLOW` (so ``Authorization``,
``x-api-key``, ``api-key`` and cookies), query parameters that look like credentials, and
every JSON field named in the endpoint's ``redact:`` (removed by key name, at any depth,
from request and response bodies). Before a line is written it is searched for the value of
every ``api_key_env`` variable the pipeline names; a line containing one is replaced by a
``refused`` placeholder (so replaying it is a ``replay_miss``) and the refusal is reported.

Replay matches on (endpoint name, path, canonical redacted body, case, trial, step,
attempt) — never on host — and serves identical requests in recorded order.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import UsageError
from ..safetext import JSON_ERRORS
from ..scrub import scrub
from .base import AttemptError, Request
from .transport import Exchange

__all__ = [
    "HEADER_ALLOW",
    "Cassette",
    "Recorder",
    "Replayer",
    "canonical",
    "first_difference",
    "redact",
    "open_recorder",
    "open_replayer",
    "release",
]

HEADER_ALLOW = frozenset({"content-type", "anthropic-version", "openai-version", "retry-after", "retry-after-ms"})
_SECRET_PARAMS = ("key", "token", "secret", "password", "signature", "sig", "auth", "credential")
SCHEMA = 1


def redact(value: Any, fields: Iterable[str]) -> Any:
    """``value`` without any mapping key named in ``fields``, at any depth."""
    names = frozenset(fields)
    if not names:
        return value
    return _redact(value, names)


def _redact(value: Any, names: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _redact(v, names) for k, v in value.items() if k not in names}
    if isinstance(value, list):
        return [_redact(v, names) for v in value]
    return value


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def canonical(body: Any) -> str:
    """The canonical JSON text of a body: sorted keys, compact separators."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def safe_url(url: str) -> str:
    """``url`` without user info and with credential-like query values replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = [
            (k, "REDACTED" if any(s in k.lower() for s in _SECRET_PARAMS) else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def url_path(url: str) -> str:
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return "/"


def _key(endpoint: str, path: str, body: Any, case: str, trial: int, step: str, attempt: int) -> tuple[Any, ...]:
    # Masked as the recorder masked them, so a request holding a secret still finds its line.
    return (endpoint, scrub(path), scrub(canonical(body)), case, int(trial), step, int(attempt))


def _allowed(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() in HEADER_ALLOW}


class Recorder:
    """Appends exchanges to a cassette; refuses lines that hold a secret's value."""

    def __init__(
        self,
        path: str,
        secrets: Mapping[str, str],
        pipeline_name: str = "",
        finished: Iterable[tuple[str, int]] | None = None,
    ) -> None:
        self.path = path
        # Keys shorter than 4 characters would match everywhere; they are not real keys.
        self._secrets = {name: value for name, value in secrets.items() if len(value) >= 4}
        self.refused: dict[str, int] = {}
        target = Path(path)
        if target.parent and not target.parent.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
        # Appends: `eval --resume --record F` adds the resumed units' exchanges to the cassette.
        new = not target.exists() or target.stat().st_size == 0
        try:
            self._fh = open(target, "a", encoding="utf-8", errors=JSON_ERRORS, newline="\n")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise UsageError(f"--record {path}: cannot write the cassette: {exc.strerror or exc}") from None
        if new:
            self._write({"relcheck_cassette": SCHEMA, "pipeline": pipeline_name})
        elif finished is not None:
            # A resumed run: units cancelled by the interruption run again; what they recorded
            # before is void (else a replay would serve a cancelled unit's exchanges first).
            self._write({"relcheck_resumed": sorted([case, trial] for case, trial in finished)})

    def record(
        self,
        endpoint: str,
        request: Request,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Any,
        *,
        exchange: Exchange | None = None,
        error: AttemptError | None = None,
        redact_fields: Iterable[str] = (),
    ) -> None:
        """Write one exchange (``exchange``) or one failed exchange (``error``)."""
        fields = tuple(redact_fields)
        key = request.key
        line: dict[str, Any] = {
            "endpoint": endpoint,
            "method": method,
            "url": safe_url(url),
            "path": url_path(url),
            "request_headers": _allowed(headers),
            "body": _sorted(redact(body, fields)),
            "case": key.case,
            "trial": key.trial,
            "step": key.step,
            "attempt": key.attempt,
            "phase": request.phase,
        }
        if exchange is not None:
            line.update(
                status=exchange.status,
                response_headers=_allowed(exchange.headers),
                response=redact_text(exchange.body, fields),
                latency_ms=exchange.latency_ms,
                error=None,
                reason=None,
            )
        else:
            assert error is not None
            line.update(
                status=None,
                response_headers={},
                response=None,
                latency_ms=error.latency_ms or 0.0,
                error=error.kind,
                reason=error.reason,
            )
        raw = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
        text = scrub(raw)  # every value from the environment (in a URL, a header, a reply) masked
        leaked = self._leak(raw)
        if leaked is not None:  # an API key in the exchange: the line is refused (and the refusal masked)
            self.refused[leaked] = self.refused.get(leaked, 0) + 1
            text = scrub(
                json.dumps(
                    {
                        "endpoint": endpoint,
                        "path": line["path"],
                        "case": key.case,
                        "trial": key.trial,
                        "step": key.step,
                        "attempt": key.attempt,
                        "refused": f"the exchange contains the value of {leaked}; not recorded",
                    }
                )
            )
        self._write_line(text)

    def _write_line(self, text: str) -> None:
        try:
            self._fh.write(text + "\n")
            self._fh.flush()
        except OSError as exc:
            raise UsageError(
                f"--record {self.path}: cannot write the cassette: {exc.strerror or exc}",
                hint="record to a writable file with free space",
            ) from None

    def guard(self, secrets: Mapping[str, str]) -> None:
        """Also refuse lines holding any of these values (named by the keys in the warning)."""
        self._secrets.update({name: value for name, value in secrets.items() if len(value) >= 4})

    def record_line(self, line: Mapping[str, Any]) -> None:
        """Write one non-HTTP exchange (an MCP call): a line with ``endpoint``, ``path``,
        ``body`` and the attempt's key, refused like any other when it holds a secret."""
        raw = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
        text = scrub(raw)
        leaked = self._leak(raw)
        if leaked is not None:
            self.refused[leaked] = self.refused.get(leaked, 0) + 1
            text = scrub(
                json.dumps(
                    {k: line.get(k) for k in ("endpoint", "path", "case", "trial", "step", "attempt")}
                    | {"refused": f"the exchange contains the value of {leaked}; not recorded"}
                )
            )
        self._write_line(text)

    def _leak(self, text: str) -> str | None:
        for name, value in self._secrets.items():
            escaped = json.dumps(value, ensure_ascii=False)[1:-1]
            if value in text or escaped in text:
                return name
        return None

    def _write(self, obj: Mapping[str, Any]) -> None:
        self._write_line(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))

    def close(self) -> None:
        if self._fh.closed:
            return
        try:
            self._fh.close()
        except OSError:  # a failed write was already reported; closing cannot save what it lost
            pass
        for name, count in self.refused.items():
            # The core never prints results, but a silently incomplete cassette would surprise.
            sys.stderr.write(
                f"relcheck: warning: {count} exchange(s) not recorded in {self.path}: they "
                f"contained the value of {name}\n"
            )


class Replayer:
    """Answers requests from a cassette, matched on the request's key, in recorded order."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._queues: dict[tuple[Any, ...], deque[dict[str, Any]]] = {}
        #: every recorded request by (endpoint, step, attempt): to explain a miss
        self._by_step: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        try:
            fh = open(path, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            from ..errors import UsageError

            raise UsageError(f"--replay {path}: cannot read the cassette ({exc.strerror})") from None
        with fh:
            for number, raw in enumerate(fh, 1):
                raw = raw.strip()
                if not raw:
                    continue
                try:
                    line = json.loads(raw)
                except ValueError:
                    from ..errors import UsageError

                    raise UsageError(f"--replay {path}: line {number} is not JSON") from None
                if isinstance(line, dict) and "relcheck_resumed" in line:
                    self._void_unfinished(line["relcheck_resumed"], number)
                    continue
                if not isinstance(line, dict) or "endpoint" not in line or line.get("refused"):
                    continue
                self._check(line, number)
                key = _key(
                    line["endpoint"],
                    line["path"],
                    line.get("body"),
                    line["case"],
                    line["trial"],
                    line["step"],
                    line["attempt"],
                )
                self._queues.setdefault(key, deque()).append(line)
                self._by_step.setdefault((line["endpoint"], str(line["step"]), int(line["attempt"])), []).append(
                    {"path": line["path"], "body": line.get("body"), "case": line["case"], "trial": line["trial"]}
                )

    def take(
        self, endpoint: str, path: str, body: Any, case: str, trial: int, step: str, attempt: int, keep: bool = False
    ) -> dict[str, Any] | None:
        """The next recorded line for this key (a non-HTTP exchange), or None; ``keep`` leaves
        it in place (a listing every attempt may ask for)."""
        queue = self._queues.get(_key(endpoint, path, _sorted(body), case, trial, step, attempt))
        if not queue:
            return None
        return queue[0] if keep else queue.popleft()

    def _check(self, line: dict[str, Any], number: int) -> None:
        """A hand-edited or damaged line is bad input (exit 2), not a crash at replay time."""

        def bad(key: str, expected: str) -> UsageError:
            got = json.dumps(line.get(key), default=str)[:40] if key in line else "nothing"
            return UsageError(
                f"--replay {self.path}: line {number}: '{key}' must be {expected} (got {got})",
                hint="re-record the cassette; relcheck writes every line it reads",
            )

        for key in ("endpoint", "path", "case", "step"):
            if not isinstance(line.get(key), str):
                raise bad(key, "a string")
        for key in ("trial", "attempt"):
            if not (_is_int(line.get(key)) and line[key] >= 0):
                raise bad(key, "an integer")
        status, error = line.get("status"), line.get("error")
        if status is not None and not (_is_int(status) and 100 <= status <= 599):
            raise bad("status", "an HTTP status between 100 and 599, or null")
        if error is not None and not isinstance(error, str):
            raise bad("error", "an error kind, or null")
        if status is None and error is None and line.get("method") not in ("tools/list", "tools/call"):
            raise bad("status", "an HTTP status (or null with an 'error' kind)")
        latency = line.get("latency_ms")
        if latency is not None and not (
            isinstance(latency, (int, float))
            and not isinstance(latency, bool)
            and math.isfinite(latency)
            and latency >= 0
        ):
            raise bad("latency_ms", "a finite number of milliseconds, 0 or more")
        if line.get("response") is not None and not isinstance(line["response"], str):
            raise bad("response", "the response body as a string")
        if not isinstance(line.get("response_headers") or {}, dict):
            raise bad("response_headers", "a mapping")

    def _void_unfinished(self, finished: Any, number: int) -> None:
        """Only exchanges of the units the resumed run kept (those with a ``unit_done``) stay."""
        if not isinstance(finished, list) or not all(isinstance(u, list) and len(u) == 2 for u in finished):
            from ..errors import UsageError

            raise UsageError(f"--replay {self.path}: line {number}: relcheck_resumed is not a list of [case, trial]")
        kept = {(case, trial) for case, trial in finished}
        for key in list(self._queues):
            if (key[3], key[4]) not in kept:
                del self._queues[key]

    def answer(self, endpoint: str, request: Request, url: str, body: Any, redact_fields: Iterable[str]) -> Exchange:
        """The recorded exchange for this request.

        Raises:
            AttemptError: the recorded failure (``timeout``, ``protocol`` …), or ``replay_miss``.
        """
        k = request.key
        path = url_path(url)
        key = _key(endpoint, path, _sorted(redact(body, tuple(redact_fields))), k.case, k.trial, k.step, k.attempt)
        queue = self._queues.get(key)
        if not queue:
            raise AttemptError("replay_miss", self.explain_miss(endpoint, path, key[2], request), latency_ms=0.0)
        line = queue.popleft()
        latency = float(line.get("latency_ms") or 0.0)
        if line.get("error"):
            raise AttemptError(str(line["error"]), str(line.get("reason") or line["error"]), latency_ms=latency)
        response = line.get("response")
        return Exchange(
            int(line["status"]), dict(line.get("response_headers") or {}), (response or "").encode("utf-8"), latency
        )

    def explain_miss(self, endpoint: str, path: str, body_text: str, request: Request) -> str:
        """Why nothing matched: the closest recorded request and the first field that differs.

        Closest: a recording of the same endpoint, step and attempt for this case and trial,
        else for another case (the one whose body shares the longest prefix with this one).
        """
        k = request.key
        name = os.path.basename(self.path)
        where = f"step {k.step}, attempt {k.attempt}"
        candidates = self._by_step.get((endpoint, k.step, int(k.attempt)), [])
        if not candidates:
            return (
                f"{where}: no recording in {name} for endpoint '{endpoint}' step {k.step} attempt {k.attempt} "
                f"(case {k.case}, trial {k.trial})"
            )
        same = [c for c in candidates if c["case"] == k.case and int(c["trial"]) == int(k.trial)]
        if same and any(canonical(c["body"]) == body_text and c["path"] == path for c in same):
            return (
                f"{where}: every recording of this request in {name} (case {k.case}, trial {k.trial}) "
                "was already answered"
            )
        pool = same or candidates
        best = max(pool, key=lambda c: (c["path"] == path, _common_prefix(canonical(c["body"]), body_text)))
        sent = json.loads(body_text)
        diff: str | None
        if best["path"] != path:
            diff = f"path {path} differs from the recorded {best['path']}"
        else:
            diff = first_difference(sent, best["body"])
        if diff is None:
            return (
                f"{where}: {name} has this request for case {best['case']}, trial {best['trial']}, "
                f"not for case {k.case}, trial {k.trial} (recorded with fewer trials or other cases?)"
            )
        other = "" if best in same else f"; nearest is case {best['case']}, trial {best['trial']}"
        return f"{where}: {diff} (no recording in {name} for case {k.case}, trial {k.trial} matches{other})"


def _common_prefix(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def _excerpt(text: str, at: int, width: int = 16) -> str:
    piece = text[at : at + width]
    return json.dumps(piece + ("…" if len(text) > at + width else ""), ensure_ascii=False)


def first_difference(sent: Any, recorded: Any, path: str = "") -> str | None:
    """The first place (in sorted-key order) where ``sent`` differs from ``recorded``:
    ``messages[1].content differs at char 42 ("kindly: …" vs "Draft: …")``; None if equal."""
    label = path or "the body"
    if isinstance(sent, dict) and isinstance(recorded, dict):
        for key in sorted(set(sent) | set(recorded)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in recorded:
                return f"{sub} is sent but was not recorded"
            if key not in sent:
                return f"{sub} was recorded but is not sent"
            found = first_difference(sent[key], recorded[key], sub)
            if found:
                return found
        return None
    if isinstance(sent, list) and isinstance(recorded, list):
        for i, (a, b) in enumerate(zip(sent, recorded)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        if len(sent) != len(recorded):
            return f"{label} has {len(sent)} items, the recording {len(recorded)}"
        return None
    if isinstance(sent, str) and isinstance(recorded, str):
        if sent == recorded:
            return None
        at = _common_prefix(sent, recorded)
        return f"{label} differs at char {at} ({_excerpt(sent, at)} vs recorded {_excerpt(recorded, at)})"
    if sent == recorded and type(sent) is type(recorded):
        return None
    return f"{label} is {canonical(sent)[:40]}, recorded {canonical(recorded)[:40]}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def redact_text(body: bytes, fields: Iterable[str]) -> str:
    """The body as text, with ``fields`` removed when it is JSON."""
    text = body.decode("utf-8", "replace")
    names = tuple(fields)
    if not names:
        return text
    try:
        data = json.loads(text)
    except ValueError:
        return text
    return json.dumps(redact(data, names), ensure_ascii=False)


# One recorder/replayer per cassette file, shared by every endpoint of the run.
_OPEN: dict[tuple[str, str], tuple[Any, int]] = {}


def _shared(mode: str, path: str, factory: Any) -> Any:
    ident = (mode, os.path.abspath(path))
    if ident in _OPEN:
        obj, refs = _OPEN[ident]
        _OPEN[ident] = (obj, refs + 1)
        return obj
    obj = factory()
    _OPEN[ident] = (obj, 1)
    return obj


def open_recorder(
    path: str,
    pipeline: Any,
    environ: Mapping[str, str] | None = None,
    finished: Iterable[tuple[str, int]] | None = None,
) -> Recorder:
    """The shared recorder for ``path``; guards the values of every ``api_key_env`` the pipeline names.

    ``finished``: the units a resumed run keeps (given with ``--resume --record``): every
    earlier exchange of any other unit is void at replay (see :class:`Replayer`).
    """
    env = os.environ if environ is None else environ
    secrets: dict[str, str] = {}
    if pipeline is not None:
        for ep in pipeline.endpoints.values():
            name = getattr(ep, "api_key_env", None)
            if name and env.get(name):
                secrets[name] = env[name]
    name = getattr(pipeline, "name", "") if pipeline is not None else ""
    return _shared("record", path, lambda: Recorder(path, secrets, name, finished))  # type: ignore[no-any-return]


def open_replayer(path: str) -> Replayer:
    """The shared replayer for ``path``."""
    return _shared("replay", path, lambda: Replayer(path))  # type: ignore[no-any-return]


def release(obj: Recorder | Replayer) -> None:
    """Drop one reference; the last one closes a recorder."""
    for ident, (held, refs) in list(_OPEN.items()):
        if held is obj:
            if refs > 1:
                _OPEN[ident] = (held, refs - 1)
            else:
                del _OPEN[ident]
                if isinstance(held, Recorder):
                    held.close()
            return


Cassette = Recorder | Replayer
