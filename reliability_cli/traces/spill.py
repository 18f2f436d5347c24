"""Group records by trace in bounded memory: hash-partitioned spill files, sorted per part.

The OTel file exporter writes spans as they end, batch by batch, so a trace's spans are
scattered through a file (and across files). Every record that stands for a step is
appended, as a compact tuple, to one of :data:`PARTS` temporary files chosen by its trace
id; a part is then read back alone, grouped by trace and sorted by start time. Memory holds
the write buffers, one part, and one integer per trace (its first start, which orders the
units as the traces began), whatever the input's size. A ``marshal``-encoded part costs a
few microseconds a record each way; SQLite's external sort, tried first, cost about 18.
"""

from __future__ import annotations

import marshal
import shutil
import tempfile
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, NamedTuple

from .records import SPILLED, TraceRecord

PARTS = 64
BUFFER = 512  # records per part buffered before a write


class Row(NamedTuple):
    """One stored record: the first :data:`~.records.SPILLED` fields of its
    :class:`~.records.TraceRecord`, then its step, its output as kept, and its file's index.
    The unit builder reads rows as plain tuples, by these positions."""

    trace: str
    start: int
    end: int
    id: str
    parent: str | None
    error: bool
    kind: str | None
    reason: str | None
    tokens_in: int
    tokens_out: int
    call_id: str | None
    line: int | None
    step: str
    output: str | None
    file: int


COLUMNS = Row._fields
STEP = COLUMNS.index("step")


class Spill:
    """Temporary part files of records (deleted on close).

    The parts are written in *segments*: this process's own files, and those that reading
    workers wrote (:meth:`adopt`, see :mod:`.parallel`), kept in reading order — a part is
    read back as its files, segment by segment, so its rows are in reading order as if one
    process had written them all."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="relcheck-traces-", dir=directory))
        self._files: list[IO[bytes] | None] = [None] * PARTS
        self._buffers: list[list[tuple[Any, ...]]] = [[] for _ in range(PARTS)]
        self._segments: list[list[Path | None]] = []  # sealed part files, in reading order
        self.firsts: dict[str, int] = {}  # trace → its first start
        self._written = 0

    @property
    def directory(self) -> Path:
        return self._dir

    def add(self, rec: TraceRecord, step: str, output: str | None, file: int) -> None:
        trace = rec[0]
        start = rec[1]
        firsts = self.firsts
        first = firsts.get(trace, start)
        firsts[trace] = start if start < first else first
        buf = self._buffers[hash(trace) % PARTS]
        buf.append(rec[:SPILLED] + (step, output, file))
        if len(buf) >= BUFFER:
            self._write(hash(trace) % PARTS)

    @property
    def rows(self) -> int:
        """Records stored so far."""
        return self._written + sum(len(b) for b in self._buffers)

    def _write(self, part: int) -> None:
        fh = self._files[part]
        if fh is None:
            name = f"part-{len(self._segments)}-{part:02d}"
            fh = self._files[part] = open(self._dir / name, "wb")  # noqa: SIM115
        data = marshal.dumps(self._buffers[part])
        fh.write(len(data).to_bytes(4, "little") + data)  # (marshal.load on a file reads in tiny pieces)
        self._written += len(self._buffers[part])
        self._buffers[part] = []

    def seal(self) -> list[Path | None]:
        """Write out and close this process's part files (a segment); the next records start
        new ones. Returns the segment: each part's file, or ``None`` where it holds no row."""
        for part in range(PARTS):
            if self._buffers[part]:
                self._write(part)
        segment = [None if fh is None else Path(fh.name) for fh in self._files]
        for fh in self._files:
            if fh is not None:
                fh.close()
        self._files = [None] * PARTS
        if any(f is not None for f in segment):
            self._segments.append(segment)
        return segment

    def adopt(self, segment: list[Path | None], rows: int, firsts: dict[str, int]) -> None:
        """Append a segment another process wrote (after everything stored so far), with its
        row count and its traces' first starts."""
        self.seal()
        if any(f is not None for f in segment):
            self._segments.append(segment)
        self._written += rows
        mine = self.firsts
        for trace, start in firsts.items():
            first = mine.get(trace)
            if first is None or start < first:
                mine[trace] = start

    def _read_part(self, part: int) -> list[tuple[Any, ...]]:
        """One part's rows, in reading order (its files segment by segment)."""
        rows: list[tuple[Any, ...]] = []
        for segment in self._segments:
            path = segment[part]
            if path is None:
                continue
            with open(path, "rb") as rd:
                data = rd.read()
            at = 0
            while at < len(data):
                size = int.from_bytes(data[at : at + 4], "little")
                rows.extend(marshal.loads(data[at + 4 : at + 4 + size]))
                at += 4 + size
            del data
        return rows

    def filled(self) -> list[int]:
        """The parts that hold rows (after :meth:`seal`: every row written out)."""
        self.seal()
        return [part for part in range(PARTS) if any(seg[part] is not None for seg in self._segments)]

    def part_traces(self, part: int) -> Iterator[list[tuple[Any, ...]]]:
        """The traces of one part (as :meth:`traces` gives them); after :meth:`seal`."""
        return self._group(self._read_part(part))

    def _group(self, rows: list[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
        """Each trace's records sorted by (start, file, line); traces of one part by first start.

        A part's rows are in reading order — by file, then line — so a stable sort by start
        alone gives that order."""
        firsts = self.firsts
        by_start = itemgetter(1)
        by_trace: dict[str, list[tuple[Any, ...]]] = {}
        for r in rows:
            group = by_trace.get(r[0])
            if group is None:
                by_trace[r[0]] = [r]
            else:
                group.append(r)
        del rows
        for trace in sorted(by_trace, key=lambda t: (firsts[t], t)):
            group = by_trace.pop(trace)
            group.sort(key=by_start)
            yield group

    def _grouped(self) -> Iterator[list[tuple[Any, ...]]]:
        for part in self.filled():
            yield from self._group(self._read_part(part))

    def step_order(self) -> list[str]:
        """Steps by their mean position in the traces that hold them (a trace's steps ordered
        by their first start), then by name."""
        sums: dict[str, list[int]] = {}
        add_ranks(self._grouped(), sums)
        return order_of(sums)

    def traces(self) -> Iterator[list[tuple[Any, ...]]]:
        """Each trace's records (plain tuples laid out as :class:`Row`), by start time."""
        return self._grouped()

    def order(self) -> dict[str, int]:
        """trace → its position among all traces, by first start (then id): the units' order."""
        firsts = self.firsts
        return {t: i for i, t in enumerate(sorted(firsts, key=lambda t: (firsts[t], t)))}

    def close(self) -> None:
        for fh in self._files:
            if fh is not None:
                fh.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def add_ranks(traces: Iterator[list[tuple[Any, ...]]], sums: dict[str, list[int]]) -> None:
    """Add each step's positions in ``traces`` (by first start) and its count to ``sums``."""
    for group in traces:
        for rank, step in enumerate(dict.fromkeys([r[STEP] for r in group])):
            acc = sums.get(step)
            if acc is None:
                sums[step] = [rank, 1]
            else:
                acc[0] += rank
                acc[1] += 1


def order_of(sums: dict[str, list[int]]) -> list[str]:
    """The steps by their mean position, then by name (:meth:`Spill.step_order`)."""
    return sorted(sums, key=lambda s: (sums[s][0] / sums[s][1], s))
