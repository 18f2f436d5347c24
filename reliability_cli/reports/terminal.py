"""The terminal report: per-step table, survival waterfall, end to end, gates, failures.

A rich renderable (:class:`TerminalReport`), so it can be printed to any console and tested
by rendering into ``Console(file=StringIO(), width=80)``. It must read well at 80 columns
and in a CI log without colour: every fact is in the text, colour only repeats it.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import StringIO
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..safetext import terminal
from ..textfmt import gap_text, pct
from .figures import interval, ms
from .sources import traces_line

if TYPE_CHECKING:
    from ..results.schema import EndpointRow, Results, RunInfo, Stop


def _table(title: str, columns: Sequence[str], *, wrap: bool = False) -> Table:
    """A report table: the step column first (left, cut at 18 characters), figures right-aligned
    (``wrap``: a figure may wrap at a narrow width instead of widening the table)."""
    table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False, show_edge=False)
    first, *figures = columns
    table.add_column(first, no_wrap=True, overflow="ellipsis", max_width=18)
    for name in figures:
        table.add_column(name, justify="right", no_wrap=not wrap)
    return table


class TerminalReport:
    """The report of one run, a rich renderable.

    Args:
        results: The run's typed results.
        show_failures: How many failing units to list per step (0: no failures section).
    """

    def __init__(self, results: Results, show_failures: int = 5) -> None:
        self.results = results
        self.show_failures = show_failures

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        r = self.results
        yield self._header(r.run)
        yield Text("")
        yield self._steps_table(r)
        yield Text("")
        if any(s.visits is not None for s in r.steps):  # a graph pipeline (analysis sets all three)
            yield self._graph(r)
        usage = self._usage_table(r)
        if usage is not None:
            yield usage
            yield Text("")
        yield self._waterfall(r, min(options.max_width, 100))
        if any(s.isolated is not None for s in r.steps):
            yield self._isolated(r)
        yield self._end_to_end(r)
        yield Text("")
        if r.endpoints:
            yield Group(*(Text(endpoint_line(e), no_wrap=True, overflow="ellipsis") for e in r.endpoints), Text(""))
        if cache_line(r):
            yield Group(Text(cache_line(r), overflow="fold"), Text(""))
        if r.what_if:
            yield self._what_if(r)
            yield Text("")
        if r.gates:
            yield self._gates(r)
        if self.show_failures:
            failures = self._failures(r)
            if failures is not None:
                yield failures
        yield self._verdict(r)

    def _header(self, run: RunInfo) -> Text:
        trials = run.trials
        parts = [
            f"relcheck · {terminal(run.pipeline, newlines=False)}",
            f"{run.cases} cases × {trials} trial{'s' if trials != 1 else ''}",
            f"seed {run.seed}",
        ]
        if run.shard:
            parts.append(f"shard {run.shard}")
        if run.retries is not None:
            parts.append(f"--retries {run.retries}")
        if run.source == "traces":
            parts = [f"relcheck · {run.pipeline}", traces_line(run)]
        text = Text(" · ".join(parts), style="bold")
        if run.dir:
            text.append(f"\nrun: {run.dir}", style="dim")
        for note in run.notes or ():
            text.append(f"\nnote: {note}", style="yellow")
        return text

    def _steps_table(self, r: Results) -> Table:
        columns = ["step", "pass/reach", "rate", f"{pct(r.run.confidence, 0)} CI", "1st try", "recov", "err", "p50 ms"]
        table = _table("Steps", columns)
        for s in r.steps:
            rate = s.rate
            style = "" if rate is None else "green" if rate >= 0.99 else "yellow" if rate >= 0.9 else "red"
            table.add_row(
                s.id,
                f"{s.passed}/{s.reached}",
                Text(pct(rate), style=style),
                interval(s.ci, unit=False),
                pct(s.first_try_rate),
                pct(s.recovery_rate, 0),
                str(s.errors),
                ms(s.latency_ms.p50),
            )
        return table

    def _graph(self, r: Results) -> Group:
        """Graph pipelines: where each judged node ran (branches) and how often (loops)."""
        table = _table("Graph: reach and visits per node", ("step", "reached", "reach share", "visits", "visits/unit"))
        for s in r.steps:
            per_unit = s.visits.per_unit if s.visits else None
            table.add_row(
                s.id,
                str(s.reached),
                pct(s.reach_share),
                str(s.visits.total if s.visits else 0),
                "—" if per_unit is None else f"{per_unit:.2f}",
            )
        return Group(table, Text(""))

    def _usage_table(self, r: Results) -> Table | None:
        """Tokens, cost and throttled resends per step, when an endpoint reported any."""
        steps = r.steps
        has_tokens = any(s.tokens.input or s.tokens.output for s in steps)
        has_cost = any(s.cost_usd is not None for s in steps)
        has_throttled = any(s.throttled for s in steps)
        if not (has_tokens or has_cost or has_throttled):
            return None
        columns = ["step", "attempts"]
        columns += ["tokens in", "tokens out"] if has_tokens else []
        columns += ["cost USD"] if has_cost else []
        columns += ["throttled"] if has_throttled else []
        table = _table("Usage", columns)
        for s in steps:
            row = [s.id, str(s.attempts)]
            if has_tokens:
                row += [f"{s.tokens.input:,}", f"{s.tokens.output:,}"]
            if has_cost:
                row.append("—" if s.cost_usd is None else f"{s.cost_usd:.4f}")
            if has_throttled:
                row.append(str(s.throttled))
            table.add_row(*row)
        return table

    def _waterfall(self, r: Results, width: int) -> Group:
        total = r.end_to_end.total
        rows = [("start", total)] + [(s.id, s.passed if s.survivors is None else s.survivors) for s in r.steps]
        bar_width = max(10, width - 36)
        lines = [Text("Survival: units still passing after each step", style="bold")]
        for name, alive in rows:
            share = alive / total if total else 0.0
            filled = round(share * bar_width)
            line = Text(f"  {name[:14]:<14} {alive:>7} ")
            line.append("█" * filled, style="cyan")
            line.append("·" * (bar_width - filled), style="dim")
            line.append(f" {pct(share):>6}")
            lines.append(line)
        return Group(*lines, Text(""))

    def _isolated(self, r: Results) -> Group:
        table = _table(
            "Isolated pass: each step on gold upstream outputs",
            ("step", "pass/reach", "isolated", f"{pct(r.run.confidence, 0)} CI", "chained", "no gold"),
        )
        for s in r.steps:
            iso = s.isolated
            table.add_row(
                s.id,
                f"{iso.passed}/{iso.reached}" if iso else "0/0",
                pct(iso.rate if iso else None),
                interval(iso.ci if iso else None, unit=False),
                pct(s.rate),
                str(iso.skipped_no_gold if iso else 0),
            )
        return Group(table, Text(""))

    def _end_to_end(self, r: Results) -> Text:
        e = r.end_to_end
        text = Text("End to end: ", style="bold")
        text.append(f"{e.passed}/{e.total} = {pct(e.rate)}", style="bold")
        text.append(f"  ({pct(r.run.confidence, 0)} CI {interval(e.ci)})")
        if r.run.trials > 1:
            text.append(f"  rate over {e.cases} cases (mean of per-case pass shares)")
            if e.pass_at_k:
                k = max(e.pass_at_k, key=int)
                text.append(
                    f"\n  pass@{k} {pct(e.pass_at_k[k])}  pass^{k} {pct((e.pass_hat_k or {}).get(k))}"
                    f"  flaky cases: {len(e.flaky or ())}"
                )
        if e.independence_prediction is not None:
            text.append(
                f"\n  isolated steps' product (independence) {pct(e.independence_prediction)}  "
                f"{gap_text(e.independence_gap, e.independence_gap_ci)}"
            )
        if e.infra_errors:
            text.append(f"\n  infrastructure errors: {e.infra_errors} units ({pct(e.error_rate)})")
        return text

    def _what_if(self, r: Results) -> Table:
        columns = ("step", "retries", "recov/indep", "e2e now", "indep.", "measured")
        table = _table("What if: one more retry on a step", columns, wrap=True)
        rows = {s.id: s for s in r.steps}
        for w in r.what_if:
            step = rows.get(w.step)
            independent = w.first_try_rate if step is None else step.recovery_rate_independent
            recov = "—" if w.recovery_rate is None else f"{pct(w.recovery_rate, 0)}/{pct(independent, 0)}"
            table.add_row(
                w.step,
                f"{w.retries_now}→{w.retries_then}",
                recov,
                pct(w.end_to_end_now),
                pct(w.end_to_end_independent),
                pct(w.end_to_end_measured),
            )
        return table

    def _gates(self, r: Results) -> Group:
        lines = [Text("Gates", style="bold")]
        for g in r.gates:
            mark = Text(" PASS " if g.passed else " FAIL ", style="bold green" if g.passed else "bold red")
            line = Text("  ")
            line.append(mark)
            line.append(f" {g.name}: {g.detail}")
            if g.bound is not None and "bound" not in g.detail:
                line.append(f" (lower bound {g.bound:.4f})")
            lines.append(line)
        return Group(*lines, Text(""))

    def _failures(self, r: Results) -> Group | None:
        lines: list[Any] = []
        for s in r.steps:
            failures = s.failures
            if not failures:
                continue
            lines.append(Text(f"  {s.id} ({len(failures)} failing units)", style="bold"))
            for f in failures[: self.show_failures]:
                what = f.outcome if not f.error_kind else f"{f.outcome}/{f.error_kind}"
                reason = f.reason or ""
                # wrapped in full, never cut at the terminal's width; case ids, reasons and outputs
                # are untrusted: control characters shown, not obeyed
                lines.append(
                    Padding(
                        Text(terminal(f"{f.case}[{f.trial}] {what}: {reason}", newlines=False), overflow="fold"),
                        (0, 0, 0, 4),
                        expand=False,
                    )
                )
                if f.output and f.output[:40] not in reason:
                    lines.append(
                        Padding(
                            Text(terminal(f"output: {f.output!r}", newlines=False), style="dim", overflow="fold"),
                            (0, 0, 0, 6),
                            expand=False,
                        )
                    )
            if len(failures) > self.show_failures:
                lines.append(Text(f"    … {len(failures) - self.show_failures} more", style="dim"))
        if not lines:
            return None
        return Group(Text(f"Failures (up to {self.show_failures} per step)", style="bold"), *lines, Text(""))

    def _verdict(self, r: Results) -> Text:
        verdict, code = r.verdict, r.exit_code
        style = {"pass": "bold green", "fail": "bold red"}.get(verdict, "bold yellow")
        text = Text("Verdict: ", style="bold")
        text.append(verdict.upper(), style=style)
        text.append(f" (exit {code})")
        stop = r.run.stop
        if stop is not None:
            text.append(f" — {describe_stop(stop, r)}")
        elif code == 3:
            text.append(" — infrastructure errors above max_error_rate: no trustworthy verdict")
        return text


def endpoint_line(e: EndpointRow) -> str:
    """One HTTP endpoint's throughput line.

    Args:
        e: The endpoint's row of ``results.endpoints``.

    Returns:
        ``llm  2,381 req/min (limit 2,400) · concurrency 27 · 3 throttled (0.5%)``.
    """
    rate = e.requests_per_min
    parts = [f"{e.name}  " + (f"{rate:,.0f} req/min" if rate is not None else f"{e.requests:,} requests")]
    if e.limit_rpm:
        parts[0] += f" (limit {e.limit_rpm:,.0f})"
    if e.tokens_per_min:
        limit = f" (limit {e.limit_tpm:,.0f})" if e.limit_tpm else ""
        parts.append(f"{e.tokens_per_min:,.0f} tokens/min{limit}")
    parts.append(f"concurrency {e.concurrency_final}")
    parts.append(f"{e.status_429 + e.status_503:,} throttled ({pct(e.throttled_share)})")
    return " · ".join(parts)


def cache_line(r: Results) -> str:
    """``Response cache: 12 of 20 attempts answered, no request made (draft 6, final 6)``, or ""
    when no attempt of the chained pass was answered from the cache.

    Args:
        r: The results (each step row's ``cached`` count).
    """
    steps = [s for s in r.steps if s.cached]
    if not steps:
        return ""
    total = sum(int(s.cached or 0) for s in steps)
    attempts = sum(s.attempts for s in r.steps)
    each = ", ".join(f"{terminal(str(s.id), newlines=False)} {int(s.cached or 0):,}" for s in steps)
    return f"Response cache: {total:,} of {attempts:,} attempts answered, no request made ({each})"


def describe_stop(stop: Stop, r: Results) -> str:
    """Why the run stopped early, for the verdict line.

    Args:
        stop: ``run.stop`` (the parsed ``run.stop_reason``).
        r: The results (``max_cost`` names what was spent).

    Returns:
        A sentence; an unknown reason as it is stored.
    """
    if stop.reason == "interrupted":
        return "interrupted; what finished is saved and resumable"
    if stop.reason == "max_cost":
        return f"--max-cost reached (spent ${r.run.cost_usd or 0:.4f})"
    if stop.reason == "endpoint_rejected" and stop.endpoint is not None:
        kind = f" ({stop.kind})" if stop.kind else ""
        return f"endpoint '{stop.endpoint}' rejected its first requests{kind}: check its URL, model and API key"
    return str(stop)


def render_text(results: Results, show_failures: int = 5, width: int = 100, color: bool = False) -> str:
    """The report as plain text, for files, tests and CI logs.

    Args:
        results: The run's typed results.
        show_failures: How many failing units to list per step.
        width: The console width in columns.
        color: Whether to keep colour (ANSI escapes).

    Returns:
        The rendered report.
    """
    buf = StringIO()
    console = Console(
        file=buf, width=width, color_system=None, force_terminal=False, no_color=not color, highlight=False, emoji=False
    )
    console.print(TerminalReport(results, show_failures))
    return buf.getvalue()
