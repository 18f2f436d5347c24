"""The results document, typed: what ``results.json`` holds (SPEC §5, §6, §8).

Every producer (``relcheck eval``, ``merge``) builds a :class:`Results`; every consumer (gates,
compare, plan, each report) reads one. On disk it is the JSON document
``relcheck.results/v1``; :func:`load` and :func:`write` are the only ways in and out, and
``write(load(x))`` gives back ``x``.

The models are frozen pydantic models: loading validates a hand-edited file and names the key
that is wrong. A key that is written only in some runs (``isolated`` with ``--isolate``,
``pass_at_k`` with trials, the baseline gates' p-values…) has a default and is left out of
the file unless it was given: the JSON written is ``model_dump(exclude_unset=True)``. Units are
small slotted dataclasses, not models: a run holds one per (case, trial), 100,000 of them in
the memory benchmark.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path
from typing import IO, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import Location, ResultsError
from ..safetext import JSON_ERRORS
from ..textfmt import truncate

SCHEMA: Final = "relcheck.results/v1"
Verdict = Literal["pass", "fail", "error"]
#: ``run.source``: what produced the results
Source = Literal["eval", "merge", "traces"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Interval(_Model):
    """A two-sided interval of a rate (Wilson, or clustered over cases with trials)."""

    low: float
    high: float


class Latency(_Model):
    """Attempt latencies in milliseconds (``None`` when no attempt ran)."""

    p50: float | None
    p95: float | None
    max: float | None


class Tokens(_Model):
    input: int
    output: int


class Failure(_Model):
    """One failing unit at a step: what reports list."""

    case: str
    trial: int
    outcome: str
    error_kind: str | None
    reason: str | None
    output: str | None


class IsolatedRow(_Model):
    """A step's figures in the isolated pass (``--isolate``): gold upstream outputs."""

    reached: int
    passed: int
    failed: int
    errors: int
    rate: float | None
    ci: Interval | None
    first_try_rate: float | None
    attempts: int
    skipped_no_gold: int
    first_try_passed: int = 0
    #: case → (passed, reached) in the isolated pass; stored with trials > 1 (units do not hold it)
    case_counts: dict[str, tuple[int, int]] | None = None


class Visits(_Model):
    """Graph pipelines: a node's executions over the units that ran it."""

    total: int
    per_unit: float | None


class StepRow(_Model):
    """One step of the chained pass (SPEC §5)."""

    id: str
    endpoint: str
    max_attempts: int
    reached: int
    passed: int
    failed: int
    errors: int
    rate: float | None
    ci: Interval | None
    first_try_rate: float | None
    recovery_rate: float | None
    recovery_rate_independent: float | None
    retry_recovered: int
    retried: int
    attempts: int
    attempt_outcomes: dict[str, int]
    error_kinds: dict[str, int]
    throttled: int
    latency_ms: Latency
    tokens: Tokens
    cost_usd: float | None
    failures: tuple[Failure, ...]
    failures_omitted: int
    #: units whose first attempt passed (stored: ``first_try_rate`` × ``reached`` loses it)
    first_try_passed: int = 0
    #: attempts answered from the response cache (no request made; left out of ``latency_ms``)
    cached: int = 0
    #: what the step's retries retry (``retry.on``): plan and what-if model only those
    retry_on: tuple[str, ...] = ("error", "fail")
    isolated: IsolatedRow | None = None
    #: graph pipelines only: the share of all units that ran the node (a branch) …
    reach_share: float | None = None
    #: … its executions over the units that ran it (a loop) …
    visits: Visits | None = None
    #: … and the units not failed at this step or before it, in step order (the survival chart)
    survivors: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        # results.json files written before first_try_passed was stored
        if isinstance(data, dict) and "first_try_passed" not in data and data.get("first_try_rate") is not None:
            data = {**data, "first_try_passed": round(data["first_try_rate"] * data.get("reached", 0))}
        return data

    @property
    def retries(self) -> int:
        return self.max_attempts - 1


class EndToEnd(_Model):
    """The chain as a whole; with trials, the case is the sample (clustered)."""

    passed: int
    total: int
    rate: float | None
    ci: Interval | None
    cases: int
    infra_errors: int
    error_rate: float | None
    pass_at_k: dict[str, float | None] | None = None  # None where no case ran k trials (an interrupted run)
    pass_hat_k: dict[str, float | None] | None = None
    flaky: tuple[str, ...] | None = None
    independence_prediction: float | None = None
    independence_gap: float | None = None
    #: conservative delta-method interval of the gap (covariance of the two passes left out)
    independence_gap_ci: Interval | None = None


class WhatIfRow(_Model):
    """One more retry on one step: the projected step and end-to-end rates."""

    step: str
    retries_now: int
    retries_then: int
    first_try_rate: float
    rate_now: float
    recovery_rate: float | None
    step_rate_independent: float
    step_rate_measured: float | None
    end_to_end_now: float | None
    end_to_end_independent: float | None
    end_to_end_measured: float | None


class GateRow(_Model):
    """One gate's verdict (SPEC §6); baseline gates add the paired test's figures."""

    name: str
    threshold: float
    observed: float | None
    bound: float | None
    passed: bool
    detail: str
    p_value: float | None = None
    p_adjusted: float | None = None
    n_shared: int | None = None
    base_rate: float | None = None
    cand_rate: float | None = None
    #: the smallest drop this baseline gate detects with 80% power at its n (normal approximation)
    detectable_drop: float | None = None


class EndpointRow(_Model):
    """One HTTP endpoint's adaptive-controller figures (``endpoints``; README, "At the provider's limit")."""

    name: str
    type: str
    requests: int
    status_429: int
    status_503: int
    throttled_share: float
    congestion_errors: int
    tokens: int
    duration_s: float
    requests_per_min: float | None
    tokens_per_min: float | None
    limit_rpm: float | None
    limit_tpm: float | None
    concurrency_final: int
    concurrency_peak: int
    in_flight_peak: int
    ceiling: int
    paused_s: float
    adaptive: bool


class GateSettings(_Model):
    """The gates a run was judged by: the pipeline's ``gates:`` with CLI flags on top."""

    end_to_end_min: float | None = None
    step_mins: dict[str, float] = {}
    mode: Literal["point", "lower-bound"] = "point"
    confidence: float = 0.95
    max_error_rate: float = 0.10
    baseline_path: str | None = None
    max_drop: float = 0.0
    alpha: float = 0.05


class GateOverrides(_Model):
    """CLI flags that override ``gates:`` (``None``: keep the pipeline's)."""

    end_to_end_min: float | None = None
    step_mins: dict[str, float] = {}
    mode: str | None = None  # checked by RunOptions: point | lower-bound
    confidence: float | None = None
    max_error_rate: float | None = None
    baseline_path: str | None = None
    max_drop: float | None = None
    alpha: float | None = None


class RunFlags(_Model):
    """The result-changing flags (SPEC §4): a resume or a merge must match them."""

    trials: int = 1
    retries: int | None = None
    seed: int = 0
    isolate: bool = False
    endpoint: tuple[str, ...] = ()
    limit: int | None = None
    filter_tag: tuple[str, ...] = ()
    shard: str | None = None


class ShardRef(_Model):
    shard: str | None
    id: str | None
    dir: str | None


@dataclass(frozen=True)
class Stop:
    """Why a run stopped before every unit was done. On disk, ``run.stop_reason`` is one string:
    ``reason``, or ``reason:endpoint[:kind]`` for the early-stop rules about an endpoint."""

    reason: str  # interrupted | max_cost | endpoint_rejected | endpoint_unreachable | incomplete_shards
    endpoint: str | None = None
    kind: str | None = None

    def __str__(self) -> str:
        return ":".join(p for p in (self.reason, self.endpoint, self.kind) if p is not None)

    @classmethod
    def parse(cls, text: str | None) -> Stop | None:
        if not text:
            return None
        reason, _, rest = text.partition(":")
        endpoint, _, kind = rest.partition(":")
        return cls(reason, endpoint or None, kind or None)


class TraceInput(_Model):
    """One file ``relcheck traces`` read."""

    path: str
    format: str
    sha256: str
    records: int
    bad_records: int


class TimeSpan(_Model):
    start: str | None
    end: str | None


class TraceCounts(_Model):
    """What ``relcheck traces`` read, and what it excluded, skipped or could not judge."""

    records: int
    step_records: int
    not_steps: int
    incomplete: int
    bad_records: int
    bad_examples: tuple[str, ...] = ()
    retries: int
    duplicates: int = 0
    checks_judged: int = 0
    checks_not_run: dict[str, int] = {}


class RunInfo(_Model):
    """What ran: the pipeline, the eval sets, the flags, when, and how it ended."""

    id: str
    pipeline: str
    pipeline_hash: str
    evalset_hash: str
    flags: RunFlags
    pipeline_path: str | None = None
    description: str | None = None
    dir: str | None
    started_at: str
    finished_at: str
    duration_s: float
    relcheck_version: str
    seed: int
    trials: int
    concurrency: int | None
    concurrency_cap: int | None = None  # --concurrency as given (None: the default, see README)
    isolate: bool
    retries: int | None
    shard: str | None
    evalsets: tuple[str, ...]
    cases: int
    units_planned: int
    stop_reason: str | None
    interrupted: bool
    units: int
    requests: int
    cost_usd: float | None
    confidence: float
    gate_settings: GateSettings | None = None
    source: Source | None = None
    merged_from: tuple[ShardRef, ...] | None = None
    latency_approximate: bool | None = None
    # source: traces — the input files and their hashes, the time span covered, the sampling
    # policy given, the counts, and what every report must say (``traces.run.notes``)
    inputs: tuple[TraceInput, ...] | None = None
    time_span: TimeSpan | None = None
    sampled: str | None = None
    traces: TraceCounts | None = None
    notes: tuple[str, ...] | None = None

    @property
    def stop(self) -> Stop | None:
        return Stop.parse(self.stop_reason)


@dataclass(frozen=True, slots=True)
class UnitRecord:
    """One unit (case, trial): enough for compare, merge and JUnit (SPEC §8)."""

    case: str
    trial: int
    passed: bool
    failed_step: str | None
    outcome: str
    error_kind: str | None
    attempts: int
    index: int  # the case's position in the (unsharded) eval set


UNIT_KEYS = tuple(f.name for f in fields(UnitRecord))
#: a unit's fields as a tuple, in UNIT_KEYS order (``dataclasses.astuple`` deep-copies each value:
#: 2.4 s of 100,000 units' JSON against 0.2 s)
_unit_values = attrgetter(*UNIT_KEYS)


class Results(_Model):
    """A run's results document (``results.json``, schema ``relcheck.results/v1``; SPEC §5, §8).

    Attributes:
        run: What ran: pipeline, eval sets, flags, units, requests, cost, timing.
        steps: One row per step, in pipeline order.
        end_to_end: The end-to-end row.
        what_if: One more retry on each step, projected.
        endpoints: Each HTTP endpoint's adaptive-controller figures.
        gates: Each gate's verdict (empty before gates are applied).
        units: Every unit's record (case, trial, outcome, the step it stopped at).
        verdict: ``pass``, ``fail`` or ``error``.
        exit_code: The exit code the verdict gives (SPEC §6).
    """

    schema_: Literal["relcheck.results/v1"] = Field(SCHEMA, alias="schema")
    run: RunInfo
    steps: tuple[StepRow, ...]
    end_to_end: EndToEnd
    what_if: tuple[WhatIfRow, ...]
    endpoints: tuple[EndpointRow, ...] = ()
    gates: tuple[GateRow, ...]
    units: tuple[UnitRecord, ...]
    verdict: Verdict
    exit_code: int

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, protected_namespaces=())

    def step(self, step_id: str) -> StepRow:
        """The row of step ``step_id``.

        Args:
            step_id: The step's ``id``.

        Raises:
            KeyError: no such step.
        """
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def step_ids(self) -> list[str]:
        return [s.id for s in self.steps]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document as plain data (what :func:`write` writes)."""
        doc = self._head()
        doc["units"] = [dict(zip(UNIT_KEYS, _unit_values(u))) for u in self.units]
        return _ordered(doc)

    def _head(self) -> dict[str, Any]:
        doc = self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude={"units"})
        doc["schema"] = SCHEMA
        doc.setdefault("verdict", self.verdict)
        doc.setdefault("exit_code", self.exit_code)
        return doc


_ORDER = ("schema", "run", "steps", "end_to_end", "what_if", "endpoints", "gates", "units", "verdict", "exit_code")


def _ordered(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in _ORDER if k in doc} | {k: v for k, v in doc.items() if k not in _ORDER}


def load(path: str | Path) -> Results:
    """Load and validate a ``results.json`` (or the one in a run directory).

    Args:
        path: A results file, or a run directory holding one.

    Returns:
        The typed results.

    Raises:
        ResultsError: missing file, invalid JSON, not a relcheck results document, or a key
            with a value of the wrong type (the message names the key).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    file = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError("no such results file", Location(file)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read: {exc}", Location(file)) from None
    try:
        data = json.loads(text, parse_constant=_no_constant)  # NaN and Infinity are not JSON
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        where = Location(file, exc.lineno, exc.colno) if isinstance(exc, json.JSONDecodeError) else Location(file)
        raise ResultsError(f"invalid JSON: {getattr(exc, 'msg', exc)}", where) from None
    return from_dict(data, file)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def from_dict(data: Any, file: str = "<results>") -> Results:
    """A :class:`Results` from the parsed JSON document.

    Args:
        data: The document, as ``json.loads`` returns it.
        file: The file it came from, for messages.

    Returns:
        The typed results.

    Raises:
        ResultsError: not a relcheck results document, or a key of the wrong type.
    """
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ResultsError(f"not a relcheck results file (schema {found!r}, expected {SCHEMA!r})", Location(file, 1, 1))
    missing = [k for k in _ORDER if k not in data and k != "endpoints"]  # endpoints: added in v1.1
    if missing:
        raise ResultsError(f"results file lacks {', '.join(missing)}", Location(file, 1, 1, missing[0]))
    try:
        return Results.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ResultsError(f"{key}: {err['msg']} (got {_excerpt(err.get('input'))})", Location(file, key=key)) from None


def _excerpt(value: Any) -> str:
    return truncate(json.dumps(value, ensure_ascii=False, default=str), 60)


def write(results: Results, path: str | Path) -> None:
    """Write ``results`` to ``path`` atomically (a reader never sees half a file).

    ``units`` (and any list longer than 50 items) is streamed one compact item per line, so
    a 100,000-unit run never builds the document as one string.
    """
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        # a lone surrogate (from a case or a model) is written as its JSON escape (safetext)
        with open(tmp, "w", encoding="utf-8", errors=JSON_ERRORS, newline="\n") as fh:
            dump_masked(results, fh)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def dump_masked(results: Results, fh: IO[str]) -> None:
    """Stream the JSON document of ``results`` into ``fh``, every secret masked."""
    dump(results, _Scrubbed(fh))  # type: ignore[arg-type]


def dump(results: Results, fh: IO[str]) -> None:
    """Stream the JSON document of ``results`` into ``fh``."""
    head = results._head()
    fh.write("{")
    for i, key in enumerate(k for k in _ORDER if k in head or k == "units"):
        fh.write(("," if i else "") + f"\n  {json.dumps(key)}: ")
        if key == "units":
            _write_lines(fh, [unit_line(u) for u in results.units])
            continue
        value = head[key]
        if isinstance(value, list) and len(value) > 50:
            _write_list(fh, iter(value), len(value))
        else:
            # one string (one write: a secret is masked whole, and streaming it in tokens cost more)
            fh.write(json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  "))
    fh.write("\n}\n")


_encode = json.JSONEncoder(ensure_ascii=False).encode
_string = json.encoder.encode_basestring  # (what that encoder escapes a string with)
_JSON_BOOL = {True: "true", False: "false"}


def unit_line(u: UnitRecord) -> str:
    """A unit's line of ``results.json``: ``json.dumps`` of its fields (``UNIT_KEYS``), made
    from a template where the values have their usual types (100,000 units: a third of the
    time, which ``relcheck traces`` of a million spans waits for)."""
    case, trial, passed, failed_step, outcome, error_kind, attempts, index = _unit_values(u)
    if (
        case.__class__ is str
        and trial.__class__ is int
        and passed.__class__ is bool
        and (failed_step is None or failed_step.__class__ is str)
        and outcome.__class__ is str
        and (error_kind is None or error_kind.__class__ is str)
        and attempts.__class__ is int
        and index.__class__ is int
    ):
        return (
            f'{{"case": {_string(case)}, "trial": {trial!r}, "passed": {_JSON_BOOL[passed]}, '
            f'"failed_step": {"null" if failed_step is None else _string(failed_step)}, '
            f'"outcome": {_string(outcome)}, '
            f'"error_kind": {"null" if error_kind is None else _string(error_kind)}, '
            f'"attempts": {attempts!r}, "index": {index!r}}}'
        )
    return _encode(dict(zip(UNIT_KEYS, (case, trial, passed, failed_step, outcome, error_kind, attempts, index))))


def _write_lines(fh: IO[str], lines: list[str]) -> None:
    """A list of already-encoded items, one a line (as :func:`_write_list` writes them)."""
    if not lines:
        fh.write("[]")
        return
    for start in range(0, len(lines), 1000):  # (whole items a write: secrets are masked per write)
        fh.write(("[" if start == 0 else ",") + "\n    " + ",\n    ".join(lines[start : start + 1000]))
    fh.write("\n  ]")


def _write_list(fh: IO[str], items: Iterator[Any], n: int) -> None:
    if n == 0:
        fh.write("[]")
        return
    fh.write("[")
    for j, item in enumerate(items):
        fh.write(("," if j else "") + "\n    " + json.dumps(item, ensure_ascii=False))
    fh.write("\n  ]")


class _Scrubbed:
    """A file that masks every secret (:mod:`reliability_cli.scrub`) in what is written to it;
    each write holds whole JSON tokens, so a secret inside a string is never split in two."""

    def __init__(self, fh: IO[str]) -> None:
        from ..scrub import scrub

        self.fh = fh
        self.scrub = scrub

    def write(self, text: str) -> None:
        self.fh.write(self.scrub(text))
