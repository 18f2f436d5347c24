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
        raise UsageError(
            f"{existing[0]} already exists; relcheck init never overwrites a file",
            hint="choose an empty directory: relcheck init my-pipeline",
        )
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FILES:
        text = resources.files("reliability_cli.scaffold").joinpath(name).read_text(encoding="utf-8")
        path = target / name
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(text)
        written.append(path)
    return written
