"""Reports: each renders a typed :class:`~reliability_cli.results.schema.Results` and reads
nothing else (the HTML viewer also reads the run directory's journal and ``requests.jsonl``,
when it is there). Only the ``json`` format turns the results into JSON; the others read the
typed rows (``StepRow``, ``EndToEnd``, ``GateRow``, ``WhatIfRow``, ``UnitRecord``) and format
every rate through :mod:`reliability_cli.textfmt`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..results.schema import Results

FORMATS = ("terminal", "json", "junit", "markdown", "html")


def render(
    results: Results, fmt: str, *, show_failures: int | None = None, width: int = 100, run_dir: str | None = None
) -> str:
    """Render ``results`` as text in ``fmt``.

    Args:
        results: The run's typed results.
        fmt: One of :data:`FORMATS`.
        show_failures: Failing units listed per step (terminal, markdown); None: the format's default (5).
        width: The terminal report's width in columns.
        run_dir: Where the HTML viewer reads the journal (default: the results' ``run.dir``).

    Returns:
        The rendered document.

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`.
    """
    if fmt == "json":
        import io

        from ..results.schema import dump
        from ..safetext import JSON_ERRORS

        buffer = io.StringIO()
        dump(results, buffer)
        # a lone surrogate (from a case or a model) becomes its JSON escape: valid UTF-8 anywhere
        return buffer.getvalue().encode("utf-8", JSON_ERRORS).decode("utf-8")
    if fmt == "terminal":
        from .terminal import render_text

        return render_text(results, show_failures=5 if show_failures is None else show_failures, width=width)
    if fmt == "junit":
        from .junit import render_junit

        return render_junit(results)
    if fmt == "markdown":
        from .markdown import render_markdown

        return render_markdown(results, show_failures=show_failures)
    if fmt == "html":
        from .html import render_html

        return render_html(results, run_dir=run_dir)
    raise ValueError(f"unknown format {fmt!r}")
