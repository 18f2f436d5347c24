"""Reports of a graph run show each node's reach share and visits per unit."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from reliability_cli.reports.html import render_html
from reliability_cli.reports.markdown import render_markdown
from reliability_cli.reports.terminal import TerminalReport
from reliability_cli.results.schema import from_dict

from .helpers import CASES, LOOP, LOOP_PIPELINE, project, run


def test_terminal_markdown_and_html_show_reach_and_visits(tmp_path: Path) -> None:
    path = project(tmp_path / "p", LOOP, LOOP_PIPELINE.format(module="g_loop_reports"), CASES, name="g_loop_reports")
    doc, _ = run(path, tmp_path / "out")
    results = from_dict(doc)
    console = Console(file=io.StringIO(), width=100)
    console.print(TerminalReport(results))
    text = console.file.getvalue()
    assert "Graph: reach and visits per node" in text
    graph = text.split("Graph: reach and visits per node")[1].split("Survival")[0]
    assert [line.split()[1:] for line in graph.splitlines() if line.startswith(("agent ", "left "))] == [
        ["4", "100.0%", "12", "3.00"],
        ["2", "50.0%", "2", "1.00"],
    ]
    md = render_markdown(results)
    assert "| reach | visits/unit |" in md and "| 100.0% | 3.00 |" in md and "| 50.0% | 1.00 |" in md
    html = render_html(results)
    assert "<th>reach</th><th>visits/unit</th>" in html and "<td class=n>3.00</td>" in html
