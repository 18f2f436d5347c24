"""``run_eval``: load, schedule, journal, analyse, gate — the function behind ``relcheck eval``."""

from __future__ import annotations

import os
import platform
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..config import Pipeline, evalset_hash, load_pipeline
from ..errors import ConfigError, UsageError
from .cases import CaseSelection, select_cases, shard_of

if TYPE_CHECKING:  # the engine, the journal and asyncio are imported only to run (not to validate)
    import asyncio

    from ..journal import JournalWriter
    from ..results.schema import GateOverrides, Results
    from .details import DetailWriter
    from .engine import Engine
    from .resume import RunLock

RUNS_DIR = Path(".relcheck") / "runs"
GATE_MODES = ("point", "lower-bound")


@dataclass
class RunOptions:
    """Everything ``relcheck eval`` can be told; the result-changing ones go in the manifest.

    Each attribute is the option of the same name in ``relcheck eval --help`` (SPEC §4);
    the ones a flag cannot set:

    Attributes:
        cache: The response cache's database (``None``: no cache).
        gate_overrides: ``--min-step-rate``, ``--mode`` and the other gate flags.
        command: The command line, recorded in the manifest.
        environ: Where ``${VAR}`` references are resolved (default ``os.environ``).
        outputs: Report files to write: flag → path (checked against the run's inputs).

    Raises:
        UsageError: a combination of options that cannot work (at construction).
    """

    evalsets: Sequence[str] = ()
    trials: int = 1
    concurrency: int | None = None  # units in flight; None: enough for the endpoints' controllers to bind
    isolate: bool = False
    retries: int | None = None
    seed: int | None = None
    limit: int | None = None
    filter_tags: Sequence[str] = ()
    shard: tuple[int, int] | None = None
    resume: str | None = None
    retry_errors: bool = False
    out: str | None = None
    record: str | None = None
    replay: str | None = None
    endpoint_overrides: Sequence[str] = ()
    max_throttle_wait: float = 120.0
    max_cost: float | None = None
    #: the response cache's database (None: no cache; see ``endpoints.cache.resolve_path``)
    cache: str | None = None
    cache_only: bool = False
    gate_overrides: GateOverrides | None = None
    command: Sequence[str] = ()
    environ: dict[str, str] | None = None
    outputs: dict[str, str | None] = field(default_factory=dict)  # report files: flag → path

    def __post_init__(self) -> None:
        """Flag combinations a Python caller can get wrong too (the CLI reaches them here)."""
        mode = self.gate_overrides.mode if self.gate_overrides is not None else None
        if mode is not None and mode not in GATE_MODES:
            raise UsageError(f"--mode {mode!r}: expected point or lower-bound")
        if self.retry_errors and not self.resume:
            raise UsageError("--retry-errors needs --resume RUN_DIR")
        if self.record and self.replay and os.path.abspath(self.record) == os.path.abspath(self.replay):
            raise UsageError(
                f"--record {self.record}: it is the cassette --replay reads",
                hint="record the updated cassette to a new file",
            )
        if self.cache_only and not self.cache:
            raise UsageError("--cache-only needs a cache (RunOptions.cache)")
        if self.cache_only and (self.record or self.replay):
            raise UsageError(
                "--cache-only cannot be combined with --record or --replay",
                hint="a replay is already offline; a recording needs live calls",
            )

    def result_flags(self, seed: int) -> dict[str, Any]:
        """The flags that change results, as the manifest stores them (``--resume`` compares them).

        Args:
            seed: The seed in effect (``--seed``, else the pipeline's).
        """
        return {
            "trials": self.trials,
            "retries": self.retries,
            "seed": seed,
            "isolate": self.isolate,
            "endpoint": sorted(self.endpoint_overrides),
            "limit": self.limit,
            "filter_tag": sorted(self.filter_tags),
            "shard": f"{self.shard[0]}/{self.shard[1]}" if self.shard else None,
        }


@dataclass
class RunOutcome:
    """What a finished (or stopped) run produced.

    Attributes:
        run_dir: The run directory (manifest, journal, ``results.json``).
        results: The typed results, gates applied.
        exit_code: 0 pass, 1 a gate failed, 3 infrastructure, 130 interrupted (SPEC §6).
    """

    run_dir: Path
    results: Results
    exit_code: int


@dataclass
class Prepared:
    pipeline: Pipeline
    evalset: CaseSelection
    seed: int
    units: int
    graph: Any = None  # a graph pipeline's loaded graph (``relcheck.graphs``)


def prepare(pipeline_path: str, options: RunOptions) -> Prepared:
    """Load and validate everything a run needs; no endpoint is called.

    Args:
        pipeline_path: the pipeline YAML file.
        options: the run's options (eval sets, ``--filter-tag``, ``--shard``, ``--limit``,
            ``--retries``, ``--endpoint NAME=mock``, ``--seed``, ``--trials``).

    Returns:
        The pipeline with the overrides applied, the selected cases, the seed, the number of
        units, and the checked graph of a graph pipeline.

    Raises:
        RelcheckError: bad input (exit 2), naming the file, line and key.
    """
    pipeline = load_pipeline(pipeline_path, options.environ)
    pipeline = apply_overrides(pipeline, options)
    paths = list(options.evalsets) or [str(p) for p in pipeline.default_evalsets()]
    evalset = select_cases(paths, pipeline, options.filter_tags, options.shard, options.limit, shard_of)
    seed = pipeline.model.seed if options.seed is None else options.seed
    if not options.replay:
        for name, ep in pipeline.endpoints.items():
            if ep.type == "mcp":  # imported only for a pipeline that has an MCP endpoint
                from ..endpoints.mcp_tools import require_sdk

                require_sdk(name, pipeline.positions.locate(("endpoints", name, "type")))
    graph = None
    if pipeline.model.graph is not None:
        from ..graphs import check_graph

        graph = check_graph(pipeline)
    return Prepared(pipeline, evalset, seed, len(evalset) * options.trials, graph)


def apply_overrides(pipeline: Pipeline, options: RunOptions) -> Pipeline:
    """``--retries`` and ``--endpoint NAME=mock``."""
    if options.retries is not None:
        pipeline = pipeline.with_retries(options.retries)
    if options.endpoint_overrides:
        from ..endpoints import mock_override

        endpoints = dict(pipeline.model.endpoints)
        for item in options.endpoint_overrides:
            name, _, kind = item.partition("=")
            if name not in endpoints:
                raise UsageError(
                    f"--endpoint {item}: the pipeline has no endpoint '{name}'",
                    hint="endpoints: " + ", ".join(endpoints),
                )
            if kind != "mock":
                raise UsageError(f"--endpoint {item}: only NAME=mock is supported")
            endpoints[name] = mock_override(endpoints[name])
        model = pipeline.model.model_copy(update={"endpoints": endpoints})
        pipeline = replace(pipeline, model=model)
    return pipeline


def run_eval(
    pipeline_path: str,
    options: RunOptions,
    on_start: Callable[[int], None] | None = None,
    on_unit: Callable[[dict[str, Any]], None] | None = None,
) -> RunOutcome:
    """Run an eval; return its results and exit code. The core of ``relcheck eval``.

    Args:
        pipeline_path: the pipeline YAML file.
        options: everything the command line can set (see :class:`RunOptions`).
        on_start: called once with the number of units to run, before the first is sent.
        on_unit: called with each finished unit's journal record (for progress displays).

    Returns:
        A :class:`RunOutcome`: the typed results (gates applied), the exit code (0 pass,
        1 a gate failed, 3 infrastructure, 130 interrupted) and the run directory.

    Raises:
        RelcheckError: bad input (exit 2) — nothing was run.
    """
    from ..results import gates

    prep = prepare(pipeline_path, options)
    gate_config = gates.resolve(prep.pipeline, options.gate_overrides)
    gates.precheck(gate_config, len(prep.evalset), options.trials)
    _refuse_overwrites(pipeline_path, options, prep, gate_config.baseline_path)
    if options.record and not options.resume and os.path.isfile(options.record) and os.path.getsize(options.record) > 0:
        raise UsageError(
            f"--record {options.record}: the file exists; relcheck never overwrites a cassette",
            hint="record to a new file (with --resume, the resumed units are appended)",
        )
    if options.replay and not os.path.isfile(options.replay):
        raise UsageError(f"--replay {options.replay}: no such cassette file")
    run_dir, lock = _open_run_dir(options)
    try:
        return _run_locked(pipeline_path, options, prep, gate_config, run_dir, on_start, on_unit)
    finally:
        lock.release()


def _refuse_overwrites(pipeline_path: str, options: RunOptions, prep: Prepared, baseline: str | None) -> None:
    """No output flag may write over the run's inputs or its run files (exit 2)."""
    from ..outputs import refuse_overwrites, run_files

    refuse_overwrites(
        {**options.outputs, "--record": options.record},
        [
            ("the pipeline file", pipeline_path),
            *(("the eval set", p) for p in prep.evalset.paths),
            ("the cassette given to --replay", options.replay),
            ("the baseline", baseline),
            *run_files(options.resume or options.out),
        ],
    )


def _run_locked(
    pipeline_path: str,
    options: RunOptions,
    prep: Prepared,
    gate_config: Any,
    run_dir: Path,
    on_start: Callable[[int], None] | None,
    on_unit: Callable[[dict[str, Any]], None] | None,
) -> RunOutcome:
    import asyncio

    from ..journal import JournalWriter, compress_run, write_json
    from ..results import analysis, gates, schema
    from . import resume
    from .details import DETAILS_NAME, DetailWriter, secret_values

    journal_path = run_dir / "attempts.jsonl"
    manifest = _manifest(run_dir, pipeline_path, prep, options)
    done: set[tuple[str, int]] = set()
    if options.resume:
        previous = resume.load_manifest(run_dir)
        resume.check_compatible(run_dir, previous, prep.pipeline.hash, prep.evalset.hashes, manifest["flags"])
        done = resume.compact_journal(journal_path, options.retry_errors)
        previous.setdefault("resumes", []).append(
            {"started_at": manifest["started_at"], "command": manifest["command"]}
        )
        manifest = previous
    write_json(run_dir / "manifest.json", manifest)
    journal = JournalWriter(
        journal_path,
        {
            "run_id": manifest["run_id"],
            "pipeline_hash": prep.pipeline.hash,
            "evalset_hash": manifest["evalset_hash"],
            "evalset_hashes": dict(prep.evalset.hashes),
        },
    )
    started = time.time()
    if on_start:
        on_start(prep.units - len(done))
    from .scheduling import units_in_flight

    concurrency = units_in_flight(prep.pipeline, options.concurrency)
    details = DetailWriter(run_dir / DETAILS_NAME, secret_values(prep.pipeline, options.environ))
    try:
        engine = asyncio.run(_drive(journal, prep, options, done, on_unit, run_dir, details, concurrency))
    finally:
        journal.close()
        details.close()
    if engine.unreachable is not None:
        raise _unreachable(prep.pipeline, *engine.unreachable, journal_path)
    info = {
        "id": manifest["run_id"],
        "pipeline": prep.pipeline.name,
        "pipeline_hash": prep.pipeline.hash,
        "evalset_hash": manifest["evalset_hash"],
        "flags": manifest["flags"],
        "pipeline_path": str(pipeline_path),
        "description": prep.pipeline.model.description,
        "dir": str(run_dir),
        "started_at": manifest["started_at"],
        "finished_at": _now(),
        "duration_s": round(time.time() - started, 3),
        "relcheck_version": __version__,
        "seed": prep.seed,
        "trials": options.trials,
        "concurrency": concurrency,
        "concurrency_cap": options.concurrency,
        "isolate": options.isolate,
        "retries": options.retries,
        "shard": manifest["flags"]["shard"],
        "evalsets": list(prep.evalset.hashes),
        "cases": len(prep.evalset),
        "units_planned": prep.units,
        "stop_reason": str(engine.stop) if engine.stop else None,
        "interrupted": engine.interrupted,
        "source": "eval",
    }
    steps = [
        analysis.StepSpec(s.id, s.endpoint, s.retry.max_attempts, tuple(sorted(s.retry.on)))
        for s in prep.pipeline.steps
    ]
    results = analysis.build_results(
        journal_path,
        steps,
        info,
        trials=options.trials,
        confidence=gate_config.confidence,
        isolate=options.isolate,
        order=prep.evalset.positions,
    )
    rows = _endpoint_rows(engine)
    if rows:  # no key for a pipeline without HTTP endpoints (as in merged results)
        results = results.model_copy(update={"endpoints": rows})
    results = gates.apply(results, gate_config)
    schema.write(results, run_dir / "results.json")
    if not engine.interrupted:  # finished: its journal is stored compressed (an interrupted one stays plain)
        compress_run(run_dir)
    return RunOutcome(run_dir, results, results.exit_code)


def _endpoint_rows(engine: Engine) -> tuple[Any, ...]:
    """Each HTTP endpoint's controller figures (``results.json`` key ``endpoints``), in pipeline order."""
    from ..results.schema import EndpointRow

    rows = []
    for name, endpoint in engine.endpoints.items():
        controller = getattr(endpoint, "controller", None)
        if controller is not None:
            rows.append(
                EndpointRow(
                    name=name, type=getattr(engine.pipeline.endpoints[name], "type", "http"), **controller.figures()
                )
            )
    return tuple(rows)


async def _drive(
    journal: JournalWriter,
    prep: Prepared,
    options: RunOptions,
    done: set[tuple[str, int]],
    on_unit: Callable[[dict[str, Any]], None] | None,
    run_dir: Path | None = None,
    details: DetailWriter | None = None,
    concurrency: int = 8,
) -> Engine:
    """Build the endpoints, then the engine with them; run the units not ``done``."""
    import asyncio

    from ..endpoints import Endpoint, build_endpoint, link_tool_sources
    from .engine import Engine, units_of

    endpoints: dict[str, Endpoint] = {}
    try:
        for name, config in prep.pipeline.endpoints.items():
            endpoints[name] = build_endpoint(
                name,
                config,
                {
                    "max_throttle_wait": options.max_throttle_wait,
                    "record": options.record,
                    "replay": options.replay,
                    "pipeline": prep.pipeline,
                    "run_dir": run_dir,
                    "cache": options.cache,
                    "cache_only": options.cache_only,
                    "secrets": details.secrets if details is not None else (),
                    "finished": done if options.resume else None,
                },
            )
        link_tool_sources(endpoints)
        await _list_tool_sources(prep.pipeline, endpoints)
        engine = Engine(
            prep.pipeline,
            endpoints,
            journal,
            prep.seed,
            concurrency,
            options.max_cost,
            on_unit,
            options.isolate,
            details=details,
        )
        if prep.graph is not None:
            from ..graphs.langgraph import GraphRunner

            engine.graph = GraphRunner(engine, prep.graph)
        loop = asyncio.get_running_loop()
        _install_signals(loop, engine)
        units = units_of(prep.evalset.cases, options.trials)
        await engine.run(u for u in units if (u.case.id, u.trial) not in done) if done else await engine.run(units)
        return engine
    finally:
        for ep in endpoints.values():
            await ep.aclose()


async def _list_tool_sources(pipeline: Pipeline, endpoints: dict[str, Any]) -> None:
    """``tools_from``: list each MCP server's tools once, before any unit runs, so that a server
    that cannot be started or reached is bad input naming *its* endpoint (exit 2)."""
    from ..endpoints import AttemptError

    for ep in endpoints.values():
        source = getattr(ep, "tool_source", None)
        if source is None:
            continue
        try:
            await source.list_tools()
        except AttemptError as exc:
            if exc.kind in ("connect", "timeout"):
                detail = exc.reason.removeprefix(f"endpoint {source.name}: ")
                config = pipeline.endpoints[source.name]
                key = "url" if config.url is not None else "command"
                raise ConfigError(
                    f"endpoint '{source.name}' (tools_from of '{ep.name}'): {detail}; no case was run",
                    pipeline.positions.locate(("endpoints", source.name, key)),
                    hint=f"start the server or correct {key}",
                ) from None


def _unreachable(pipeline: Pipeline, endpoint: str, reason: str, requests: int, journal_path: Path) -> ConfigError:
    """Exit 2 for an endpoint none of whose first requests could connect: bad input (a wrong
    ``base_url``, a server not started), not an unreliable model."""
    from .engine import EARLY_STOP_WINDOW

    config = pipeline.endpoints[endpoint]
    kind = getattr(config, "type", None)
    key = "url" if kind == "http" or kind == "mcp" and config.url else "command" if kind == "mcp" else "base_url"
    where = pipeline.positions.locate(("endpoints", endpoint, key))
    detail = reason.removeprefix(f"endpoint {endpoint}: ")
    which = (
        f"each of its first {requests} requests"
        if requests >= EARLY_STOP_WINDOW
        else f"all {requests} of its requests"
        if requests > 1
        else "its only request"
    )
    return ConfigError(
        f"endpoint '{endpoint}' is unreachable: {detail} on {which}; no case was judged",
        where,
        hint=f"start the server or correct {key}; the attempts are in {journal_path}",
    )


def _install_signals(loop: asyncio.AbstractEventLoop, engine: Engine) -> None:
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, engine.request_stop, "interrupted")
        except (NotImplementedError, RuntimeError, ValueError):
            pass


def _open_run_dir(options: RunOptions) -> tuple[Path, RunLock]:
    """The run directory, locked for this process (a second writer is refused, exit 2)."""
    from . import resume

    if options.resume:
        path = Path(options.resume)
        if options.out and Path(options.out).resolve() != path.resolve():
            raise UsageError(
                f"--out {options.out} and --resume {options.resume} name different directories",
                hint="a resumed run continues in its own directory; drop --out",
            )
        resume.load_manifest(path)
        lock = resume.RunLock(path).acquire()
        resume.clean_stale_tmp(path)
        return path, lock
    path = _run_dir(options)
    lock = resume.RunLock(path).acquire()
    if not resume.is_unstarted(path):
        lock.release()
        raise UsageError(f"--out {path}: the directory exists and is not empty")
    resume.clean_stale_tmp(path)
    return path, lock


def _run_dir(options: RunOptions) -> Path:
    if options.out:
        from .resume import is_unstarted

        path = Path(options.out)
        if path.exists() and not (path.is_dir() and is_unstarted(path)):
            raise UsageError(
                f"--out {path}: the directory exists and is not empty",
                hint="relcheck never overwrites a run; choose a new directory or use --resume to continue it",
            )
        path.mkdir(parents=True, exist_ok=True)
        return path
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RUNS_DIR / f"{stamp}-{secrets.token_hex(3)}"
    path.mkdir(parents=True, exist_ok=False)
    return path


def _manifest(run_dir: Path, pipeline_path: str, prep: Prepared, options: RunOptions) -> dict[str, Any]:
    return {
        "schema": "relcheck.manifest/v1",
        "run_id": run_dir.name,
        "command": list(options.command) or sys.argv,
        "relcheck_version": __version__,
        "python_version": platform.python_version(),
        "started_at": _now(),
        "pipeline": str(pipeline_path),
        "pipeline_hash": prep.pipeline.hash,
        "evalsets": dict(prep.evalset.hashes),
        "evalset_hash": evalset_hash(prep.evalset.hashes),
        "flags": options.result_flags(prep.seed),
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
