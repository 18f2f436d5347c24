"""Sharding: N shards merged equal the unsharded run; inconsistent shards are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import run_relcheck

from .helpers import comparable, load

ARGS = ("--trials", "2", "-q", "--no-progress", "--concurrency", "16")


def _shards(project: Path, tmp_path: Path, n: int = 4) -> list[Path]:
    dirs = []
    for i in range(1, n + 1):
        out = tmp_path / f"shard{i}"
        r = run_relcheck("eval", project, "--shard", f"{i}/{n}", "--out", out, *ARGS, cwd=project.parent)
        assert r.returncode == 0, r.stderr
        assert load(out / "results.json")["run"]["shard"] == f"{i}/{n}"
        dirs.append(out)
    return dirs


def test_four_shards_merged_equal_the_unsharded_run(tmp_path: Path) -> None:
    from .helpers import make_project

    project = make_project(tmp_path / "p", cases=120, latency_ms=0)
    full = run_relcheck("eval", project, "--out", tmp_path / "full", *ARGS, cwd=project.parent)
    assert full.returncode == 0, full.stderr
    dirs = _shards(project, tmp_path)
    merged = run_relcheck("merge", *(d / "results.json" for d in reversed(dirs)), "-o", tmp_path / "m.json", "-q")
    assert merged.returncode == 0, merged.stderr
    expected = comparable(load(tmp_path / "full" / "results.json"))
    assert comparable(load(tmp_path / "m.json")) == expected
    # without the shards' journals the merge comes from the summaries: all equal but latency
    for d in dirs:
        shutil.move(d, d.with_name(d.name + "-moved"))
    moved = [d.with_name(d.name + "-moved") / "results.json" for d in dirs]
    approx = run_relcheck("merge", *moved, "-o", tmp_path / "m2.json", "-q")
    assert approx.returncode == 0, approx.stderr
    got = comparable(load(tmp_path / "m2.json"))
    assert got["run"].pop("latency_approximate") is True
    for key in ("end_to_end", "what_if", "units", "gates", "verdict"):
        assert got[key] == expected[key], key
    for a, b in zip(got["steps"], expected["steps"]):
        a.pop("latency_ms"), b.pop("latency_ms")
        assert a == b


def test_merge_refuses_inconsistent_shards(tmp_path: Path) -> None:
    from .helpers import make_project

    project = make_project(tmp_path / "p", cases=30, latency_ms=0)
    dirs = _shards(project, tmp_path, n=2)
    overlap = run_relcheck("merge", dirs[0], dirs[0], "-o", tmp_path / "m.json")
    assert overlap.returncode == 2 and "both shard 1/2" in overlap.stderr
    other = make_project(tmp_path / "q", cases=30, latency_ms=0, fail_rate=0.3)
    r = run_relcheck("eval", other, "--shard", "2/2", "--out", tmp_path / "other", *ARGS, cwd=other.parent)
    assert r.returncode == 0, r.stderr
    mixed = run_relcheck("merge", dirs[0], tmp_path / "other", "-o", tmp_path / "m.json")
    assert mixed.returncode == 2 and "different resolved pipeline" in mixed.stderr
    missing = run_relcheck("merge", dirs[0], "-o", tmp_path / "m.json", "-q")
    assert missing.returncode == 3  # half the run cannot be gated
