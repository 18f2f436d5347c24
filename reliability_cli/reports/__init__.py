"""Reports: each renders a results document and reads nothing else."""

from __future__ import annotations

from typing import Any

FORMATS = ("terminal", "json", "junit", "markdown", "html")


def render(results: dict[str, Any], fmt: str, *, show_failures: int | None = None, width: int = 100) -> str:
    """Render ``results`` as text in ``fmt``."""
    if fmt == "json":
        import json

        return json.dumps(results, indent=2, ensure_ascii=False) + "\n"
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

        return render_html(results)
    raise ValueError(f"unknown format {fmt!r}")
