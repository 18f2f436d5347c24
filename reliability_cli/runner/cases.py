"""The cases a run covers, without holding a large eval set in memory (SPEC §10).

Selection (``--filter-tag``, ``--shard``, ``--limit``) is decided in one validating pass
over the eval set files. A small set keeps its cases; a large one keeps only the selected
ids and their positions and re-reads its files, line by line, as the engine pulls units.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..config import Case, Pipeline
from ..config.evalset import iter_evalsets

IN_MEMORY_CASES = 5000


class CaseSelection:
    """Selected cases in eval-set order; ``positions`` maps each id to its place in the
    unsharded (tag-filtered) eval set, which orders units and lets ``merge`` order shards."""

    def __init__(
        self,
        paths: Sequence[str],
        pipeline: Pipeline | None,
        hashes: Mapping[str, str],
        positions: dict[str, int],
        cases: tuple[Case, ...] | None,
    ) -> None:
        self.paths = list(paths)
        self.pipeline = pipeline
        self.hashes = dict(hashes)
        self.positions = positions
        self._cases = cases

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def cases(self) -> Iterable[Case]:
        return self._cases if self._cases is not None else self._stream()

    def _stream(self) -> Iterator[Case]:
        wanted = self.positions
        for case in iter_evalsets(self.paths, self.pipeline, unique=False):
            if case.id in wanted:
                yield case


def select_cases(
    paths: Sequence[str],
    pipeline: Pipeline | None,
    tags: Sequence[str] = (),
    shard: tuple[int, int] | None = None,
    limit: int | None = None,
    shard_of: Any = None,
) -> CaseSelection:
    """One validating pass: the cases having any of ``tags``, in shard I of N, then the first ``limit``.

    Raises:
        EvalSetError: as :func:`~reliability_cli.config.load_evalsets`.
    """
    hashes: dict[str, str] = {}
    wanted = set(tags)
    positions: dict[str, int] = {}
    kept: list[Case] | None = []
    index = -1
    for case in iter_evalsets(paths, pipeline, hashes):
        if wanted and not wanted.intersection(case.tags):
            continue
        index += 1
        if shard is not None and shard_of(case.id, shard[1]) != shard[0]:
            continue
        if limit is not None and len(positions) >= limit:
            continue  # keep reading: the whole file is validated and hashed
        positions[case.id] = index
        if kept is not None:
            kept.append(case)
            if len(kept) > IN_MEMORY_CASES:
                kept = None
    if wanted and not positions and index < 0:
        _no_such_tags(paths, pipeline, wanted)
    return CaseSelection(paths, pipeline, hashes, positions, tuple(kept) if kept is not None else None)


def _no_such_tags(paths: Sequence[str], pipeline: Pipeline | None, wanted: set[str]) -> None:
    """No case has any of the ``--filter-tag`` tags: bad input (exit 2) naming the tags that exist."""
    from ..errors import UsageError

    existing: set[str] = set()
    for case in iter_evalsets(paths, pipeline, {}):
        existing.update(case.tags)
    given = ", ".join(sorted(wanted))
    raise UsageError(
        f"--filter-tag {given}: no case has {'this tag' if len(wanted) == 1 else 'any of these tags'}",
        hint=("the eval set's tags: " + ", ".join(sorted(existing)))
        if existing
        else "no case in the eval set has a tag",
    )


def shard_of(case_id: str, shards: int) -> int:
    """The shard (1-based) a case belongs to: SHA-256 of its id, modulo N."""
    return int.from_bytes(hashlib.sha256(case_id.encode("utf-8", "surrogatepass")).digest()[:8], "big") % shards + 1
