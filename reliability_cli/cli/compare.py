"""``relcheck compare BASE CANDIDATE``: paired per-step and end-to-end deltas with significance."""

from __future__ import annotations

from typing import Optional

import typer

from .common import handle_errors, write_output


@handle_errors
def compare_command(
    base: str = typer.Argument(..., help="Baseline results.json (or its run directory).", metavar="BASE"),
    candidate: str = typer.Argument(..., help="Candidate results.json (or its run directory).", metavar="CANDIDATE"),
    max_drop: float = typer.Option(
        0.0,
        "--max-drop",
        min=0,
        max=1,
        help="Tolerated drop in rate (absolute) before a row can regress.",
        metavar="DROP",
    ),
    alpha: float = typer.Option(
        0.05,
        "--alpha",
        min=0,
        max=1,
        help="Significance level (family-wise over the rows, Holm).",
        metavar="ALPHA",
    ),
    json_out: Optional[str] = typer.Option(
        None, "--json", help="Write the comparison as JSON (- for stdout).", metavar="FILE"
    ),
    markdown: Optional[str] = typer.Option(
        None, "--markdown", help="Write the comparison as Markdown.", metavar="FILE"
    ),
    unpaired: bool = typer.Option(
        False,
        "--unpaired",
        help="Runs that share steps but not units (eval vs traces): independent rates, "
        "Newcombe interval, score test, Holm across steps.",
    ),
) -> None:
    """Compare CANDIDATE with BASE on the units both ran, per step and end to end.

    One trial per case: exact one-sided McNemar on the discordant units. K trials: the case
    is the sample (per-case pass-share differences). A row regresses when its drop exceeds
    --max-drop and is significant at --alpha. Exit 0: no regression. 1: a significant
    regression. 2: bad input (unreadable file, or no shared units).

    --unpaired (e.g. EVAL_RESULTS TRACES_RESULTS): per shared step and end to end, both
    rates, the difference with Newcombe's hybrid score interval, and which rows BASE over-
    or underestimates significantly (two-sided score test, Holm). Exit 1 when CANDIDATE
    is significantly lower by more than --max-drop somewhere.
    """
    import json

    from rich.console import Console

    from ..errors import ResultsError
    from ..outputs import refuse_overwrites, results_file
    from ..reports.compare import CompareView, UnpairedView, render_compare_markdown, render_unpaired_markdown
    from ..results.compare import compare
    from ..results.schema import load as load_results
    from ..results.unpaired import compare_unpaired

    refuse_overwrites(
        {"--markdown": markdown, "--json": json_out},
        [
            ("the baseline results", results_file(base)),
            ("the candidate results", results_file(candidate)),
            ("the baseline run directory", base),
            ("the candidate run directory", candidate),
        ],
    )
    view: CompareView | UnpairedView
    if unpaired:
        loose = compare_unpaired(load_results(base), load_results(candidate), max_drop, alpha)
        document, view, regressed = loose.to_dict(), UnpairedView(loose), loose.regressed
        md = render_unpaired_markdown(loose) if markdown else ""
    else:
        paired = compare(load_results(base), load_results(candidate), max_drop, alpha)
        if paired.shared_units == 0:
            raise ResultsError(
                f"{candidate}: shares no unit (case, trial) with {base}: nothing to compare",
                hint="compare runs of the same eval set",
            )
        document, view, regressed = paired.to_dict(), CompareView(paired), paired.regressed
        md = render_compare_markdown(paired) if markdown else ""
    if markdown:
        write_output(markdown, md)
    if json_out:
        write_output(json_out, json.dumps(document, indent=2) + "\n")
    if json_out != "-":
        Console(highlight=False, emoji=False).print(view)
    raise typer.Exit(1 if regressed else 0)
