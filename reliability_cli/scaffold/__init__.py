"""``relcheck init``: a pipeline and eval set that run offline. Never overwrites a file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import UsageError

FILES = ("pipeline.yaml", "cases.jsonl")


def scaffold(directory: str | Path) -> list[Path]:
    """Write the starter files into ``directory``; refuse if any already exists."""
    target = Path(directory)
    existing = [target / name for name in FILES if (target / name).exists()]
    if existing:
        hints = []
        if (target / "pipeline.yaml").is_file():
            hints.append(f"to run what is there: relcheck eval {target / 'pipeline.yaml'}")
        hints.append(f"to start another pipeline: relcheck init {_free_directory(target)}")
        raise UsageError(f"{existing[0]} already exists; relcheck init never overwrites a file", hint="; ".join(hints))
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FILES:
        text = resources.files("reliability_cli.scaffold").joinpath(name).read_text(encoding="utf-8")
        path = target / name
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(text)
        written.append(path)
    return written


def _free_directory(target: Path) -> Path:
    """A directory next to ``target`` that does not exist: ``DIR-2``, ``DIR-3``, …
    (``my-pipeline`` first, for the current directory)."""
    if target.resolve() == Path.cwd().resolve():
        base = Path("my-pipeline")
        if not base.exists():
            return base
    else:
        base = target
    for k in range(2, 10_000):
        candidate = base.with_name(f"{base.name}-{k}")
        if not candidate.exists():
            return candidate
    return base.with_name(f"{base.name}-new")
