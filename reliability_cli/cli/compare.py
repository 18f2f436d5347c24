"""``relcheck compare BASE CANDIDATE``: paired per-step and end-to-end deltas with significance."""

from __future__ import annotations

from typing import Any, Optional

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

    from ..errors import ResultsError
    from ..outputs import refuse_overwrites, results_file
    from ..reports.markdown import render_compare_markdown
    from ..results.compare import compare
    from ..results.schema import load as load_results

    refuse_overwrites(
        {"--markdown": markdown, "--json": json_out},
        [
            ("the baseline results", results_file(base)),
            ("the candidate results", results_file(candidate)),
            ("the baseline run directory", base),
            ("the candidate run directory", candidate),
        ],
    )
    if unpaired:
        _unpaired(base, candidate, max_drop, alpha, json_out, markdown)
    doc = compare(load_results(base), load_results(candidate), max_drop, alpha)
    if doc["shared_units"] == 0:
        raise ResultsError(
            f"{candidate}: shares no unit (case, trial) with {base}: nothing to compare",
            hint="compare runs of the same eval set",
        )
    if markdown:
        write_output(markdown, render_compare_markdown(doc))
    if json_out:
        write_output(json_out, json.dumps(doc, indent=2) + "\n")
    if json_out != "-":
        _print(doc)
    raise typer.Exit(1 if doc["regressed"] else 0)


def _print(doc: dict[str, Any]) -> None:
    from ..results.compare import row_detail

    b, c = doc["baseline"], doc["candidate"]
    typer.echo(
        f"relcheck compare · {c.get('pipeline') or '?'} · paired on {doc['shared_units']} shared units"
        f" ({doc['paired_on']}); baseline-only {doc['baseline_only_units']}, "
        f"candidate-only {doc['candidate_only_units']}"
    )
    typer.echo(
        f"  baseline {b.get('id') or '?'} · candidate {c.get('id') or '?'} · "
        f"max_drop {doc['max_drop']:g} · alpha {doc['alpha']:g} (Holm over {len(doc['rows'])} rows)"
    )
    typer.echo("")
    typer.echo(f"  {'row':<22} {'base':>7} {'cand':>7} {'delta':>8} {'CI of delta':>17} {'p':>8} {'n':>6}  verdict")
    for r in doc["rows"]:
        if r["n_shared"] == 0:
            typer.echo(f"  {r['name'][:22]:<22} {'—':>7} {'—':>7} {'—':>8} {'—':>17} {'—':>8} {0:>6}  n/a")
            continue
        ci = r["ci"]
        verdict = "REGRESSED" if r["regressed"] else "ok"
        typer.echo(
            f"  {r['name'][:22]:<22} {r['base_rate']:>7.2%} {r['cand_rate']:>7.2%} "
            f"{r['delta'] * 100:>+7.2f}p {ci['low'] * 100:>+7.2f}…{ci['high'] * 100:+.2f}p "
            f"{_p(r['p_adjusted']):>8} {r['n_shared']:>6}  {verdict}"
        )
    regressed = [r for r in doc["rows"] if r["regressed"]]
    typer.echo("")
    for r in regressed:
        typer.echo(f"  {r['name']}: {row_detail(r, doc['max_drop'], doc['alpha'])}")
    if doc["steps_not_compared"]:
        typer.echo(f"  steps in only one run (not compared): {', '.join(doc['steps_not_compared'])}")
    typer.echo(f"Verdict: {'REGRESSION (exit 1)' if regressed else 'no significant regression (exit 0)'}")


def _unpaired(
    base: str, candidate: str, max_drop: float, alpha: float, json_out: Optional[str], markdown: Optional[str]
) -> None:
    import json

    from ..results.schema import load
    from ..results.unpaired import compare_unpaired, describe_row, render_markdown

    doc = compare_unpaired(load(base).to_dict(), load(candidate).to_dict(), max_drop, alpha)
    if markdown:
        write_output(markdown, render_markdown(doc))
    if json_out:
        write_output(json_out, json.dumps(doc, indent=2) + "\n")
    if json_out != "-":
        b, c = doc["baseline"], doc["candidate"]
        typer.echo(
            f"relcheck compare --unpaired · baseline {b['source']} {b.get('id') or '?'} ({b['units']} units) · "
            f"candidate {c['source']} {c.get('id') or '?'} ({c['units']} units) · alpha {alpha:g} "
            f"(Holm over {len(doc['rows'])} rows)"
        )
        for r in doc["rows"]:
            typer.echo(f"  {describe_row(r)}")
        if doc["steps_not_compared"]:
            typer.echo(f"  steps in only one run (not compared): {', '.join(doc['steps_not_compared'])}")
        typer.echo(
            "Verdict: "
            + ("the candidate is significantly lower (exit 1)" if doc["regressed"] else "no significant drop (exit 0)")
        )
    raise typer.Exit(1 if doc["regressed"] else 0)


def _p(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"
