"""Past runs: ``relcheck runs`` (list, ``--prune --keep N``) and ``relcheck history PIPELINE``.

A run is a directory under ``.relcheck/runs/`` with a ``manifest.json``; its figures come
from its ``results.json`` (a run interrupted before writing one is listed as ``incomplete``).
Pruning deletes the oldest runs beyond the newest N, never one whose ``.lock`` another
relcheck holds (a run in progress, or being resumed): each run is locked before it is removed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError

RUNS_DIR = Path(".relcheck") / "runs"  # (as in runner.run, which this does not import)

SPARKS = "▁▂▃▄▅▆▇█"
LOCK_NAME = ".lock"  # runner.resume.LOCK_NAME


@dataclass
class RunInfo:
    id: str
    path: str
    started_at: str | None
    pipeline: str | None  # the pipeline's name
    pipeline_path: str | None
    pipeline_hash: str | None
    units: int | None
    e2e_rate: float | None
    e2e_ci: dict[str, float] | None
    verdict: str  # pass, fail, error, or incomplete (no results.json)
    size_bytes: int
    locked: bool
    steps: list[dict[str, Any]] = field(default_factory=list)  # id, rate, ci, reached

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            continue
    return total


def is_locked(run_dir: Path) -> bool:
    """Whether a relcheck process holds the run's ``.lock`` (probed without writing to it).

    Args:
        run_dir: The run directory.

    Returns:
        True while another process holds the lock.
    """
    import fcntl

    try:
        fh = open(run_dir / LOCK_NAME, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError:
        return False
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        fh.close()  # (closing drops the probe's lock)
    return False


def read_run(run_dir: Path) -> RunInfo | None:
    """One run's summary (``relcheck runs``).

    Args:
        run_dir: A directory under ``.relcheck/runs/``.

    Returns:
        The summary (verdict ``incomplete`` while it has no results), or None when
        ``run_dir`` holds no readable ``manifest.json``.
    """
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    results: dict[str, Any] = {}
    try:
        loaded = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
        results = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        pass
    run = results.get("run") or {}
    e2e = results.get("end_to_end") or {}
    steps = [
        {"id": s.get("id"), "rate": s.get("rate"), "ci": s.get("ci"), "reached": s.get("reached")}
        for s in results.get("steps") or ()
        if isinstance(s, dict)
    ]
    return RunInfo(
        id=str(manifest.get("run_id") or run_dir.name),
        path=str(run_dir),
        started_at=manifest.get("started_at"),
        pipeline=run.get("pipeline"),
        pipeline_path=run.get("pipeline_path") or manifest.get("pipeline"),
        pipeline_hash=run.get("pipeline_hash") or manifest.get("pipeline_hash"),
        units=len(results["units"]) if isinstance(results.get("units"), list) else None,
        e2e_rate=e2e.get("rate"),
        e2e_ci=e2e.get("ci"),
        verdict=str(results.get("verdict") or "incomplete"),
        size_bytes=_size(run_dir),
        locked=is_locked(run_dir),
        steps=steps,
    )


def list_runs(root: str | Path = RUNS_DIR) -> list[RunInfo]:
    """The runs under ``root`` (``relcheck runs``).

    Args:
        root: The runs directory (default ``.relcheck/runs``).

    Returns:
        Their summaries, oldest first (by start time, then id).
    """
    base = Path(root)
    if not base.is_dir():
        return []
    runs = [info for d in base.iterdir() if d.is_dir() and (info := read_run(d)) is not None]
    return sorted(runs, key=lambda r: (r.started_at or "", r.id))


@dataclass
class Pruned:
    """What ``relcheck runs --prune`` did."""

    deleted: list[RunInfo]
    kept: list[RunInfo]
    skipped_locked: list[RunInfo]
    freed_bytes: int


def prune_runs(keep: int, root: str | Path = RUNS_DIR) -> Pruned:
    """Delete all but the newest ``keep`` runs under ``root``; a locked run is never deleted.

    Args:
        keep: Runs to keep, 0 or more.
        root: The runs directory.

    Returns:
        The runs deleted, kept and skipped (locked), and the bytes freed.

    Raises:
        UsageError: ``keep`` is negative.
    """
    from .runner.resume import RunLock

    if keep < 0:
        raise UsageError(f"--keep {keep}: expected 0 or more")
    runs = list_runs(root)
    old = runs[: max(0, len(runs) - keep)]
    kept = runs[len(old) :]
    deleted, skipped = [], []
    for info in old:
        path = Path(info.path)
        try:
            lock = RunLock(path).acquire()
        except UsageError:
            skipped.append(info)
            continue
        try:
            shutil.rmtree(path)
        finally:
            lock.release()
        deleted.append(info)
    return Pruned(deleted, kept + skipped, skipped, sum(r.size_bytes for r in deleted))


# ---------------------------------------------------------------------- history


@dataclass
class History:
    pipeline: str
    runs: list[RunInfo]
    steps: list[str]  # every step id seen, in the order of the latest run


def _pipeline_name(spec: str) -> str | None:
    path = Path(spec)
    if not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")[:1_000_000])
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    return str(data["name"]) if isinstance(data, dict) and data.get("name") is not None else None


def history(pipeline: str, root: str | Path = RUNS_DIR) -> History:
    """The finished runs of one pipeline (``relcheck history``).

    Args:
        pipeline: A pipeline file, or a pipeline's ``name:``.
        root: The runs directory.

    Returns:
        The runs, oldest first, and every step id they hold (newest run's order first).

    Raises:
        UsageError: no run of that pipeline.
    """
    name = _pipeline_name(pipeline)
    target = Path(pipeline).resolve() if Path(pipeline).is_file() else None
    runs = []
    for info in list_runs(root):
        if info.verdict == "incomplete" or info.e2e_rate is None:
            continue
        same_file = (
            target is not None and info.pipeline_path is not None and Path(info.pipeline_path).resolve() == target
        )
        if info.pipeline in (pipeline, name) or same_file:
            runs.append(info)
    if not runs:
        known = sorted({r.pipeline for r in list_runs(root) if r.pipeline})
        raise UsageError(
            f"no finished run of pipeline {pipeline!r} under {root}",
            hint=("pipelines with runs: " + ", ".join(known)) if known else "run relcheck eval first",
        )
    steps: list[str] = []
    for info in reversed(runs):
        for s in info.steps:
            if s["id"] not in steps:
                steps.append(s["id"])
    return History(name or runs[-1].pipeline or pipeline, runs, steps)


def sparkline(values: Sequence[float | None], min_span: float = 0.1) -> str:
    """A terminal sparkline of rates.

    Args:
        values: Rates, oldest first; None for a run without the figure.
        min_span: The smallest range the blocks span below the series' highest value (10
            points of rate by default), so noise of a point or two stays a small step.

    Returns:
        One block character per value, a space for None.
    """
    present = [v for v in values if v is not None]
    if not present:
        return " " * len(values)
    hi = max(present)
    lo = min(min(present), hi - min_span)
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        else:
            out.append(SPARKS[round((v - lo) / (hi - lo) * (len(SPARKS) - 1))])
    return "".join(out)


def step_series(hist: History, step: str) -> list[dict[str, Any] | None]:
    """One step's ``{id, rate, ci, reached}`` in each run of ``hist`` (None where it is absent)."""
    out: list[dict[str, Any] | None] = []
    for info in hist.runs:
        out.append(next((s for s in info.steps if s["id"] == step), None))
    return out


def history_json(hist: History) -> dict[str, Any]:
    """The ``relcheck.history/v1`` document of ``relcheck history --json``."""
    return {
        "schema": "relcheck.history/v1",
        "pipeline": hist.pipeline,
        "steps": hist.steps,
        "runs": [
            {
                "id": r.id,
                "started_at": r.started_at,
                "pipeline_hash": r.pipeline_hash,
                "units": r.units,
                "verdict": r.verdict,
                "end_to_end": {"rate": r.e2e_rate, "ci": r.e2e_ci},
                "steps": {s["id"]: {"rate": s["rate"], "ci": s["ci"], "reached": s["reached"]} for s in r.steps},
            }
            for r in hist.runs
        ],
    }
