"""``read_traces``: production traces → the run directory ``eval`` writes, gated the same way.

The traces become the *same journal* the runner writes (an attempt line per span, run or
observation that stands for a step, one ``unit_done`` line per trace), and the results are
built from it by the same analysis and gates as an eval — nothing is derived twice. What
differs is stated in ``run``: ``source: traces``, the input files and their hashes, the
time span covered, the sampling policy the user gave, what was excluded and skipped.
"""

from __future__ import annotations

import platform
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import TracesError, UsageError
from . import langfuse, langsmith, otlp, parallel
from .records import OUTPUT_LIMIT, BadRecords, HashingFile, TraceRecord, excerpt, iso
from .steps import StepMapper

FORMATS: dict[str, Callable[[HashingFile, BadRecords], Iterator[TraceRecord]]] = {
    "otlp": otlp.read,
    "langsmith": langsmith.read,
    "langfuse": langfuse.read,
}
SNIFF_BYTES = 65536

if TYPE_CHECKING:
    from ..results.schema import Results


@dataclass
class TraceOptions:
    """Everything ``relcheck traces`` can be told."""

    format: str = "auto"
    pipeline: str | None = None
    sampled: str | None = None
    skip_bad: bool = False
    out: str | None = None
    gate_overrides: dict[str, Any] = field(default_factory=dict)
    command: Sequence[str] = ()
    environ: dict[str, str] | None = None
    spill_dir: str | None = None  # where the temporary grouping database goes (default: the system's)


@dataclass
class TraceOutcome:
    run_dir: Path
    results: Results
    exit_code: int


def detect_format(path: Path) -> str:
    """``otlp``, ``langsmith`` or ``langfuse`` from a file's first bytes (CSV: Langfuse's export).

    Raises:
        TracesError: none of them.
    """
    if path.suffix.lower() == ".csv":
        return "langfuse"
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    for name, keys in (
        ("otlp", (b'"resourceSpans"', b'"resource_spans"')),
        ("langsmith", (b'"run_type"', b'"dotted_order"', b'"parent_run_id"')),
        ("langfuse", (b'"parentObservationId"', b'"parent_observation_id"', b'"traceId"', b'"observations"')),
    ):
        if any(k in head for k in keys):
            return name
    from ..errors import Location

    raise TracesError(
        "cannot tell the format: no OTLP resourceSpans, LangSmith run or Langfuse observation keys in the first 64 KiB",
        Location(str(path)),
        hint="pass --format otlp, langsmith or langfuse",
    )


def read_traces(files: Sequence[str], options: TraceOptions) -> TraceOutcome:
    """Read trace files, write a run directory, build and gate the results. The core of
    ``relcheck traces``.

    Raises:
        RelcheckError: a missing file, a malformed record (without ``skip_bad``), a bad
            pipeline (exit 2) — nothing was written but an empty run directory.
    """
    from ..config import load_pipeline
    from ..results import analysis, gates, schema
    from .spill import Spill
    from .units import TraceChecks, UnitBuilder

    if options.format not in ("auto", *FORMATS):
        raise UsageError(f"--format {options.format}: expected auto, otlp, langsmith or langfuse")
    paths = [Path(f) for f in files]
    if not paths:
        raise UsageError("no trace file given")
    from ..config.limits import check_regular

    for p in paths:  # a FIFO or a device would block or never end: regular files only
        check_regular(p, str(p), TracesError, "trace")
    formats = [detect_format(p) if options.format == "auto" else options.format for p in paths]
    pipeline = load_pipeline(options.pipeline, options.environ) if options.pipeline else None
    if pipeline is not None and not pipeline.model.traces:
        from ..errors import ConfigError, Location

        raise ConfigError(
            "the pipeline has no traces: section mapping trace records to its steps",
            Location(str(options.pipeline)),
            hint="add traces: {STEP: {match: {name: …}}} for each step (see the README)",
        )
    mapper = StepMapper(pipeline.model.traces) if pipeline else StepMapper()
    checks = TraceChecks(pipeline) if pipeline is not None else None
    overrides = schema.GateOverrides(**{k: v for k, v in options.gate_overrides.items() if v is not None})
    if pipeline is not None:
        gate_config = gates.resolve(pipeline, overrides)
    else:
        gate_config = schema.GateSettings(**overrides.model_dump(exclude_none=True))
    baseline_dropped = gate_config.baseline_path is not None
    gate_config = gate_config.model_copy(
        update={
            # production's infrastructure errors are its failures, not relcheck's: no budget unless asked
            "max_error_rate": 1.0 if overrides.max_error_rate is None else overrides.max_error_rate,
            "baseline_path": None,
        }
    )  # a baseline gate pairs units, and traces share none with an eval
    _check_out(options.out)
    started, t0 = _now(), time.time()
    counts: Counter[str] = Counter()
    bad = BadRecords(skip=options.skip_bad)
    inputs: list[dict[str, Any]] = []
    spill = Spill(options.spill_dir)
    try:
        for index, (path, fmt) in enumerate(zip(paths, formats)):
            before = (bad.count, counts["records"])
            workers = parallel.workers_for(path, fmt)
            if workers:  # a large file of JSON Lines: read in byte ranges by worker processes
                digest = parallel.spill_file(
                    path, FORMATS[fmt], workers, _spill_records, mapper, checks, spill, index, counts, bad
                )
            else:
                source = HashingFile(path)
                _spill_records(FORMATS[fmt](source, bad), mapper, checks, spill, index, counts)
                digest = source.hexdigest()
            inputs.append(
                {
                    "path": str(path),
                    "format": fmt,
                    "sha256": digest,
                    "records": counts["records"] - before[1],
                    "bad_records": bad.count - before[0],
                }
            )
        run_dir = _run_dir(options.out)  # (after reading: a malformed record leaves no directory behind)
        journal_path = run_dir / "attempts.jsonl"
        workers = parallel.group_workers(spill.rows)
        if pipeline is not None:
            order = [s.id for s in pipeline.steps]
        else:
            order = parallel.step_order(spill, workers) if workers else spill.step_order()
        builder = UnitBuilder(order, checks)
        unit_order = spill.order()
        header = {"run_id": run_dir.name, "source": "traces", "inputs": {i["path"]: i["sha256"] for i in inputs}}
        if workers:  # each part's units, journal lines and analysis made by a worker process
            agg = parallel.journal(journal_path, header_line(header), spill, builder, workers, unit_order)
        else:  # the analysis takes each record as the journal line is written, instead of reading it back
            agg = analysis.aggregate(
                write_journal(journal_path, header, spill, builder), order, trials=1, isolate=False, order=unit_order
            )
        counts["steps"] = spill.rows
        units = len(unit_order)
        del unit_order
    finally:
        spill.close()
        if checks is not None:
            checks.close()
    steps = [
        analysis.StepSpec(sid, endpoint, max_attempts)
        for sid, endpoint, max_attempts in _describe(builder, order, pipeline, formats)
    ]
    counted = {
        "records": counts["records"],
        "step_records": counts["steps"],
        "not_steps": counts["not_steps"],
        "incomplete": counts["incomplete"],
        "bad_records": bad.count,
        "bad_examples": bad.examples,
        "retries": builder.retries,
        "duplicates": builder.duplicates,
        "checks_judged": checks.judged if checks else 0,
        "checks_not_run": dict(sorted(checks.skipped.items())) if checks else {},
    }
    info = {
        "source": "traces",
        "id": run_dir.name,
        "pipeline": pipeline.name if pipeline else "traces",
        "pipeline_path": options.pipeline,
        "pipeline_hash": pipeline.hash if pipeline else "",
        "evalset_hash": "",
        "flags": {},
        "description": pipeline.model.description if pipeline else None,
        "dir": str(run_dir),
        "started_at": started,
        "finished_at": _now(),
        "duration_s": round(time.time() - t0, 3),
        "relcheck_version": __version__,
        "seed": 0,
        "trials": 1,
        "concurrency": None,
        "isolate": False,
        "retries": None,
        "shard": None,
        "evalsets": (),
        "cases": units,
        "units_planned": units,
        "stop_reason": None,
        "interrupted": False,
        "inputs": inputs,
        "time_span": {"start": iso(builder.first_start), "end": iso(builder.last_end)},
        "sampled": options.sampled,
        "traces": counted,
    }
    results = analysis.results_from(agg, steps, info, trials=1, confidence=gate_config.confidence)
    del agg
    said = notes(options.sampled, counted)
    if baseline_dropped:
        said.append(
            "The pipeline's baseline gate pairs units, which traces do not share with an eval: it was "
            "not applied (compare the runs with `compare --unpaired`)."
        )
    results = _survival(results).model_copy(update={"run": results.run.model_copy(update={"notes": tuple(said)})})
    results = gates.apply(results, gate_config)
    from ..journal import compress_run, write_json

    write_json(run_dir / "manifest.json", _manifest(run_dir, options, inputs, pipeline))
    schema.write(results, run_dir / "results.json")

    compress_run(run_dir)  # a finished run's journal is stored compressed, as for eval
    return TraceOutcome(run_dir, results, results.exit_code)


def _spill_records(
    records: Iterator[TraceRecord],
    mapper: StepMapper,
    checks: Any,
    spill: Any,
    index: int,
    counts: Counter[str],
) -> None:
    """Name each record's step and store those that stand for one (the loop every record of
    every file goes through). Outputs are kept as the journal keeps them unless a check will
    read them whole."""
    n = not_steps = incomplete = 0
    step_of = mapper.step_of if mapper.rules is not None else None
    add = spill.add
    same: dict[str, str] = {}  # one object per step name (marshal writes a repeated object once)
    for rec in records:
        n += 1
        step = rec.default_step if step_of is None else step_of(rec)
        if step is None:
            not_steps += 1
        elif rec.end is None:
            incomplete += 1
        else:
            output = rec.output
            if output is not None and len(output) > OUTPUT_LIMIT and not (checks is not None and checks.wants(step)):
                output = excerpt(output)
            add(rec, same.setdefault(step, step), output, index)
    counts["records"] += n
    counts["not_steps"] += not_steps
    counts["incomplete"] += incomplete


def header_line(header: dict[str, Any]) -> str:
    """The journal's first line (``reliability_cli.journal``'s schema and the run's fields)."""
    import json

    from ..journal import SCHEMA

    return json.dumps({"schema": SCHEMA, **header}, ensure_ascii=True, separators=(",", ":")) + "\n"


def write_journal(path: Path, header: dict[str, Any], spill: Any, builder: Any) -> Iterator[dict[str, Any]]:
    """Write the journal ``eval`` writes (``reliability_cli.journal``'s format) from the grouped
    traces, yielding each record as its line is written (for :func:`analysis.aggregate`).

    Written through an ordinary buffered file: unlike a running eval it has nothing to lose
    to a crash (the traces can be read again), so it need not hand each line to the kernel.
    The lines are those of ``json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))``,
    built from templates by :class:`.units.UnitBuilder` (:func:`.parallel.journal` builds
    them part by part in worker processes)."""
    import os

    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(header_line(header))
        unit = builder.unit
        write = fh.write
        for rows in spill.traces():
            attempts, done, text = unit(rows)
            write(text)
            yield from attempts
            yield {"unit_done": done}
        fh.flush()
        os.fsync(fh.fileno())


def _describe(builder: Any, ids: Sequence[str], pipeline: Any, formats: Sequence[str]) -> list[tuple[str, str, int]]:
    """(id, endpoint, max_attempts) per step. A production retry policy is not in a trace:
    ``max_attempts`` is the most attempts one occurrence of the step was seen to take, so the
    what-if table's "retries now" is what production was seen doing. Without a pipeline the
    endpoint column names the input format."""
    source = "+".join(dict.fromkeys(formats))
    endpoints = {s.id: s.endpoint for s in pipeline.steps} if pipeline is not None else {}
    return [
        (sid, endpoints.get(sid, source), builder.steps[sid].max_attempts if sid in builder.steps else 1) for sid in ids
    ]


def _survival(results: Any) -> Any:
    """``survivors`` per step: units with no failure at it or before it (the waterfall). In a
    chained eval that is the step's ``passed``; in production the steps after a failure may
    still have run, so a step's own pass count is not the survival count."""
    index = {s.id: i for i, s in enumerate(results.steps)}
    lost = [0] * len(index)
    for u in results.units:
        if not u.passed and u.failed_step in index:
            lost[index[u.failed_step]] += 1
    alive = results.end_to_end.total
    rows = []
    for step, gone in zip(results.steps, lost):
        alive -= gone
        rows.append(step.model_copy(update={"survivors": alive}))
    return results.model_copy(update={"steps": tuple(rows)})


def notes(sampled: str | None, t: dict[str, Any]) -> list[str]:
    """What a reader of a traces report must know (shown by every report)."""
    out = []
    if t["checks_judged"]:
        out.append(
            f"Traces carry no gold answers: a step passes when its record did not error, except that the "
            f"pipeline's deterministic checks ran on {t['checks_judged']} recorded outputs (a failed check "
            "is a fail)."
        )
    else:
        out.append(
            "Traces carry no gold answers: a step passes when its record did not error; no check ran, "
            "so wrong answers that did not error count as passes."
        )
    if sampled:
        out.append(
            f"Sampling (--sampled): {sampled}. Tail sampling that keeps error traces inflates "
            "error rates; compare rates only under the same policy."
        )
    else:
        out.append(
            "Sampling policy not stated (--sampled). If these traces were tail-sampled to keep errors, "
            "every error rate here is inflated."
        )
    if t["incomplete"]:
        out.append(f"{t['incomplete']} records without an end time (still running, or cut off) were excluded.")
    if t["bad_records"]:
        first = f"; first: {t['bad_examples'][0]}" if t["bad_examples"] else ""
        out.append(f"{t['bad_records']} malformed records were skipped (--skip-bad){first}.")
    return out


def _check_out(out: str | None) -> None:
    if out:
        path = Path(out)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UsageError(
                f"--out {path}: the directory exists and is not empty",
                hint="relcheck never overwrites a run; choose a new directory",
            )


def _run_dir(out: str | None) -> Path:
    from ..runner.run import RUNS_DIR

    if out:
        _check_out(out)
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        return path
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RUNS_DIR / f"{stamp}-{secrets.token_hex(3)}"
    path.mkdir(parents=True, exist_ok=False)
    return path


def _manifest(run_dir: Path, options: TraceOptions, inputs: list[dict[str, Any]], pipeline: Any) -> dict[str, Any]:
    return {
        "schema": "relcheck.manifest/v1",
        "run_id": run_dir.name,
        "source": "traces",
        "command": list(options.command) or sys.argv,
        "relcheck_version": __version__,
        "python_version": platform.python_version(),
        "started_at": _now(),
        "pipeline": options.pipeline,
        "pipeline_hash": pipeline.hash if pipeline else None,
        "inputs": inputs,
        "flags": {"format": options.format, "sampled": options.sampled, "skip_bad": options.skip_bad},
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
