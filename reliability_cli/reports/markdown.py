"""Markdown: the summary tables, for ``$GITHUB_STEP_SUMMARY`` and pull-request comments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..safetext import markdown_cell
from ..textfmt import gap_text, pct
from .figures import gate_figures, interval
from .sources import traces_line

if TYPE_CHECKING:
    from ..results.schema import Results

DEFAULT_FAILURES = 5


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f}"


def _cell(text: Any) -> str:
    """A table cell: one line, pipes escaped; HTML escaped, control characters shown (model
    output and case ids are untrusted: see :mod:`reliability_cli.safetext`)."""
    return markdown_cell(_one_line(text))


def _one_line(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("\n", " ").replace("\r", " ")


def _code(text: Any) -> str:
    """A code span for untrusted text (HTML inside a code span is shown, not parsed); text
    holding a backtick, which would end the span early, is an escaped plain cell instead."""
    text = str(text)
    return _cell(text) if "`" in text else f"`{markdown_cell(_one_line(text), html_escape=False)}`"


def render_markdown(results: Results, show_failures: int | None = None) -> str:
    """The run as GitHub-flavoured Markdown.

    Args:
        results: The run's typed results.
        show_failures: Failing units listed per step (None: :data:`DEFAULT_FAILURES`; 0: none).

    Returns:
        The Markdown document, ending in a blank line (summaries can be appended one after another).
    """
    show = DEFAULT_FAILURES if show_failures is None else show_failures
    run, e = results.run, results.end_to_end
    icon = {"pass": "✅", "fail": "❌"}.get(results.verdict, "⚠️")
    trials = run.trials
    conf = run.confidence
    out = [
        f"## {icon} relcheck · {_cell(run.pipeline)}: {results.verdict.upper()} (exit {results.exit_code})",
        "",
    ]
    out.append(
        _cell(traces_line(run))
        if run.source == "traces"
        else f"{run.cases} cases × {trials} trial{'s' if trials != 1 else ''} · seed {run.seed}"
        + (f" · shard {run.shard}" if run.shard else "")
        + (f" · `--retries {run.retries}`" if run.retries is not None else "")
    )
    for i, note in enumerate(run.notes or ()):  # (a ">" line between: one paragraph each)
        out.extend([">"] if i else [])
        out.append(f"> {_cell(note)}")
    out.append("")
    line = f"**End to end: {e.passed}/{e.total} = {pct(e.rate)}** ({pct(conf, 0)} CI {interval(e.ci)})"
    if trials > 1 and e.pass_at_k:
        k = max(e.pass_at_k, key=int)
        line += (
            f" · mean of per-case shares over {e.cases} cases · pass@{k} {pct(e.pass_at_k[k])}"
            f" · pass^{k} {pct((e.pass_hat_k or {}).get(k))} · flaky cases {len(e.flaky or ())}"
        )
    if e.independence_prediction is not None:
        line += (
            f" · isolated product (independence) {pct(e.independence_prediction)}, "
            f"{gap_text(e.independence_gap, e.independence_gap_ci)}"
        )
    if e.infra_errors:
        line += f" · infrastructure errors in {e.infra_errors} units ({pct(e.error_rate)})"
    out += [line, ""]
    out += _steps(results, conf)
    if results.gates:
        out += [
            "### Gates",
            "",
            "| gate | result | observed | threshold | bound | detail |",
            "| --- | --- | ---: | ---: | ---: | --- |",
        ]
        for g in results.gates:
            observed, threshold, bound = gate_figures(g)
            out.append(
                f"| `{_cell(g.name)}` | {'✅ pass' if g.passed else '❌ FAIL'} | "
                f"{observed} | {threshold} | {bound} | {_cell(g.detail)} |"
            )
        out.append("")
    if results.what_if:
        out += [
            "<details><summary>What if: one more retry on a step</summary>",
            "",
            "| step | retries | e2e now | independence | measured recovery |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for w in results.what_if:
            out.append(
                f"| {_cell(w.step)} | {w.retries_now}→{w.retries_then} | {pct(w.end_to_end_now)} | "
                f"{pct(w.end_to_end_independent)} | {pct(w.end_to_end_measured)} |"
            )
        out += ["", "</details>", ""]
    if show:
        out += _failures(results, show)
    return "\n".join(out).rstrip() + "\n\n"


def _steps(results: Results, conf: float) -> list[str]:
    isolated = any(s.isolated is not None for s in results.steps)
    ci = f"{pct(conf, 0)} CI"
    head = ["step", "pass/reached", "rate", ci, "1st try", "recovery (indep.)", "errors", "p50 / p95 ms"]
    if isolated:
        head.insert(4, "isolated")
    graph = any(s.visits is not None for s in results.steps)  # a graph pipeline: branches and loops
    if graph:
        head += ["reach", "visits/unit"]
    out = ["### Steps", "", "| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for s in results.steps:
        lat = s.latency_ms
        rec = pct(s.recovery_rate, 0)
        if s.recovery_rate is not None:
            rec += f" ({pct(s.recovery_rate_independent, 0)})"
        cells = [
            f"`{_cell(s.id)}`",
            f"{s.passed}/{s.reached}",
            pct(s.rate),
            interval(s.ci),
            pct(s.first_try_rate),
            rec,
            str(s.errors),
            f"{_ms(lat.p50)} / {_ms(lat.p95)}",
        ]
        if isolated:
            iso = s.isolated
            cells.insert(4, f"{pct(iso.rate)} ({iso.passed}/{iso.reached})" if iso else f"{pct(None)} (0/0)")
        if graph:
            per_unit = s.visits.per_unit if s.visits else None
            cells += [pct(s.reach_share), "—" if per_unit is None else f"{per_unit:.2f}"]
        out.append("| " + " | ".join(cells) + " |")
    return out + [""]


def _failures(results: Results, show: int) -> list[str]:
    rows = []
    for s in results.steps:
        failures = s.failures
        for f in failures[:show]:
            what = f.outcome if not f.error_kind else f"{f.outcome}/{f.error_kind}"
            output = (f.output or "")[:80]
            unit = f"{f.case}[{f.trial}]"
            rows.append(
                f"| `{_cell(s.id)}` | {_code(unit)} | {what} | "
                f"{_cell((f.reason or '')[:160])} | {_code(output) if output else ''} |"
            )
        more = len(failures) - show + s.failures_omitted
        if more > 0:
            rows.append(f"| `{_cell(s.id)}` | … {more} more | | | |")
    if not rows:
        return []
    return [
        f"<details><summary>Failing units (up to {show} per step)</summary>",
        "",
        "| step | unit | outcome | reason | output |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        "</details>",
        "",
    ]
