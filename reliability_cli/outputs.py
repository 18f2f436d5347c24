"""The overwrite rule every command's output flags follow.

An output flag (``--json --junit --markdown --html --record``, ``report -o``, ``compare
--json/--markdown``, ``merge -o/--junit/--markdown/--html``, ``plan --json``) never writes
over

- an input of the command: the pipeline file, an eval set, the cassette given to
  ``--replay``, a baseline, a results file read by ``report``/``compare``/``merge``/``plan``;
- a run file: ``manifest.json``, ``attempts.jsonl`` and ``requests.jsonl`` (or their
  ``.gz``), ``results.json`` or ``.lock`` of the run directory being written, or of any
  directory that holds a ``manifest.json``;
- another output of the same command.

Paths are compared as the files they are: resolved (``..``, symlinks) and, where both
exist, by ``os.path.samefile`` (hard links). A refusal is a :class:`UsageError` (exit 2),
raised before anything runs or is written. Any other existing file is replaced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import UsageError

__all__ = ["RUN_FILES", "refuse_overwrites", "results_file", "run_files"]

RUN_FILES = (
    "manifest.json",
    "attempts.jsonl",
    "attempts.jsonl.gz",
    "requests.jsonl",
    "requests.jsonl.gz",
    "results.json",
    ".lock",
)


def run_files(run_dir: str | os.PathLike[str] | None) -> list[tuple[str, Path]]:
    """The run files of ``run_dir`` as (what, path) pairs for :func:`refuse_overwrites`."""
    if run_dir is None:
        return []
    return [(f"the run file {name} of {run_dir}", Path(run_dir) / name) for name in RUN_FILES]


def results_file(path: str) -> str:
    """The results file a command reads for ``path`` (a run directory means its results.json)."""
    return os.path.join(path, "results.json") if os.path.isdir(path) else path


def _same(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop: compare what can be compared
        pass
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _in_run_dir(path: Path) -> bool:
    if path.name not in RUN_FILES:
        return False
    try:
        return (path.resolve().parent / "manifest.json").is_file()
    except (OSError, RuntimeError):
        return False


def refuse_overwrites(
    outputs: Mapping[str, str | os.PathLike[str] | None], inputs: Iterable[tuple[str, str | os.PathLike[str] | None]]
) -> None:
    """Refuse (exit 2) any output that would write over an input, a run file or another output.

    Args:
        outputs: flag → path; ``None`` and ``-`` (stdout) are skipped.
        inputs: (what it is, path) pairs the command reads or must keep, e.g.
            ``("the pipeline file", "pipeline.yaml")``; ``None`` paths are skipped.

    Raises:
        UsageError: naming the flag, the path and what it would overwrite.
    """
    protected = [(what, Path(p)) for what, p in inputs if p is not None and str(p) != "-"]
    seen: list[tuple[str, Path]] = []
    for flag, value in outputs.items():
        if value is None or str(value) == "-":
            continue
        target = Path(value)
        for what, path in protected:
            if _same(target, path):
                raise UsageError(
                    f"{flag} {value}: would overwrite {what} ({path})",
                    hint="relcheck never writes over a run's inputs or its run files; choose another output path",
                )
        if _in_run_dir(target):
            raise UsageError(
                f"{flag} {value}: would overwrite the run file {target.name} of {target.parent}",
                hint="relcheck never writes over a run's files; choose another output path",
            )
        for other, path in seen:
            if _same(target, path):
                raise UsageError(f"{flag} {value}: {other} writes the same file", hint="give each output its own path")
        seen.append((flag, target))
