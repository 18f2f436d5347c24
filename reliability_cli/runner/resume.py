"""Run directories: the single-writer lock, and ``--resume`` (SPEC §4, §8).

A resumed run keeps every unit that has a ``unit_done`` line and reruns the rest. Before
anything runs, the journal is rewritten (temp file + ``os.replace``) to hold only the header
and the lines of finished units: a torn last line and the partial attempts of unfinished
units are dropped, so a unit never counts twice. A resume is refused when the resolved
pipeline, the eval sets or a result-changing flag differ from the run's manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ..endpoints import is_infrastructure
from ..errors import Location, ResultsError, UsageError
from ..journal import STORED_NAMES, decompress, gz_path, is_stored, iter_records, write_atomically

LOCK_NAME = ".lock"
FLAG_NAMES = {
    "trials": "--trials",
    "retries": "--retries",
    "seed": "--seed",
    "isolate": "--isolate",
    "endpoint": "--endpoint",
    "limit": "--limit",
    "filter_tag": "--filter-tag",
    "shard": "--shard",
}

UnitKey = tuple[str, int]


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``RUN_DIR/.lock``, held for the whole run."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_NAME
        self._fh: IO[str] | None = None

    def acquire(self) -> RunLock:
        import fcntl

        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise UsageError(
                f"{self.path.parent}: another relcheck is writing this run directory",
                hint="a run directory has a single writer; wait for it to finish, or run elsewhere with --out",
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the descriptor releases the flock
            self._fh = None


def load_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of the run in ``run_dir`` (exit 2 when it is not a run directory)."""
    path = run_dir / "manifest.json"
    if not run_dir.is_dir():
        raise UsageError(f"--resume {run_dir}: no such run directory")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = (
            f"the run stopped before it started; start it again with --out {run_dir}" if is_unstarted(run_dir) else None
        )
        raise ResultsError(f"--resume {run_dir}: not a relcheck run directory (no manifest.json)", hint=hint) from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"--resume {run_dir}: cannot read manifest.json: {exc}") from None
    if not isinstance(manifest, dict) or "flags" not in manifest:
        raise ResultsError(f"--resume {run_dir}: manifest.json is not a relcheck manifest")
    return manifest


def check_compatible(
    run_dir: Path,
    manifest: Mapping[str, Any],
    pipeline_hash: str,
    evalsets: Mapping[str, str],
    flags: Mapping[str, Any],
) -> None:
    """Refuse (exit 2) a resume whose pipeline, eval sets or result-changing flags differ."""
    differences: list[str] = []
    if manifest.get("pipeline_hash") != pipeline_hash:
        differences.append(
            f"the resolved pipeline differs (run: {manifest.get('pipeline')}, "
            f"hash {str(manifest.get('pipeline_hash'))[:12]} ≠ now {pipeline_hash[:12]})"
        )
    before = dict(manifest.get("evalsets") or {})
    if list(before.values()) != list(evalsets.values()):
        differences.append(f"the eval sets differ (run: {', '.join(before) or 'none'}; now: {', '.join(evalsets)})")
    old_flags = manifest.get("flags") or {}
    for key, name in FLAG_NAMES.items():
        if old_flags.get(key) != flags.get(key):
            differences.append(f"{name} differs (run: {_show(old_flags.get(key))}, now: {_show(flags.get(key))})")
    if differences:
        raise UsageError(
            f"--resume {run_dir}: cannot resume: " + "; ".join(differences),
            hint="resume with the run's original pipeline, eval sets and flags "
            "(see its manifest.json), or start a new run",
        )


def _show(value: Any) -> str:
    if value is None or value == []:
        return "not set"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def compact_journal(journal: Path, retry_errors: bool = False) -> set[UnitKey]:
    """Rewrite ``journal`` keeping the header and the lines of finished units; return their keys.

    With ``retry_errors``, units whose final attempt was an infrastructure error are dropped
    too, so they run again. A finished run's compressed files are brought back as plain files
    first (the compacted journal is written plain; the sidecar is decompressed), so the resume
    appends to them; each step is a temp file, fsynced and renamed, then the ``.gz`` removed.
    """
    for name in STORED_NAMES:
        if name != journal.name:
            decompress(journal.with_name(name))
    if not is_stored(journal):
        return set()
    keep: set[UnitKey] = set()
    for number, _raw, rec in iter_records(journal):
        unit = rec.get("unit_done")
        if unit is None:
            continue
        if not (isinstance(unit, dict) and isinstance(unit.get("case"), str) and isinstance(unit.get("trial"), int)):
            raise ResultsError(
                "a unit_done record without a case id and a trial number: the journal cannot be trusted",
                Location(str(journal), number),
                hint="restore the file, or start a new run",
            )
        key = (unit["case"], unit["trial"])
        if retry_errors and unit.get("outcome") == "error" and is_infrastructure(unit.get("error_kind")):
            keep.discard(key)
        else:
            keep.add(key)

    def kept(out: Any) -> None:
        for i, (_number, line, rec) in enumerate(iter_records(journal)):
            unit = rec.get("unit_done")
            if i == 0 and "schema" in rec:
                pass
            elif unit is not None:
                if (unit["case"], unit["trial"]) not in keep:
                    continue
            elif (rec.get("case"), rec.get("trial")) not in keep:
                continue
            out.write(line)

    write_atomically(journal, kept)  # fsyncs the file and the directory
    gz = gz_path(journal)
    if gz.exists():  # the plain journal is now the newer form (durable above): the old one goes
        gz.unlink()
    return keep


def clean_stale_tmp(run_dir: Path) -> None:
    """Remove the temp files of an atomic write that failed (a full disk, a kill)."""
    for name in _TMP_NAMES:
        (run_dir / name).unlink(missing_ok=True)


def is_unstarted(run_dir: Path) -> bool:
    """A directory holding nothing but a run's lock and temp files: a run stopped between
    creating its directory and writing ``manifest.json``. ``--out`` may start it afresh."""
    return run_dir.is_dir() and all(p.name == LOCK_NAME or p.name in _TMP_NAMES for p in run_dir.iterdir())


_TMP_NAMES = (
    "manifest.json.tmp",
    "results.json.tmp",
    "attempts.jsonl.tmp",
    "attempts.jsonl.gz.tmp",
    "requests.jsonl.tmp",
    "requests.jsonl.gz.tmp",
)


def resume_command(command: Sequence[str], run_dir: Path) -> str:
    """The shell command that continues ``run_dir``: this command without ``--out``/``--resume``,
    plus ``--resume RUN_DIR`` (every other flag kept, so the result-changing ones match)."""
    import shlex

    args = list(command)
    kept: list[str] = []
    skip = False
    for arg in args[1:]:
        if skip:
            skip = False
            continue
        if arg in ("--out", "--resume"):
            skip = True
            continue
        if arg.startswith(("--out=", "--resume=")):
            continue
        kept.append(arg)
    return shlex.join([args[0] if args else "relcheck", *kept, "--resume", str(run_dir)])


#: manifest flag → the RunOptions field it fills when ``--resume`` is given without it
_OPTION_OF = {
    "trials": "trials",
    "retries": "retries",
    "seed": "seed",
    "isolate": "isolate",
    "endpoint": "endpoint_overrides",
    "limit": "limit",
    "filter_tag": "filter_tags",
    "shard": "shard",
}


def recorded_options(run_dir: str, pipeline: str | None, given: set[str]) -> tuple[str, dict[str, Any]]:
    """The pipeline path and RunOptions fields a resume takes from the run's manifest.

    ``relcheck eval --resume RUN_DIR`` alone continues with the recorded pipeline path, eval
    sets and result-changing flags; what is given explicitly (``pipeline``, and the RunOptions
    field names in ``given``) is kept, so :func:`check_compatible` still refuses a mismatch.
    """
    manifest = load_manifest(Path(run_dir))
    flags = manifest.get("flags") or {}
    out: dict[str, Any] = {}
    for key, field in _OPTION_OF.items():
        if field in given or key not in flags:
            continue
        value = flags[key]
        if key == "shard" and value:
            i, _, n = str(value).partition("/")
            value = (int(i), int(n))
        out[field] = value
    if "evalsets" not in given and manifest.get("evalsets"):
        out["evalsets"] = list(manifest["evalsets"])
    path = pipeline or manifest.get("pipeline")
    if not path:
        raise UsageError(f"--resume {run_dir}: the manifest records no pipeline path; give PIPELINE")
    return str(path), out
