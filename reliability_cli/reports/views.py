"""Small pieces shared by the width-aware views of ``compare`` and ``plan``.

A view is a rich renderable: a table when it fits the console at its natural width (no cell
wrapped or cut), otherwise one wrapped line per row, so that nothing is ever cut and no word
is broken at 80 columns or less. Every cell is :class:`~rich.text.Text` (never markup): step
ids and pipeline names come from files and are shown, not interpreted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from io import StringIO

from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from ..safetext import terminal

#: a width no table of these views reaches: its natural (unwrapped) width is measured in it
_UNBOUNDED = 10_000


def safe(text: object) -> str:
    """A name from a file as one line of text: control characters shown, not obeyed."""
    return terminal(str(text), newlines=False)


def table(*columns: tuple[str, str]) -> Table:
    """A table in the style of the terminal report; ``columns`` are (header, justify)."""
    # one space of padding beside the box's own blank column separator: two between columns
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1, 0, 0))
    for header, justify in columns:
        t.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    return t


class Fitted:
    """``table`` when it fits the width at its natural size, else ``lines`` (one per row), wrapped."""

    def __init__(self, table: Table, lines: Sequence[Text]) -> None:
        self.table = table
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        natural = Measurement.get(console, options.update_width(_UNBOUNDED), self.table).maximum
        if natural <= options.max_width:  # the table, its cells' padding cut off the end of each line
            for segments in console.render_lines(self.table, options, pad=False):
                while segments and not segments[-1].text.rstrip():
                    segments.pop()
                if segments:
                    last = segments[-1]
                    segments[-1] = Segment(last.text.rstrip(), last.style, last.control)
                yield from segments
                yield Segment.line()
            return
        for row in self.lines:
            yield indented(row)


class Indented:
    """A paragraph wrapped at words to the console's width, every line indented by ``left``
    (and no trailing spaces, unlike :class:`~rich.padding.Padding`)."""

    def __init__(self, text: Text, left: int = 2) -> None:
        self.text = text
        self.left = left

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(1, options.max_width - self.left)
        for line in self.text.wrap(console, width):
            out = Text(" " * self.left)
            out.append_text(line)
            out.rstrip()
            yield out


def paragraphs(parts: Iterable[RenderableType]) -> RenderResult:
    """``parts`` with every :class:`~rich.text.Text` wrapped at words, without trailing spaces."""
    for part in parts:
        yield Indented(part, 0) if isinstance(part, Text) else part


def indented(text: Text, left: int = 2) -> Indented:
    """``text`` wrapped at the console's width, every line indented by ``left``."""
    return Indented(text, left)


def plain_text(renderables: Iterable[RenderableType], width: int, color: bool = False) -> str:
    """``renderables`` as text of at most ``width`` columns (no colour unless asked), for tests and files."""
    buf = StringIO()
    console = Console(
        file=buf, width=width, color_system=None, force_terminal=False, no_color=not color, highlight=False, emoji=False
    )
    for r in renderables:
        console.print(r)
    return buf.getvalue()
