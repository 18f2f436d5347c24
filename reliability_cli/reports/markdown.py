"""Markdown: the summary tables, for ``$GITHUB_STEP_SUMMARY`` and pull-request comments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..safetext import markdown_cell
from ..textfmt import independence_gap
from .sources import traces_line

DEFAULT_FAILURES = 5


def _pct(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v * 100:.{digits}f}%"


def _ci(ci: Mapping[str, float] | None) -> str:
    return "—" if not ci else f"{ci['low'] * 100:.1f}–{ci['high'] * 100:.1f}%"


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


def render_markdown(results: Mapping[str, Any], show_failures: int | None = None) -> str:
    """The run as GitHub-flavoured Markdown."""
    show = DEFAULT_FAILURES if show_failures is None else show_failures
    run, e = results["run"], results["end_to_end"]
    icon = {"pass": "✅", "fail": "❌"}.get(results["verdict"], "⚠️")
    trials = run.get("trials", 1)
    conf = run.get("confidence", 0.95)
    out = [
        f"## {icon} relcheck · {_cell(run.get('pipeline', '?'))}: {results['verdict'].upper()} "
        f"(exit {results['exit_code']})",
        "",
    ]
    out.append(
        _cell(traces_line(run))
        if run.get("source") == "traces"
        else f"{run.get('cases', '?')} cases × {trials} trial{'s' if trials != 1 else ''} · seed "
        f"{run.get('seed', 0)}"
        + (f" · shard {run['shard']}" if run.get("shard") else "")
        + (f" · `--retries {run['retries']}`" if run.get("retries") is not None else "")
    )
    for i, note in enumerate(run.get("notes") or ()):  # (a ">" line between: one paragraph each)
        out.extend([">"] if i else [])
        out.append(f"> {_cell(note)}")
    out.append("")
    line = f"**End to end: {e['passed']}/{e['total']} = {_pct(e['rate'])}** ({conf:.0%} CI {_ci(e['ci'])})"
    if trials > 1 and e.get("pass_at_k"):
        k = max(e["pass_at_k"], key=int)
        line += (
            f" · mean of per-case shares over {e.get('cases')} cases · pass@{k} {_pct(e['pass_at_k'][k])}"
            f" · pass^{k} {_pct(e['pass_hat_k'][k])} · flaky cases {len(e.get('flaky', []))}"
        )
    if e.get("independence_prediction") is not None:
        line += f" · isolated product (independence) {_pct(e['independence_prediction'])}, {independence_gap(e)}"
    if e.get("infra_errors"):
        line += f" · infrastructure errors in {e['infra_errors']} units ({_pct(e.get('error_rate'))})"
    out += [line, ""]
    out += _steps(results, conf)
    if results.get("gates"):
        out += [
            "### Gates",
            "",
            "| gate | result | observed | threshold | bound | detail |",
            "| --- | --- | ---: | ---: | ---: | --- |",
        ]
        for g in results["gates"]:
            obs = g.get("observed")
            bound = g.get("bound")
            out.append(
                f"| `{_cell(g['name'])}` | {'✅ pass' if g['passed'] else '❌ FAIL'} | "
                f"{'—' if obs is None else f'{obs:.4f}'} | {g['threshold']:g} | "
                f"{'—' if bound is None else f'{bound:.4f}'} | {_cell(g['detail'])} |"
            )
        out.append("")
    if results.get("what_if"):
        out += [
            "<details><summary>What if: one more retry on a step</summary>",
            "",
            "| step | retries | e2e now | independence | measured recovery |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for w in results["what_if"]:
            out.append(
                f"| {_cell(w['step'])} | {w['retries_now']}→{w['retries_then']} | {_pct(w['end_to_end_now'])} | "
                f"{_pct(w['end_to_end_independent'])} | {_pct(w['end_to_end_measured'])} |"
            )
        out += ["", "</details>", ""]
    if show:
        out += _failures(results, show)
    return "\n".join(out).rstrip() + "\n\n"


def _steps(results: Mapping[str, Any], conf: float) -> list[str]:
    isolated = any("isolated" in s for s in results["steps"])
    head = ["step", "pass/reached", "rate", f"{conf:.0%} CI", "1st try", "recovery (indep.)", "errors", "p50 / p95 ms"]
    if isolated:
        head.insert(4, "isolated")
    graph = any("reach_share" in s for s in results["steps"])  # a graph pipeline: branches and loops
    if graph:
        head += ["reach", "visits/unit"]
    out = ["### Steps", "", "| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for s in results["steps"]:
        lat = s.get("latency_ms") or {}
        rec = _pct(s.get("recovery_rate"), 0)
        indep = s.get(
            "recovery_rate_independent", s.get("first_try_rate") if s.get("recovery_rate") is not None else None
        )
        if s.get("recovery_rate") is not None:
            rec += f" ({_pct(indep, 0)})"
        cells = [
            f"`{_cell(s['id'])}`",
            f"{s['passed']}/{s['reached']}",
            _pct(s["rate"]),
            _ci(s["ci"]),
            _pct(s["first_try_rate"]),
            rec,
            str(s["errors"]),
            f"{_ms(lat.get('p50'))} / {_ms(lat.get('p95'))}",
        ]
        if isolated:
            iso = s.get("isolated") or {}
            cells.insert(4, f"{_pct(iso.get('rate'))} ({iso.get('passed', 0)}/{iso.get('reached', 0)})")
        if graph:
            per_unit = (s.get("visits") or {}).get("per_unit")
            cells += [_pct(s.get("reach_share")), "—" if per_unit is None else f"{per_unit:.2f}"]
        out.append("| " + " | ".join(cells) + " |")
    return out + [""]


def _failures(results: Mapping[str, Any], show: int) -> list[str]:
    rows = []
    for s in results["steps"]:
        failures = s.get("failures") or []
        for f in failures[:show]:
            what = f["outcome"] if not f.get("error_kind") else f"{f['outcome']}/{f['error_kind']}"
            output = (f.get("output") or "")[:80]
            unit = f"{f['case']}[{f['trial']}]"
            rows.append(
                f"| `{_cell(s['id'])}` | {_code(unit)} | {what} | "
                f"{_cell((f.get('reason') or '')[:160])} | {_code(output) if output else ''} |"
            )
        more = len(failures) - show + (s.get("failures_omitted") or 0)
        if more > 0:
            rows.append(f"| `{_cell(s['id'])}` | … {more} more | | | |")
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
