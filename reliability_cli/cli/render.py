"""Print the terminal report and write the report files a command asked for."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..textfmt import pct
from .common import write_output

if TYPE_CHECKING:
    from ..results.schema import Results

_CHUNK = 1 << 20


def print_terminal(results: Results, show_failures: int) -> None:
    """Print the terminal report of ``results`` on stdout (colour when stdout is a terminal).

    Args:
        results: The run's typed results.
        show_failures: Failing units listed per step.
    """
    from rich.console import Console

    from ..reports.terminal import TerminalReport

    console = Console(highlight=False, emoji=False)
    console.print(TerminalReport(results, show_failures))


def emit_reports(
    results: Results,
    *,
    json_out: str | None = None,
    junit: str | None = None,
    markdown: str | None = None,
    html: str | None = None,
    show_failures: int = 5,
    quiet: bool = False,
    json_source: str | os.PathLike[str] | None = None,
) -> None:
    """Terminal report on stdout (unless ``--json -`` owns stdout), files, CI annotations.

    Args:
        results: The run's typed results.
        json_out: Write ``results.json``'s document here (``-``: stdout, and no terminal report).
        junit: Write the JUnit XML here.
        markdown: Write the Markdown summary here.
        html: Write the HTML report here.
        show_failures: Failing units listed per step (terminal, Markdown).
        quiet: One line instead of the terminal report.
        json_source: The ``results.json`` the run has just written for ``results``: ``--json``
            copies its bytes rather than serialising the results a second time.
    """
    from ..reports import render

    if json_out:
        write_json(results, json_out, json_source)
    if junit:
        write_output(junit, render(results, "junit"))
    if markdown:
        write_output(markdown, render(results, "markdown", show_failures=show_failures))
    if html:
        write_output(html, render(results, "html"))
    _github(results, show_failures)
    if json_out == "-":
        return
    if quiet:
        sys.stdout.write(
            f"relcheck: {results.verdict} (exit {results.exit_code}); "
            f"e2e {pct(results.end_to_end.rate)}; {_which_run(results)}\n"
        )
        return
    print_terminal(results, show_failures)


def write_json(results: Results, path: str, source: str | os.PathLike[str] | None = None) -> None:
    """Write the JSON document of ``results`` to ``path`` (``-`` for stdout) without holding it
    in memory: a copy of ``source`` (the run's ``results.json``, secrets already masked) when
    given, else streamed from the results. A file is written atomically (a temporary file in
    its directory, then renamed), so a reader never sees half of it."""
    if path == "-":
        sys.stdout.flush()
        out = getattr(sys.stdout, "buffer", None)
        if source is not None and out is not None:
            with open(source, "rb") as src:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
            out.flush()
        else:
            from ..results.schema import dump_masked

            dump_masked(results, _JsonText(sys.stdout))  # type: ignore[arg-type]
        sys.stdout.flush()
        return
    target = Path(path)
    try:
        if target.parent.exists() and not target.parent.is_dir():  # mkdir would say "File exists"
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or (target.exists() and not target.is_file()):
            # a device, a FIFO or a symlink is written through: renaming over it would replace
            # it (as root, /dev/full by a regular file)
            _write_through(results, target, source)
            return
        if source is None:
            from ..results import schema

            schema.write(results, target)
            return
        tmp = _temporary(target)
        try:
            with open(source, "rb") as src, open(tmp, "xb") as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None


def _write_through(results: Results, target: Path, source: str | os.PathLike[str] | None) -> None:
    """Stream the document into ``target`` as it is (no temporary file, no rename)."""
    if source is not None:
        with open(source, "rb") as src, open(target, "wb") as dst:
            while chunk := src.read(_CHUNK):
                dst.write(chunk)
        return
    from ..results.schema import dump_masked
    from ..safetext import JSON_ERRORS

    with open(target, "w", encoding="utf-8", errors=JSON_ERRORS, newline="\n") as fh:
        dump_masked(results, fh)


def _temporary(target: Path) -> Path:
    """A new file name next to ``target``, taken by no file."""
    import secrets

    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        if not tmp.exists():
            return tmp


class _JsonText:
    """stdout for a streamed JSON document: a lone surrogate is written as its JSON escape."""

    def __init__(self, fh: object) -> None:
        from ..safetext import JSON_ERRORS

        self.fh = fh
        self.errors = JSON_ERRORS

    def write(self, text: str) -> None:
        self.fh.write(text.encode("utf-8", self.errors).decode("utf-8"))  # type: ignore[attr-defined]


def _github(results: Results, show_failures: int) -> None:
    """Markdown to $GITHUB_STEP_SUMMARY; ``::error::`` for failed gates under GitHub Actions."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            from ..reports import render
            from ..safetext import TEXT_ERRORS

            with open(summary, "a", encoding="utf-8", errors=TEXT_ERRORS) as fh:
                fh.write(render(results, "markdown", show_failures=show_failures))
        except (OSError, ImportError):
            pass
    if os.environ.get("GITHUB_ACTIONS") == "true":
        from ..safetext import workflow_data, workflow_property

        for gate in results.gates:
            if not gate.passed:  # escaped by GitHub's rules: a value cannot start a command of its own
                title = workflow_property(f"relcheck gate {gate.name} failed")
                sys.stdout.write(f"::error title={title}::{workflow_data(str(gate.detail))}\n")


def _which_run(results: Results) -> str:
    """``run DIR`` (or its id); a merged run has neither: ``run merged from N shards``."""
    run = results.run
    if run.merged_from:
        return f"run merged from {len(run.merged_from)} shards"
    return f"run {run.dir or run.id}"
