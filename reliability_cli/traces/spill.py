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
from pathlib import Path
from typing import IO, Any, NamedTuple

from .records import TraceRecord

PARTS = 64
BUFFER = 512  # records per part buffered before a write
COLUMNS = (
    "trace",
    "start",
    "end",
    "id",
    "parent",
    "step",
    "error",
    "kind",
    "reason",
    "tokens_in",
    "tokens_out",
    "call_id",
    "output",
    "file",
    "line",
)


class Row(NamedTuple):
    """One stored record, as the unit builder reads it back (built in C from the stored tuple)."""

    trace: str
    start: int
    end: int
    id: str
    parent: str | None
    step: str
    error: bool
    kind: str | None
    reason: str | None
    tokens_in: int
    tokens_out: int
    call_id: str | None
    output: str | None
    file: int
    line: int | None


class Spill:
    """Temporary part files of records (deleted on close)."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="relcheck-traces-", dir=directory))
        self._files: list[IO[bytes] | None] = [None] * PARTS
        self._buffers: list[list[tuple[Any, ...]]] = [[] for _ in range(PARTS)]
        self.firsts: dict[str, int] = {}  # trace → its first start
        self.rows = 0

    def add(self, rec: TraceRecord, step: str, output: str | None, file: int) -> None:
        trace = rec.trace
        first = self.firsts.get(trace)
        if first is None or rec.start < first:
            self.firsts[trace] = rec.start
        part = hash(trace) % PARTS
        buf = self._buffers[part]
        buf.append(
            (
                trace,
                rec.start,
                rec.end,
                rec.id,
                rec.parent,
                step,
                rec.error,
                rec.error_kind,
                rec.reason,
                rec.tokens_in,
                rec.tokens_out,
                rec.call_id,
                output,
                file,
                rec.line,
            )
        )
        self.rows += 1
        if len(buf) >= BUFFER:
            self._write(part)

    def _write(self, part: int) -> None:
        fh = self._files[part]
        if fh is None:
            fh = self._files[part] = open(self._dir / f"part-{part:02d}", "wb")  # noqa: SIM115
        data = marshal.dumps(self._buffers[part])
        fh.write(len(data).to_bytes(4, "little") + data)  # (marshal.load on a file reads in tiny pieces)
        self._buffers[part] = []

    def _parts(self) -> Iterator[list[tuple[Any, ...]]]:
        for part in range(PARTS):
            if self._buffers[part]:
                self._write(part)
            fh = self._files[part]
            if fh is None:
                continue
            fh.flush()
            rows: list[tuple[Any, ...]] = []
            with open(fh.name, "rb") as rd:
                data = rd.read()
            at = 0
            while at < len(data):
                size = int.from_bytes(data[at : at + 4], "little")
                rows.extend(marshal.loads(data[at + 4 : at + 4 + size]))
                at += 4 + size
            del data
            yield rows

    def _grouped(self) -> Iterator[list[tuple[Any, ...]]]:
        """Each trace's records sorted by (start, file, line); traces of one part by first start."""
        firsts = self.firsts
        for rows in self._parts():
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
                group.sort(key=_start_key)
                yield group

    def step_order(self) -> list[str]:
        """Steps by their mean position in the traces that hold them (a trace's steps ordered
        by their first start), then by name."""
        sums: dict[str, list[int]] = {}
        for group in self._grouped():
            seen: dict[str, None] = {}
            for r in group:
                seen.setdefault(r[5])
            for rank, step in enumerate(seen):
                acc = sums.setdefault(step, [0, 0])
                acc[0] += rank
                acc[1] += 1
        return sorted(sums, key=lambda s: (sums[s][0] / sums[s][1], s))

    def traces(self) -> Iterator[list[Row]]:
        """Each trace's records, by start time."""
        make = Row._make
        for group in self._grouped():
            yield [make(r) for r in group]

    def order(self) -> dict[str, int]:
        """trace → its position among all traces, by first start (then id): the units' order."""
        firsts = self.firsts
        return {t: i for i, t in enumerate(sorted(firsts, key=lambda t: (firsts[t], t)))}

    def close(self) -> None:
        for fh in self._files:
            if fh is not None:
                fh.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _start_key(r: tuple[Any, ...]) -> tuple[Any, ...]:
    return r[1], r[13], r[14] or 0
