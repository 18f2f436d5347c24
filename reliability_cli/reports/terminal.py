"""The terminal report: per-step table, survival waterfall, end to end, gates, failures.

A rich renderable (:class:`TerminalReport`), so it can be printed to any console and tested
by rendering into ``Console(file=StringIO(), width=80)``. It must read well at 80 columns
and in a CI log without colour: every fact is in the text, colour only repeats it.
"""

from __future__ import annotations

from collections.abc import Mapping
from io import StringIO
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..safetext import terminal
from ..textfmt import independence_gap
from .sources import traces_line


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def ci_text(ci: Mapping[str, float] | None) -> str:
    return "—" if not ci else f"{ci['low'] * 100:.1f}–{ci['high'] * 100:.1f}"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


class TerminalReport:
    """The report of one run."""

    def __init__(self, results: Mapping[str, Any], show_failures: int = 5) -> None:
        self.results = results
        self.show_failures = show_failures

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        r = self.results
        run = r["run"]
        yield self._header(run)
        yield Text("")
        yield self._steps_table(r)
        yield Text("")
        if any("reach_share" in s for s in r["steps"]):
            yield self._graph(r)
        usage = self._usage_table(r)
        if usage is not None:
            yield usage
            yield Text("")
        yield self._waterfall(r, min(options.max_width, 100))
        if any("isolated" in s for s in r["steps"]):
            yield self._isolated(r)
        yield self._end_to_end(r)
        yield Text("")
        if r.get("endpoints"):
            yield Group(*(Text(endpoint_line(e), no_wrap=True, overflow="ellipsis") for e in r["endpoints"]), Text(""))
        if cache_line(r):
            yield Group(Text(cache_line(r), overflow="fold"), Text(""))
        if r.get("what_if"):
            yield self._what_if(r)
            yield Text("")
        if r.get("gates"):
            yield self._gates(r)
        if self.show_failures:
            failures = self._failures(r)
            if failures is not None:
                yield failures
        yield self._verdict(r)

    def _header(self, run: Mapping[str, Any]) -> Text:
        trials = run.get("trials", 1)
        parts = [
            f"relcheck · {terminal(str(run.get('pipeline', '?')), newlines=False)}",
            f"{run.get('cases', '?')} cases × {trials} trial{'s' if trials != 1 else ''}",
            f"seed {run.get('seed', 0)}",
        ]
        if run.get("shard"):
            parts.append(f"shard {run['shard']}")
        if run.get("retries") is not None:
            parts.append(f"--retries {run['retries']}")
        if run.get("source") == "traces":
            parts = [f"relcheck · {run.get('pipeline', '?')}", traces_line(run)]
        text = Text(" · ".join(parts), style="bold")
        if run.get("dir"):
            text.append(f"\nrun: {run['dir']}", style="dim")
        for note in run.get("notes") or ():
            text.append(f"\nnote: {note}", style="yellow")
        return text

    def _steps_table(self, r: Mapping[str, Any]) -> Table:
        confidence = r["run"].get("confidence", 0.95)
        table = Table(box=box.SIMPLE_HEAD, title="Steps", title_justify="left", pad_edge=False, show_edge=False)
        table.add_column("step", no_wrap=True, overflow="ellipsis", max_width=18)
        table.add_column("pass/reach", justify="right", no_wrap=True)
        table.add_column("rate", justify="right", no_wrap=True)
        table.add_column(f"{confidence:.0%} CI", justify="right", no_wrap=True)
        table.add_column("1st try", justify="right", no_wrap=True)
        table.add_column("recov", justify="right", no_wrap=True)
        table.add_column("err", justify="right", no_wrap=True)
        table.add_column("p50 ms", justify="right", no_wrap=True)
        for s in r["steps"]:
            rate = s["rate"]
            style = "" if rate is None else "green" if rate >= 0.99 else "yellow" if rate >= 0.9 else "red"
            table.add_row(
                s["id"],
                f"{s['passed']}/{s['reached']}",
                Text(pct(rate), style=style),
                ci_text(s["ci"]),
                pct(s["first_try_rate"]),
                pct(s["recovery_rate"], 0),
                str(s["errors"]),
                ms((s.get("latency_ms") or {}).get("p50")),
            )
        return table

    def _graph(self, r: Mapping[str, Any]) -> Group:
        """Graph pipelines: where each judged node ran (branches) and how often (loops)."""
        table = Table(
            box=box.SIMPLE_HEAD,
            title="Graph: reach and visits per node",
            title_justify="left",
            pad_edge=False,
            show_edge=False,
        )
        for name in ("step", "reached", "reach share", "visits", "visits/unit"):
            table.add_column(
                name,
                justify="left" if name == "step" else "right",
                no_wrap=True,
                max_width=18 if name == "step" else None,
            )
        for s in r["steps"]:
            visits = s.get("visits") or {}
            per_unit = visits.get("per_unit")
            table.add_row(
                s["id"],
                str(s["reached"]),
                pct(s.get("reach_share")),
                str(visits.get("total", 0)),
                "—" if per_unit is None else f"{per_unit:.2f}",
            )
        return Group(table, Text(""))

    def _usage_table(self, r: Mapping[str, Any]) -> Table | None:
        """Tokens, cost and throttled resends per step, when an endpoint reported any."""
        steps = r["steps"]

        def tokens(s: Mapping[str, Any], key: str) -> int:
            return int((s.get("tokens") or {}).get(key) or 0)

        has_tokens = any(tokens(s, "input") or tokens(s, "output") for s in steps)
        has_cost = any(s.get("cost_usd") is not None for s in steps)
        has_throttled = any(s.get("throttled") for s in steps)
        if not (has_tokens or has_cost or has_throttled):
            return None
        table = Table(box=box.SIMPLE_HEAD, title="Usage", title_justify="left", pad_edge=False, show_edge=False)
        table.add_column("step", no_wrap=True, overflow="ellipsis", max_width=18)
        table.add_column("attempts", justify="right", no_wrap=True)
        if has_tokens:
            table.add_column("tokens in", justify="right", no_wrap=True)
            table.add_column("tokens out", justify="right", no_wrap=True)
        if has_cost:
            table.add_column("cost USD", justify="right", no_wrap=True)
        if has_throttled:
            table.add_column("throttled", justify="right", no_wrap=True)
        for s in steps:
            row = [s["id"], str(s.get("attempts", "—"))]
            if has_tokens:
                row += [f"{tokens(s, 'input'):,}", f"{tokens(s, 'output'):,}"]
            if has_cost:
                row.append("—" if s.get("cost_usd") is None else f"{s['cost_usd']:.4f}")
            if has_throttled:
                row.append(str(s.get("throttled") or 0))
            table.add_row(*row)
        return table

    def _waterfall(self, r: Mapping[str, Any], width: int) -> Group:
        total = r["end_to_end"]["total"]
        rows = [("start", total)] + [(s["id"], s.get("survivors", s["passed"])) for s in r["steps"]]
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

    def _isolated(self, r: Mapping[str, Any]) -> Group:
        table = Table(
            box=box.SIMPLE_HEAD,
            title="Isolated pass: each step on gold upstream outputs",
            title_justify="left",
            pad_edge=False,
            show_edge=False,
        )
        ci_head = f"{r['run'].get('confidence', 0.95):.0%} CI"
        for name in ("step", "pass/reach", "isolated", ci_head, "chained", "no gold"):
            table.add_column(
                name,
                justify="left" if name == "step" else "right",
                no_wrap=True,
                max_width=18 if name == "step" else None,
            )
        for s in r["steps"]:
            iso = s.get("isolated") or {}
            table.add_row(
                s["id"],
                f"{iso.get('passed', 0)}/{iso.get('reached', 0)}",
                pct(iso.get("rate")),
                ci_text(iso.get("ci")),
                pct(s["rate"]),
                str(iso.get("skipped_no_gold", 0)),
            )
        return Group(table, Text(""))

    def _end_to_end(self, r: Mapping[str, Any]) -> Text:
        e = r["end_to_end"]
        confidence = r["run"].get("confidence", 0.95)
        text = Text("End to end: ", style="bold")
        text.append(f"{e['passed']}/{e['total']} = {pct(e['rate'])}", style="bold")
        text.append(f"  ({confidence:.0%} CI {ci_text(e['ci'])}%)")
        if r["run"].get("trials", 1) > 1:
            text.append(f"  rate over {e.get('cases')} cases (mean of per-case pass shares)")
            if e.get("pass_at_k"):
                k = max(e["pass_at_k"], key=int)
                text.append(
                    f"\n  pass@{k} {pct(e['pass_at_k'][k])}  pass^{k} {pct(e['pass_hat_k'][k])}"
                    f"  flaky cases: {len(e.get('flaky', []))}"
                )
        if e.get("independence_prediction") is not None:
            text.append(
                f"\n  isolated steps' product (independence) {pct(e['independence_prediction'])}  {independence_gap(e)}"
            )
        if e.get("infra_errors"):
            text.append(f"\n  infrastructure errors: {e['infra_errors']} units ({pct(e['error_rate'])})")
        return text

    def _what_if(self, r: Mapping[str, Any]) -> Table:
        table = Table(
            box=box.SIMPLE_HEAD,
            title="What if: one more retry on a step",
            title_justify="left",
            pad_edge=False,
            show_edge=False,
        )
        table.add_column("step", no_wrap=True, max_width=18)
        table.add_column("retries", justify="right")
        table.add_column("recov/indep", justify="right")
        table.add_column("e2e now", justify="right")
        table.add_column("indep.", justify="right")
        table.add_column("measured", justify="right")
        for w in r["what_if"]:
            step: Mapping[str, Any] = next((s for s in r["steps"] if s["id"] == w["step"]), {})
            recov = (
                "—"
                if w.get("recovery_rate") is None
                else f"{pct(w['recovery_rate'], 0)}/"
                f"{pct(step.get('recovery_rate_independent', w['first_try_rate']), 0)}"
            )
            table.add_row(
                w["step"],
                f"{w['retries_now']}→{w['retries_then']}",
                recov,
                pct(w["end_to_end_now"]),
                pct(w["end_to_end_independent"]),
                pct(w["end_to_end_measured"]),
            )
        return table

    def _gates(self, r: Mapping[str, Any]) -> Group:
        lines = [Text("Gates", style="bold")]
        for g in r["gates"]:
            mark = Text(" PASS " if g["passed"] else " FAIL ", style="bold green" if g["passed"] else "bold red")
            line = Text("  ")
            line.append(mark)
            line.append(f" {g['name']}: {g['detail']}")
            if g.get("bound") is not None and "bound" not in g["detail"]:
                line.append(f" (lower bound {g['bound']:.4f})")
            lines.append(line)
        return Group(*lines, Text(""))

    def _failures(self, r: Mapping[str, Any]) -> Group | None:
        lines: list[Any] = []
        for s in r["steps"]:
            failures = s.get("failures") or []
            if not failures:
                continue
            lines.append(Text(f"  {s['id']} ({len(failures)} failing units)", style="bold"))
            for f in failures[: self.show_failures]:
                what = f["outcome"] if not f.get("error_kind") else f"{f['outcome']}/{f['error_kind']}"
                reason = f.get("reason") or ""
                # wrapped in full, never cut at the terminal's width; case ids, reasons and outputs
                # are untrusted: control characters shown, not obeyed
                lines.append(
                    Padding(
                        Text(terminal(f"{f['case']}[{f['trial']}] {what}: {reason}", newlines=False), overflow="fold"),
                        (0, 0, 0, 4),
                        expand=False,
                    )
                )
                if f.get("output") and f["output"][:40] not in reason:
                    lines.append(
                        Padding(
                            Text(terminal(f"output: {f['output']!r}", newlines=False), style="dim", overflow="fold"),
                            (0, 0, 0, 6),
                            expand=False,
                        )
                    )
            if len(failures) > self.show_failures:
                lines.append(Text(f"    … {len(failures) - self.show_failures} more", style="dim"))
        if not lines:
            return None
        return Group(Text(f"Failures (up to {self.show_failures} per step)", style="bold"), *lines, Text(""))

    def _verdict(self, r: Mapping[str, Any]) -> Text:
        verdict, code = r["verdict"], r["exit_code"]
        style = {"pass": "bold green", "fail": "bold red"}.get(verdict, "bold yellow")
        text = Text("Verdict: ", style="bold")
        text.append(verdict.upper(), style=style)
        text.append(f" (exit {code})")
        reason = r["run"].get("stop_reason")
        if reason:
            text.append(f" — {describe_stop(reason, r)}")
        elif code == 3:
            text.append(" — infrastructure errors above max_error_rate: no trustworthy verdict")
        return text


def endpoint_line(e: Mapping[str, Any]) -> str:
    """``llm  2,381 req/min (limit 2,400) · concurrency 27 · 3 throttled (0.5%)`` for one HTTP endpoint."""
    rate = e.get("requests_per_min")
    parts = [
        f"{e.get('name', '?')}  "
        + (f"{rate:,.0f} req/min" if rate is not None else f"{e.get('requests', 0):,} requests")
    ]
    if e.get("limit_rpm"):
        parts[0] += f" (limit {e['limit_rpm']:,.0f})"
    if e.get("tokens_per_min"):
        limit = f" (limit {e['limit_tpm']:,.0f})" if e.get("limit_tpm") else ""
        parts.append(f"{e['tokens_per_min']:,.0f} tokens/min{limit}")
    parts.append(f"concurrency {e.get('concurrency_final', 0)}")
    throttled = int(e.get("status_429", 0)) + int(e.get("status_503", 0))
    parts.append(f"{throttled:,} throttled ({pct(e.get('throttled_share', 0.0))})")
    return " · ".join(parts)


def cache_line(r: Mapping[str, Any]) -> str:
    """``Response cache: 12 of 20 attempts answered, no request made (draft 6, final 6)``, or ""
    when no attempt of the chained pass was answered from the cache."""
    steps = [s for s in r.get("steps", ()) if s.get("cached")]
    if not steps:
        return ""
    total = sum(int(s["cached"]) for s in steps)
    attempts = sum(int(s.get("attempts") or 0) for s in r.get("steps", ()))
    each = ", ".join(f"{terminal(str(s['id']), newlines=False)} {int(s['cached']):,}" for s in steps)
    return f"Response cache: {total:,} of {attempts:,} attempts answered, no request made ({each})"


def describe_stop(reason: str, r: Mapping[str, Any]) -> str:
    if reason == "interrupted":
        return "interrupted; what finished is saved and resumable"
    if reason == "max_cost":
        return f"--max-cost reached (spent ${r['run'].get('cost_usd') or 0:.4f})"
    if reason.startswith("endpoint_rejected:"):
        _, name, kind = reason.split(":", 2)
        return f"endpoint '{name}' rejected its first requests ({kind}): check its URL, model and API key"
    return reason


def render_text(results: Mapping[str, Any], show_failures: int = 5, width: int = 100, color: bool = False) -> str:
    """The report as plain text (no colour), for files, tests and CI logs."""
    buf = StringIO()
    console = Console(
        file=buf, width=width, color_system=None, force_terminal=False, no_color=not color, highlight=False, emoji=False
    )
    console.print(TerminalReport(results, show_failures))
    return buf.getvalue()
