"""Read one large JSON Lines trace file in worker processes, each a byte range of it.

``relcheck traces`` spends about half its time reading (lines, JSON, the record of each span)
and spilling. A file of JSON Lines splits at line boundaries: each worker reads its range
as the one-process reader reads those lines (:class:`.records.FileRange`), names the steps,
and writes its own spill parts, which the parent adopts in file order
(:meth:`.spill.Spill.adopt`) — so the parts hold the same rows in the same order, and the
results and journal are those of reading the file in one process. Meanwhile the parent
hashes the file and finds the split points (the line number each range starts at).

Malformed records are reported as in one process: a worker stops at its first one (or,
under ``--skip-bad``, counts them and keeps the first examples), and the parent replays them
in file order through the same :class:`.records.BadRecords` — the first range with an error
raises it, naming its file and line. Workers ignore Ctrl-C; the parent stops them on it.

Only where it pays and is safe: a file of at least :data:`MIN_BYTES` whose first record is
a line (not one pretty-printed document, not CSV), on a system with ``fork`` (Linux: the
workers inherit the step rules and checks, and Python's string hashing — which picks a
record's part — without pickling anything) and more than one CPU it may run on.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .records import EXAMPLES_KEPT, BadRecord, BadRecords, FileRange, HashingFile, TraceRecord, loads, trace_lines

MIN_BYTES = 8 << 20  # smaller files are read in process (where a worker would cost more than it saves)
CHUNK_BYTES = 16 << 20  # at most this much a range (many per worker: a busy CPU does fewer, none waits long at the end)
BLOCK = 1 << 20  # the parent's read size while hashing and counting lines

Reader = Callable[[HashingFile, BadRecords], Iterator[TraceRecord]]
Spiller = Callable[..., None]

# what the workers inherit (set in the parent just before the fork; never pickled)
_inherited: dict[str, Any] = {}


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. under ``taskset`` or a
    container's cpuset), not every CPU of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workers_for(path: Path, fmt: str) -> int:
    """How many worker processes to read ``path`` with; 0: read it in process."""
    if sys.platform != "linux" or MIN_BYTES < 0:
        return 0
    cpus = usable_cpus()
    if cpus < 2 or path.suffix.lower() == ".csv":
        return 0
    size = path.stat().st_size
    if size < MIN_BYTES or not _starts_with_a_line(path, size):
        return 0
    return min(cpus, max(2, -(-size // CHUNK_BYTES)))


def _starts_with_a_line(path: Path, size: int) -> bool:
    """Whether :func:`.records.json_items` would read the file as lines: its first non-empty
    line parses, or fails without opening a document (a bad record). A first line of more
    than half the file (one document on one line) is not worth splitting."""
    with open(path, "rb") as fh:
        for raw in trace_lines(fh, str(path)):
            text = raw.strip()
            if not text:
                continue
            if len(raw) > size // 2:
                return False
            try:
                loads(text)
            except ValueError:
                return text[:1] not in (b"{", b"[")
            return True
    return False


def spill_file(
    path: Path,
    reader: Reader,
    workers: int,
    spill_records: Spiller,
    mapper: Any,
    checks: Any,
    spill: Any,
    index: int,
    counts: Counter[str],
    bad: BadRecords,
) -> str:
    """Read ``path`` with ``workers`` processes into ``spill``, as ``spill_records(reader(…),
    mapper, checks, spill, index, counts)`` would in process; return the file's SHA-256.

    Raises:
        TracesError: a malformed record (without ``skip_bad``): the first in the file.
    """
    import hashlib
    import multiprocessing

    size = path.stat().st_size
    chunks = max(workers, -(-size // CHUNK_BYTES))
    target = -(-size // chunks)
    _inherited.update(
        reader=reader, spill_records=spill_records, mapper=mapper, checks=checks, skip=bad.skip, dir=spill.directory
    )
    sha = hashlib.sha256()
    file = str(path)
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_sigint) as pool:
            pending = []
            start, line, offset = 0, 1, 0  # the range being found: its first byte and line
            lines = 1  # the number of the line at ``offset``
            with open(path, "rb") as fh:
                while True:
                    block = fh.read(BLOCK)
                    if not block:
                        break
                    sha.update(block)
                    cut = -1
                    if offset + len(block) - start >= target:
                        cut = block.rfind(b"\n")
                    if cut >= 0 and offset + cut + 1 < size:
                        end = offset + cut + 1
                        task = (file, index, start, end, line)
                        pending.append(pool.apply_async(_read_range, (task,)))
                        lines += block.count(b"\n", 0, cut + 1)
                        start, line = end, lines
                        lines += block.count(b"\n", cut + 1)
                    else:
                        lines += block.count(b"\n")
                    offset += len(block)
            pending.append(pool.apply_async(_read_range, ((file, index, start, size, line),)))
            for result in pending:
                got = result.get()
                for message, at, item in got["bad"]:
                    bad.add(file, BadRecord(message, line=at, item=item))  # (raises, without skip_bad)
                bad.count += got["bad_count"] - len(got["bad"])
                spill.adopt(got["segment"], got["rows"], got["firsts"])
                counts.update(got["counts"])
            pool.close()
            pool.join()
    finally:
        _inherited.clear()
    return sha.hexdigest()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pool on Ctrl-C


class _Stop(Exception):
    """A worker's first malformed record, without ``--skip-bad``: its range ends there."""


class _Collected(BadRecords):
    """A worker's malformed records, kept raw for the parent to replay in file order."""

    def __init__(self, skip: bool) -> None:
        super().__init__(skip=skip)
        self.raw: list[tuple[str, int | None, int | None]] = []

    def add(self, file: str, exc: BadRecord) -> None:
        self.count += 1
        if len(self.raw) < EXAMPLES_KEPT:
            self.raw.append((exc.message, exc.line, exc.item))
        if not self.skip:
            raise _Stop


def _read_range(task: tuple[str, int, int, int, int]) -> dict[str, Any]:
    from .spill import Spill

    file, index, start, end, first_line = task
    got = _inherited
    bad = _Collected(got["skip"])
    spill = Spill(got["dir"])  # (a directory inside the parent's: removed with it)
    counts: Counter[str] = Counter()
    source = FileRange(Path(file), start, end, first_line)
    try:
        got["spill_records"](got["reader"](source, bad), got["mapper"], got["checks"], spill, index, counts)
    except _Stop:
        pass
    segment = spill.seal()
    return {
        "segment": segment,
        "rows": spill.rows,
        "firsts": spill.firsts,
        "counts": dict(counts),
        "bad": bad.raw,
        "bad_count": bad.count,
    }


# ---------------------------------------------------------------- grouping, in workers by part
# Once every record is spilled, each part (1/PARTS of the traces) is grouped on its own: the
# steps' positions (for their order), and then the units, their journal lines and their
# analysis are made by workers, part by part; the parent writes the lines and joins the
# analyses in part order, which gives what :func:`.run.write_journal` and the analysis it
# feeds give in one process.

GROUP_MIN_ROWS = 100_000  # fewer records are grouped in process


def group_workers(rows: int) -> int:
    """How many worker processes to group ``rows`` spilled records with; 0: in process."""
    if sys.platform != "linux" or rows < GROUP_MIN_ROWS:
        return 0
    cpus = usable_cpus()
    return min(cpus, 8) if cpus >= 2 else 0


def step_order(spill: Any, workers: int) -> list[str]:
    """:meth:`.spill.Spill.step_order`, part by part in ``workers`` processes."""
    import multiprocessing

    from .spill import order_of

    parts = spill.filled()
    _inherited.update(spill=spill)
    sums: dict[str, list[int]] = {}
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_sigint) as pool:
            for got in pool.imap(_part_ranks, parts):
                for step, (total, count) in got.items():
                    acc = sums.get(step)
                    if acc is None:
                        sums[step] = [total, count]
                    else:
                        acc[0] += total
                        acc[1] += count
            pool.close()
            pool.join()
    finally:
        _inherited.clear()
    return order_of(sums)


def _part_ranks(part: int) -> dict[str, list[int]]:
    from .spill import add_ranks

    sums: dict[str, list[int]] = {}
    add_ranks(_inherited["spill"].part_traces(part), sums)
    return sums


def journal(path: Path, first: str, spill: Any, builder: Any, workers: int, unit_order: dict[str, int]) -> Any:
    """Write the journal of every part's traces to ``path``'s compressed form
    (``attempts.jsonl.gz``), in part order, after its ``first`` line; return the analysis of
    it (:func:`.analysis.aggregate` of its records, as :func:`.run.write_journal` feeds it).

    Each part is made by a worker process: its units by ``builder``'s rules, their journal
    lines gzip-compressed (one gzip member a part: the file reads as one stream), and their
    analysis (``analysis.aggregate`` over the part's records, with the run's step and unit
    order); the parent writes the members and joins the analyses in part order
    (``Aggregate.absorb``), so that no record crosses between processes and the figures are
    those of one pass. What the workers tally (retries, duplicates, each step's most attempts,
    the time span, the checks judged and not run) is added to ``builder`` (and its checks) as
    one process would have. At most ``workers`` parts are in flight (memory)."""
    import gzip
    import multiprocessing
    from collections import deque

    from ..journal import LEVEL, gz_path, write_atomically
    from ..results import analysis
    from .units import StepStats

    parts = spill.filled()
    checks = builder.checks
    order = list(builder.order)
    agg = analysis.aggregate((), order, trials=1, isolate=False, order=unit_order)
    _inherited.update(spill=spill, order=order, checks=checks, units=unit_order)

    def fill(raw: Any) -> None:
        raw.write(gzip.compress(first.encode("utf-8"), compresslevel=LEVEL, mtime=0))
        with multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_sigint) as pool:
            pending: deque[Any] = deque()
            todo = iter(parts)
            for part in todo:
                pending.append(pool.apply_async(_part_units, (part,)))
                if len(pending) >= workers:
                    break
            while pending:
                got = pending.popleft().get()
                for part in todo:
                    pending.append(pool.apply_async(_part_units, (part,)))
                    break
                raw.write(got["text"])
                agg.absorb(got["analysis"])
                builder.retries += got["retries"]
                builder.duplicates += got["duplicates"]
                for step, most in got["steps"].items():
                    stat = builder.steps.get(step)
                    if stat is None:
                        builder.steps[step] = StepStats(most)
                    elif most > stat.max_attempts:
                        stat.max_attempts = most
                for name, value, better in (
                    ("first_start", got["first_start"], min),
                    ("last_end", got["last_end"], max),
                ):
                    if value is not None:
                        now = getattr(builder, name)
                        setattr(builder, name, value if now is None else better(now, value))
                if checks is not None:
                    checks.judged += got["judged"]
                    checks.skipped.update(got["skipped"])
            pool.close()
            pool.join()

    try:
        write_atomically(gz_path(path), fill)
    finally:
        _inherited.clear()
    return agg


def _part_units(part: int) -> dict[str, Any]:
    import gzip
    from collections import Counter

    from ..journal import LEVEL
    from ..results import analysis
    from .units import UnitBuilder

    got = _inherited
    checks = got["checks"]
    if checks is not None:  # (this worker's own copy: count this part's alone)
        checks.judged = 0
        checks.skipped = Counter()
    builder = UnitBuilder(got["order"], checks)
    unit = builder.unit
    texts: list[str] = []

    def records() -> Iterator[dict[str, Any]]:
        for rows in got["spill"].part_traces(part):
            attempts, done, text = unit(rows)
            texts.append(text)
            yield from attempts
            yield {"unit_done": done}

    agg = analysis.aggregate(records(), got["order"], trials=1, isolate=False, order=got["units"])
    return {
        "text": gzip.compress("".join(texts).encode("utf-8"), compresslevel=LEVEL, mtime=0),
        "analysis": agg,
        "retries": builder.retries,
        "duplicates": builder.duplicates,
        "steps": {step: stat.max_attempts for step, stat in builder.steps.items()},
        "first_start": builder.first_start,
        "last_end": builder.last_end,
        "judged": checks.judged if checks is not None else 0,
        "skipped": dict(checks.skipped) if checks is not None else {},
    }
