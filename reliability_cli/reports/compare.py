"""The views of ``relcheck compare``: paired (:class:`CompareView`) and ``--unpaired``.

Rich renderables like the terminal report, tested by rendering into a console of 80 and 200
columns: the table when it fits, else one wrapped line per row; detail sentences wrapped,
never cut; every fact in the text, colour only repeating it. A change is worded so that an
improvement reads as a gain, never as a negative drop.
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from ..results.compare import CompareRow, Comparison, change_text, p_text, row_detail
from ..results.unpaired import UnpairedComparison, UnpairedRow
from ..safetext import markdown_cell
from ..textfmt import pct, signed
from .views import Fitted, indented, paragraphs, safe, table


def _run(summary_id: str | None) -> str:
    return safe(summary_id or "?")


class CompareView:
    """``relcheck compare BASE CANDIDATE``: the paired rows, regressions and the verdict."""

    def __init__(self, comparison: Comparison) -> None:
        self.c = comparison

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from paragraphs(self._parts())

    def _parts(self) -> Iterator[RenderableType]:
        c = self.c
        yield Text(f"relcheck compare · {safe(c.candidate.pipeline or '?')}", style="bold")
        yield Text(
            f"baseline {_run(c.baseline.id)} ({c.baseline.units} units) · "
            f"candidate {_run(c.candidate.id)} ({c.candidate.units} units)"
        )
        if c.paired_on == "cases":
            paired = f"paired on {c.shared_units} shared units, compared per case (trials are never pooled)"
        else:
            paired = f"paired on {c.shared_units} shared units"
        yield Text(
            f"{paired} · baseline-only {c.baseline_only_units} · candidate-only {c.candidate_only_units}\n"
            f"max_drop {c.max_drop:g} · alpha {c.alpha:g}, family-wise over {len(c.rows)} rows (Holm)"
        )
        yield Text("")
        yield Fitted(self._table(), [self._line(r) for r in c.rows])
        yield Text("")
        unit = "cases" if c.paired_on == "cases" else "units"
        yield Text(
            f"delta: candidate − baseline, in points. bound: the one-sided upper bound of delta at the "
            f"row's Holm level. n: shared {unit} that reached the row. A row regresses when its drop "
            f"exceeds max_drop significantly.",
            style="dim",
        )
        regressed = [r for r in c.rows if r.regressed]
        if regressed:
            yield Text("")
            yield Text("Regressions", style="bold")
            for r in regressed:
                yield indented(Text(f"{safe(r.name)}: {row_detail(r, c.max_drop, c.alpha)}"))
        yield Text("")
        e2e = next((r for r in c.rows if r.step is None), None)
        if e2e is not None and e2e.drop is not None:
            yield Text(
                f"End to end: {change_text(e2e.drop)} ({pct(e2e.base_rate, 2)} → {pct(e2e.cand_rate, 2)} on "
                f"{e2e.n_shared} shared {unit})",
                style="bold",
            )
        if c.steps_not_compared:
            yield Text(f"Steps in only one run (not compared): {', '.join(map(safe, c.steps_not_compared))}")
        verdict = Text("Verdict: ", style="bold")
        if regressed:
            verdict.append("REGRESSION", style="bold red")
            verdict.append(f" (exit 1): {len(regressed)} of {len(c.rows)} rows")
        else:
            verdict.append("no significant regression", style="bold green")
            verdict.append(" (exit 0)")
        yield verdict

    def _table(self) -> Table:
        t = table(
            ("row", "left"),
            ("base", "right"),
            ("cand", "right"),
            ("delta", "right"),
            ("bound", "right"),
            ("p (Holm)", "right"),
            ("n", "right"),
            ("verdict", "left"),
        )
        for r in self.c.rows:
            cells = _cells(r)
            t.add_row(
                Text(safe(r.name)),
                *(Text(v) for v in cells[:-1]),
                Text(cells[-1], style=_style(r)),
            )
        return t

    def _line(self, r: CompareRow) -> Text:
        base, cand, delta, bound, p, n, verdict = _cells(r)
        if r.drop is None:
            return Text(f"{safe(r.name)}: no shared unit reached it in both runs (n 0): n/a")
        line = Text(f"{safe(r.name)}: {base} → {cand}, delta {delta} pts (bound {bound}), p={p}, n={n}: ")
        line.append(verdict, style=_style(r))
        return line


def _cells(r: CompareRow) -> tuple[str, str, str, str, str, str, str]:
    if r.drop is None or r.delta is None:
        return ("—", "—", "—", "—", "—", str(r.n_shared), "n/a")
    bound = "—" if r.ci is None else f"≤ {signed(r.ci.high * 100)}"
    return (
        pct(r.base_rate, 2),
        pct(r.cand_rate, 2),
        signed(r.delta * 100),
        bound,
        p_text(r.p_adjusted),
        str(r.n_shared),
        "REGRESSED" if r.regressed else "ok",
    )


def _style(r: CompareRow) -> str:
    return "bold red" if r.regressed else "green" if r.drop is not None else "dim"


# ---------------------------------------------------------------------- --unpaired

_ESTIMATE = {
    "over": "the baseline overestimates the candidate",
    "under": "the baseline underestimates the candidate",
    "agrees": "no significant difference",
}


def describe_unpaired_row(r: UnpairedRow, max_drop: float) -> str:
    """One sentence for a row: the two rates with their counts, the difference, its interval, the verdict."""
    if r.p_value is None or r.ci is None or r.delta is None or r.estimate is None:
        return f"{safe(r.name)}: not reached in one of the runs"
    tail = f"; a drop beyond max_drop {max_drop:g}: a regression" if r.regressed else ""
    return (
        f"{safe(r.name)}: {r.base_passed}/{r.base_n} = {pct(r.base_rate, 2)} vs {r.cand_passed}/{r.cand_n} = "
        f"{pct(r.cand_rate, 2)}; difference {signed(r.delta * 100, 1)} pts ({_span(r)}); "
        f"Holm-adjusted p={p_text(r.p_adjusted)}: {_ESTIMATE[r.estimate]}{tail}"
    )


def _span(r: UnpairedRow) -> str:
    return "—" if r.ci is None else f"{signed(r.ci.low * 100, 1)}…{signed(r.ci.high * 100, 1)}"


class UnpairedView:
    """``relcheck compare --unpaired``: per shared step and end to end, independent rates."""

    def __init__(self, comparison: UnpairedComparison) -> None:
        self.c = comparison

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from paragraphs(self._parts())

    def _parts(self) -> Iterator[RenderableType]:
        c = self.c
        b, k = c.baseline, c.candidate
        yield Text(f"relcheck compare --unpaired · {safe(k.pipeline or b.pipeline or '?')}", style="bold")
        yield Text(
            f"baseline {safe(b.source)} {_run(b.id)} ({b.units} units) · "
            f"candidate {safe(k.source)} {_run(k.id)} ({k.units} units)\n"
            f"independent samples · alpha {c.alpha:g}, family-wise over {len(c.rows)} rows (Holm) · "
            f"max_drop {c.max_drop:g}"
        )
        yield Text("")
        t = table(
            ("row", "left"),
            ("base", "right"),
            ("cand", "right"),
            ("diff", "right"),
            (f"{pct(1 - c.alpha, 0)} CI", "right"),
            ("p (Holm)", "right"),
            ("baseline", "left"),
        )
        lines = []
        for r in c.rows:
            cells = _unpaired_cells(r)
            t.add_row(Text(safe(r.name)), *(Text(v) for v in cells[:-1]), Text(cells[-1], style=_u_style(r)))
            lines.append(
                Text(
                    f"{safe(r.name)}: {cells[0]} → {cells[1]}, diff {cells[2]} pts (CI {cells[3]}), "
                    f"p={cells[4]}: {cells[5]}"
                )
            )
        yield Fitted(t, lines)
        yield Text("")
        yield Text(
            "diff: candidate − baseline, in points, with Newcombe's hybrid score interval. baseline: "
            "over / under when the baseline overestimates / underestimates the candidate significantly "
            "(two-sided score test, Holm); agrees otherwise.",
            style="dim",
        )
        significant = [r for r in c.rows if r.significant]
        if significant:
            yield Text("")
            yield Text("Significant differences", style="bold")
            for r in significant:
                yield indented(Text(describe_unpaired_row(r, c.max_drop), style="bold red" if r.regressed else ""))
        yield Text("")
        if c.steps_not_compared:
            yield Text(f"Steps in only one run (not compared): {', '.join(map(safe, c.steps_not_compared))}")
        verdict = Text("Verdict: ", style="bold")
        if c.regressed:
            verdict.append("the candidate is significantly lower", style="bold red")
            verdict.append(f" by more than max_drop {c.max_drop:g} (exit 1)")
        else:
            verdict.append("no significant drop", style="bold green")
            verdict.append(" (exit 0)")
        yield verdict


def _unpaired_cells(r: UnpairedRow) -> tuple[str, str, str, str, str, str]:
    if r.p_value is None or r.delta is None:
        return ("—", "—", "—", "—", "—", "n/a")
    return (
        pct(r.base_rate, 2),
        pct(r.cand_rate, 2),
        signed(r.delta * 100, 1),
        _span(r),
        p_text(r.p_adjusted),
        r.estimate or "n/a",
    )


def _u_style(r: UnpairedRow) -> str:
    return "bold red" if r.regressed else "yellow" if r.significant else ""


def render_unpaired_markdown(c: UnpairedComparison) -> str:
    """``compare --unpaired --markdown``: the rows as a Markdown table."""
    out = [
        f"## relcheck compare --unpaired: {markdown_cell(c.baseline.source)} vs {markdown_cell(c.candidate.source)}",
        "",
        "| row | baseline | candidate | difference | CI | p (Holm) | verdict |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for r in c.rows:
        if r.p_value is None or r.ci is None or r.delta is None:
            out.append(f"| {markdown_cell(r.name)} | — | — | — | — | — | n/a |")
            continue
        out.append(
            f"| {markdown_cell(r.name)} | {pct(r.base_rate, 2)} ({r.base_n}) | {pct(r.cand_rate, 2)} ({r.cand_n}) | "
            f"{signed(r.delta * 100, 1)} pts | {_span(r)} | {p_text(r.p_adjusted)} | {r.estimate} |"
        )
    return "\n".join(out) + "\n"


def _code(name: str) -> str:
    """A row name as a Markdown code span (plain, escaped text when it holds a backtick)."""
    return markdown_cell(name) if "`" in name else f"`{markdown_cell(name, html_escape=False)}`"


def render_compare_markdown(c: Comparison) -> str:
    """``compare --markdown``: the paired rows as a Markdown table, for a PR comment or job summary."""
    icon = "❌" if c.regressed else "✅"
    out = [
        f"## {icon} relcheck compare: {'significant regression' if c.regressed else 'no significant regression'}",
        "",
        f"Paired on {c.shared_units} shared units ({c.paired_on}); max_drop {c.max_drop:g}, "
        f"alpha {c.alpha:g} (Holm over {len(c.rows)} rows).",
        "",
        "| row | baseline | candidate | delta | bound of delta | p (adj.) | n | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in c.rows:
        base, cand, delta, bound, p, n, _ = _cells(r)
        if r.drop is None:
            out.append(f"| {_code(r.name)} | — | — | — | — | — | {n} | n/a |")
            continue
        verdict = "❌ regressed" if r.regressed else "ok"
        out.append(f"| {_code(r.name)} | {base} | {cand} | {delta} pts | {bound} | {p} | {n} | {verdict} |")
    if c.rows and c.rows[0].drop is not None:
        out += ["", f"End to end: {change_text(c.rows[0].drop)}."]
    return "\n".join(out) + "\n\n"
