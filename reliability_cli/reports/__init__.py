"""Reports: each renders a results document and reads nothing else (the HTML viewer also reads
the run directory's journal and ``requests.jsonl``, when it is there)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..results.schema import Results

FORMATS = ("terminal", "json", "junit", "markdown", "html")


def render(
    results: Results, fmt: str, *, show_failures: int | None = None, width: int = 100, run_dir: str | None = None
) -> str:
    """Render ``results`` as text in ``fmt``."""
    if fmt == "json":
        import io

        from ..results.schema import dump
        from ..safetext import JSON_ERRORS

        buffer = io.StringIO()
        dump(results, buffer)
        # a lone surrogate (from a case or a model) becomes its JSON escape: valid UTF-8 anywhere
        return buffer.getvalue().encode("utf-8", JSON_ERRORS).decode("utf-8")
    data = results.to_dict()
    if fmt == "terminal":
        from .terminal import render_text

        return render_text(data, show_failures=5 if show_failures is None else show_failures, width=width)
    if fmt == "junit":
        from .junit import render_junit

        return render_junit(data)
    if fmt == "markdown":
        from .markdown import render_markdown

        return render_markdown(data, show_failures=show_failures)
    if fmt == "html":
        from .html import render_html

        return render_html(data, run_dir=run_dir)
    raise ValueError(f"unknown format {fmt!r}")
