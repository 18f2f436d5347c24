"""Which step did a unit reach, and per-case shares: derived here and nowhere else.

In chained mode a unit runs its steps in order and stops at the first step whose final attempt
did not pass (SPEC §4). So a unit's record — ``passed`` and ``failed_step`` — says everything
about every step: it *reached* step k when it failed at k or later (or passed), and it
*passed* step k when it failed after k (or passed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .schema import UnitRecord


def failed_index(unit: UnitRecord, step_ids: Sequence[str]) -> int:
    """The index of the step where ``unit`` stopped; ``len(step_ids)`` when it passed.

    A failed unit whose failed step is not among ``step_ids`` reached nothing comparable: -1.
    """
    if unit.passed:
        return len(step_ids)
    try:
        return list(step_ids).index(unit.failed_step) if unit.failed_step is not None else -1
    except ValueError:
        return -1


def at_step(unit: UnitRecord, step_ids: Sequence[str], k: int | None) -> tuple[bool, bool]:
    """(reached, passed) of ``unit`` at step index ``k``; ``k=None`` is end to end."""
    if k is None:
        return True, unit.passed
    stop = failed_index(unit, step_ids)
    return stop >= k, stop > k


def case_counts(
    units: Iterable[UnitRecord], step_ids: Sequence[str] = (), step: str | None = None
) -> dict[str, tuple[int, int]]:
    """case → (units passed, units reached), end to end or at ``step``, in the units' order."""
    k = None if step is None else list(step_ids).index(step)
    counts: dict[str, list[int]] = {}
    for u in units:
        reached, passed = at_step(u, step_ids, k)
        if reached:
            pc = counts.setdefault(u.case, [0, 0])
            pc[0] += passed
            pc[1] += 1
    return {case: (p, n) for case, (p, n) in counts.items()}


def shares(counts: dict[str, tuple[int, int]]) -> list[float]:
    """Per-case pass shares of :func:`case_counts` (cases with no unit reached are left out)."""
    return [p / n for p, n in counts.values() if n]
