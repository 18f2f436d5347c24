"""The run's detail sidecar: ``requests.jsonl``, one line per attempt.

``attempts.jsonl`` stays small (it is what analysis reads, with outputs cut to 2 KiB); this
file holds what a person needs to read one case whole (``relcheck show``, the HTML viewer):
the rendered request (messages and params; for an HTTP endpoint also the method, URL and JSON
body as sent, with ``redact:`` fields removed and no headers), the full output, the tool calls,
the verdict and reason of every check that ran, and each ``llm-rubric`` judge call made on the
attempt (``judge``: its rendered request, the body as sent, its reply or error). Lines are keyed like journal lines
(``case``, ``trial``, ``step``, ``attempt``, ``phase``); a resumed run appends the lines of its
reruns, so a reader takes the last line of each key.

Secrets: every value that reached the pipeline from an environment variable (``${VAR}``
interpolation and each endpoint's ``api_key_env``) is replaced by ``***`` in the line's text
before it is written; no header is ever stored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

DETAILS_NAME = "requests.jsonl"
SCHEMA = "relcheck.requests/v1"
MIN_SECRET = 4  # shorter values would match everywhere; they are not real keys

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def secret_values(pipeline: Any, environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of every environment variable the pipeline takes in (``${VAR}`` and ``api_key_env``)."""
    env = os.environ if environ is None else environ
    names = set(getattr(pipeline, "env_refs", ()) or ())
    for ep in pipeline.endpoints.values():
        name = getattr(ep, "api_key_env", None)
        if name:
            names.add(name)
    values = {env[n] for n in names if len(env.get(n) or "") >= MIN_SECRET}
    return sorted(values, key=len, reverse=True)  # longest first: no partial replacement of a longer one


class Scrubber:
    """Replaces secret values (raw and JSON-escaped) in text."""

    def __init__(self, secrets: Sequence[str]) -> None:
        pairs: list[tuple[str, str]] = []
        for value in secrets:
            pairs.append((value, "***"))
            escaped = json.dumps(value, ensure_ascii=False)[1:-1]
            if escaped != value:
                pairs.append((escaped, "***"))
        self._pairs = pairs

    def __call__(self, text: str) -> str:
        for value, mask in self._pairs:
            if value in text:
                text = text.replace(value, mask)
        return text

    def __bool__(self) -> bool:
        return bool(self._pairs)


def attempt_detail(record: Mapping[str, Any], detail: Mapping[str, Any] | None, text: str | None) -> dict[str, Any]:
    """The sidecar line of one journaled attempt."""
    detail = detail or {}
    line: dict[str, Any] = {k: record.get(k) for k in ("case", "trial", "step", "attempt", "phase")}
    if "endpoint" in detail:
        line["endpoint"] = detail["endpoint"]
    if "request" in detail:
        line["request"] = detail["request"]
    if detail.get("sent") is not None:
        line["sent"] = detail["sent"]
    line["output"] = text if text else None
    calls = detail.get("tool_calls") or ()
    if calls:
        line["tool_calls"] = [{"name": c.name, "arguments": c.arguments} for c in calls]
    if "checks" in detail:
        line["checks"] = detail["checks"]
    if detail.get("judge"):
        line["judge"] = detail["judge"]  # the llm-rubric judge's calls on this attempt
    return line


class _UnitLine:
    """A unit's first sidecar line, held: built when the unit's lines are written."""

    __slots__ = ("case", "trial")

    def __init__(self, case: Any, trial: int) -> None:
        self.case = case
        self.trial = trial

    def build(self) -> dict[str, Any]:
        case = self.case
        return {
            "case": case.id,
            "trial": self.trial,
            "unit": True,
            "vars": dict(case.vars),
            "expect": dict(case.expect),
            "tags": list(case.tags),
        }


class _AttemptLine:
    """An attempt's sidecar line, held: built (:func:`attempt_detail`) when it is written."""

    __slots__ = ("detail", "record", "text")

    def __init__(self, record: Mapping[str, Any], detail: Mapping[str, Any] | None, text: str | None) -> None:
        self.record = record
        self.detail = detail
        self.text = text

    def build(self) -> dict[str, Any]:
        return attempt_detail(self.record, self.detail, self.text)


_LAZY = (_UnitLine, _AttemptLine)

PASSING_KEPT = 2000  # passing units whose detail a run keeps (failing ones: all)


class DetailWriter:
    """Appends sidecar lines, a unit at a time.

    A unit's lines are held until the unit ends (:meth:`end_unit`, called before its
    ``unit_done`` line is journaled) and then handed to the kernel in one write, so a killed
    run keeps the detail of every finished unit. Every unit that did not pass is kept; of the
    passing ones, the first ``passing_kept`` (the rest cost no encoding). fsync on close.
    """

    def __init__(self, path: Path, secrets: Sequence[str] = (), passing_kept: int | None = None) -> None:
        self.path = path
        self.secrets = tuple(secrets)
        self.passing_kept = PASSING_KEPT if passing_kept is None else passing_kept
        self.passing_dropped = 0
        self._passing = 0
        new = not path.exists() or path.stat().st_size == 0
        self._fh: IO[bytes] = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self._scrub = Scrubber(secrets)
        self._pending: dict[tuple[Any, Any], list[Any]] = {}  # by unit, for the units in flight
        if new:
            self._emit([{"schema": SCHEMA, "passing_kept": self.passing_kept}])

    def write(self, line: Mapping[str, Any]) -> None:
        """Hold ``line`` (which names its ``case`` and ``trial``) until its unit ends."""
        self._pending.setdefault((line["case"], line["trial"]), []).append(line)

    def begin_unit(self, case: Any, trial: int) -> None:
        """Hold the unit's first line (its vars, expect and tags), built only if it is written."""
        self._pending.setdefault((case.id, trial), []).append(_UnitLine(case, trial))

    def attempt(self, record: Mapping[str, Any], detail: Mapping[str, Any] | None, text: str | None) -> None:
        """Hold the line of a journaled attempt (:func:`attempt_detail`), built only if it is written."""
        self._pending.setdefault((record["case"], record["trial"]), []).append(_AttemptLine(record, detail, text))

    def end_unit(self, case: str, trial: int, passed: bool) -> None:
        """Write (or, for a passing unit beyond the budget, drop) the unit's held lines."""
        pending = self._pending.pop((case, trial), None)
        if not pending:
            return
        if passed:
            if self._passing >= self.passing_kept:
                self.passing_dropped += 1
                return
            self._passing += 1
        self._emit(pending)

    def _emit(self, pending: Sequence[Any]) -> None:
        parts = []
        for held in pending:
            line = held.build() if type(held) in _LAZY else held
            try:
                parts.append(_ENCODER.encode(line))
            except TypeError:  # a value JSON cannot hold (a tool's odd arguments): its repr
                parts.append(json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=repr))
        text = "\n".join(parts) + "\n"
        if self._scrub:
            text = self._scrub(text)
        data = text.encode("utf-8", "backslashreplace")
        written = self._fh.write(data)
        while written is not None and written < len(data):
            data = data[written:]
            written = self._fh.write(data)

    def close(self) -> None:
        """fsync and close; the lines of a unit that never ended (interrupted) are written too."""
        if self._fh.closed:
            return
        try:
            for case, trial in list(self._pending):
                self.end_unit(case, trial, passed=False)
            os.fsync(self._fh.fileno())
        finally:
            self._fh.close()
