"""HTML: one self-contained file (SPEC §8) — inline CSS, inline SVG charts, no network at view time.

Charts are drawn here as SVG, so the report renders with JavaScript off; a few lines of
inline script only filter the failure table and mark the page ``data-rendered`` once every
chart has a laid-out box (what the browser test checks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from ..textfmt import Span, gap_text, pct, truncate
from .figures import gate_figures, interval, ms
from .sources import traces_line

if TYPE_CHECKING:
    from ..results.schema import Results

W = 760  # chart width in px (viewBox units)
LABEL_W = 130


def _e(v: Any) -> str:
    return escape("" if v is None else str(v), quote=True)


def render_html(results: Results, run_dir: str | None = None) -> str:
    """The run as one self-contained HTML document.

    Args:
        results: The run's typed results.
        run_dir: Where the unit viewer reads the journal (default: ``run.dir``); without a
            journal there, the failures table stands in for the viewer.

    Returns:
        The HTML document.
    """
    run, e = results.run, results.end_to_end
    conf = run.confidence
    verdict = results.verdict
    trials = run.trials
    sub = (
        (
            traces_line(run)
            if run.source == "traces"
            else f"{run.cases} cases × {trials} trial{'s' if trials != 1 else ''} · seed {run.seed}"
        )
        + (f" · --retries {run.retries}" if run.retries is not None else "")
        + (" · isolated pass" if run.isolate else "")
        + (f" · run {run.id}" if run.id else "")
    )
    e2e_line = f"{e.passed}/{e.total} = {pct(e.rate)}"
    if e.ci:
        e2e_line += f" ({pct(conf, 0)} CI {interval(e.ci)})"
    extra = ""
    if e.independence_prediction is not None:
        extra += (
            f"<p>Independence prediction (product of isolated rates): <b>{pct(e.independence_prediction)}</b>; "
            f"chained rate minus it: {escape(gap_text(e.independence_gap, e.independence_gap_ci))}.</p>"
        )
    if trials > 1 and e.pass_at_k:
        k = max(e.pass_at_k, key=int)
        extra += (
            f"<p>Rate = mean of per-case pass shares over {e.cases} cases · pass@{k} "
            f"{pct(e.pass_at_k[k])} · pass^{k} {pct((e.pass_hat_k or {}).get(k))} · "
            f"{len(e.flaky or ())} flaky cases</p>"
        )
    if e.infra_errors:
        extra += f"<p>Infrastructure errors in {e.infra_errors} units ({pct(e.error_rate)}).</p>"
    from .viewer import VIEWER_CSS, VIEWER_JS, render_viewer

    viewer = render_viewer(results, run_dir)
    body = [
        f'<header class="{_e(verdict)}"><h1>relcheck · {_e(run.pipeline)}</h1>'
        f'<div class="verdict">{_e(verdict.upper())} <small>exit {_e(results.exit_code)}</small></div>'
        f'<p class="sub">{_e(sub)}</p></header>',
        "".join(f'<p class="note">{_e(note)}</p>' for note in run.notes or ()),
        f'<section><h2>End to end</h2><p class="big">{_e(e2e_line)}</p>{extra}</section>',
        _gates(results),
        f"<section><h2>Steps</h2>{_steps_table(results, conf)}</section>",
        f"<section><h2>Survival: units still passing after each step</h2>{waterfall_svg(results)}</section>",
        f"<section><h2>Rates with {pct(conf, 0)} intervals</h2>{rates_svg(results)}</section>",
        f"<section><h2>Latency per attempt (p50 · p95 · max)</h2>{latency_svg(results)}</section>",
        _what_if(results),
        viewer or _failures(results),
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>relcheck · {_e(run.pipeline)} · {_e(verdict)}</title>"
        f"<style>{CSS}{VIEWER_CSS if viewer else ''}</style></head><body>\n"
        + "\n".join(b for b in body if b)
        + f"\n<footer>relcheck {_e(run.relcheck_version)} · {_e(run.started_at)}</footer>"
        f"<script>{JS}{VIEWER_JS if viewer else ''}</script></body></html>\n"
    )


def _gates(results: Results) -> str:
    if not results.gates:
        return ""
    rows = []
    for g in results.gates:
        observed, threshold, bound = gate_figures(g)
        rows.append(
            f'<tr class="{"ok" if g.passed else "bad"}"><td><code>{_e(g.name)}</code></td>'
            f'<td>{"PASS" if g.passed else "FAIL"}</td><td class="n">{observed}</td>'
            f'<td class="n">{threshold}</td><td class="n">{bound}</td><td>{_e(g.detail)}</td></tr>'
        )
    return (
        "<section><h2>Gates</h2><table><thead><tr><th>gate</th><th>result</th><th>observed</th>"
        "<th>threshold</th><th>bound</th><th>detail</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _steps_table(results: Results, conf: float) -> str:
    isolated = any(s.isolated is not None for s in results.steps)
    head = [
        "step",
        "pass / reached",
        "rate",
        f"{pct(conf, 0)} CI",
        *(["isolated"] if isolated else []),
        "1st try",
        "recovery (if independent)",
        "retried",
        "attempts pass/fail/error",
        "error kinds",
        "latency ms p50 · p95 · max",
        "tokens in / out",
        "cost USD",
    ]
    graph = any(s.visits is not None for s in results.steps)  # a graph pipeline: branches and loops
    if graph:
        head += ["reach", "visits/unit"]
    rows = []
    for s in results.steps:
        lat = s.latency_ms
        ao = s.attempt_outcomes
        kinds = " ".join(f'<span class="kind">{_e(k)} {_e(v)}</span>' for k, v in s.error_kinds.items()) or "—"
        iso = s.isolated
        cells = [
            f"<code>{_e(s.id)}</code>",
            f"{s.passed}/{s.reached}",
            pct(s.rate),
            interval(s.ci),
            *([f"{pct(iso.rate)} ({iso.passed}/{iso.reached})" if iso else f"{pct(None)} (0/0)"] if isolated else []),
            pct(s.first_try_rate),
            pct(s.recovery_rate) + (f" ({pct(s.recovery_rate_independent)})" if s.recovery_rate is not None else ""),
            str(s.retried),
            f"{s.attempts} ({ao.get('pass', 0)}/{ao.get('fail', 0)}/{ao.get('error', 0)})",
            kinds,
            f"{ms(lat.p50)} · {ms(lat.p95)} · {ms(lat.max)}",
            f"{s.tokens.input} / {s.tokens.output}",
            "—" if s.cost_usd is None else f"{s.cost_usd:.4f}",
        ]
        if graph:
            per_unit = s.visits.per_unit if s.visits else None
            cells += [pct(s.reach_share), "—" if per_unit is None else f"{per_unit:.2f}"]
        rows.append(
            "<tr>" + "".join(f"<td{'' if i == 0 else ' class=n'}>{c}</td>" for i, c in enumerate(cells)) + "</tr>"
        )
    return (
        '<div class="scroll"><table class="steps"><thead><tr>'
        + "".join(f"<th>{_e(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def waterfall_svg(results: Results) -> str:
    """Vertical bars: units alive at start and after each step; the loss at each step in red.

    Args:
        results: The run's typed results.

    Returns:
        An inline ``<svg>`` element.
    """
    total = results.end_to_end.total or 0
    stages: list[tuple[str, int]] = [("start", total)] + [
        (s.id, s.passed if s.survivors is None else s.survivors) for s in results.steps
    ]
    n = len(stages)
    h, top, bottom, left = 300, 24, 54, 48
    plot_h = h - top - bottom
    slot = (W - left - 10) / max(n, 1)
    bar = min(64.0, slot * 0.6)
    parts = [_axis_y(left, top, plot_h, W)]
    prev = total
    for i, (name, alive) in enumerate(stages):
        x = left + i * slot + (slot - bar) / 2
        share = alive / total if total else 0.0
        y = top + plot_h * (1 - share)
        parts.append(
            f'<rect class="alive" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{plot_h * share:.1f}">'
            f"<title>{_e(name)}: {alive} of {total} units still passing ({pct(share)})</title></rect>"
        )
        lost = prev - alive if i else 0
        if lost > 0 and total:
            lh = plot_h * lost / total
            parts.append(
                f'<rect class="lost" x="{x:.1f}" y="{y - lh:.1f}" width="{bar:.1f}" height="{max(lh, 1.0):.1f}">'
                f"<title>{_e(name)}: lost {lost} units</title></rect>"
            )
            parts.append(
                f'<text class="lostlabel" x="{x + bar / 2:.1f}" y="{y - lh - 4:.1f}" '
                f'text-anchor="middle">−{lost}</text>'
            )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{y - (plot_h * lost / total if i and total else 0) - 16:.1f}" '
            f'text-anchor="middle" class="val">{pct(share)}</text>'
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{h - bottom + 16}" text-anchor="middle" class="lab">'
            f"{_e(truncate(name, 14))}</text>"
        )
        prev = alive
    return _svg("waterfall", h, parts, "End-to-end survival step by step")


def rates_svg(results: Results) -> str:
    """Each step's rate as a dot with its interval as a whisker; isolated rate as a diamond.

    Args:
        results: The run's typed results.

    Returns:
        An inline ``<svg>`` element; the last row is end to end (its diamond: the independence prediction).
    """
    rows: list[tuple[str, float | None, Span | None, float | None]] = [
        (s.id, s.rate, s.ci, s.isolated.rate if s.isolated else None) for s in results.steps
    ]
    e = results.end_to_end
    rows.append(("end to end", e.rate, e.ci, e.independence_prediction))
    lows = [v for _, r, ci, iso in rows for v in (ci.low if ci else None, r, iso) if v is not None]
    lo = max(0.0, math.floor((min(lows, default=0.0) - 0.02) * 20) / 20)
    row_h, top = 30, 26
    h = top + row_h * len(rows) + 30
    x0, x1 = LABEL_W, W - 70

    def sx(v: float) -> float:
        return x0 + (x1 - x0) * (v - lo) / (1 - lo if lo < 1 else 1)

    parts = []
    ticks = _ticks(lo, 1.0)
    for t in ticks:
        parts.append(f'<line class="grid" x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top - 6}" y2="{h - 26}"/>')
        parts.append(f'<text class="lab" x="{sx(t):.1f}" y="{h - 10}" text-anchor="middle">{t * 100:g}%</text>')
    for i, (name, rate, ci, iso) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        parts.append(
            f'<text class="lab" x="{x0 - 8}" y="{y + 4:.1f}" text-anchor="end">{_e(truncate(name, 18))}</text>'
        )
        if ci:
            parts.append(
                f'<line class="whisker" x1="{sx(ci.low):.1f}" x2="{sx(ci.high):.1f}" y1="{y:.1f}" y2="{y:.1f}">'
                f"<title>{_e(name)}: interval {interval(ci)}</title></line>"
            )
            for v in (ci.low, ci.high):
                parts.append(
                    f'<line class="whisker" x1="{sx(v):.1f}" x2="{sx(v):.1f}" y1="{y - 6:.1f}" y2="{y + 6:.1f}"/>'
                )
        if rate is not None:
            parts.append(
                f'<circle class="rate" cx="{sx(rate):.1f}" cy="{y:.1f}" r="5"><title>{_e(name)}: {pct(rate, 2)}'
                f"</title></circle>"
            )
            parts.append(f'<text class="val" x="{x1 + 8}" y="{y + 4:.1f}">{pct(rate)}</text>')
        if iso is not None:
            d = 8  # larger than the dot and hollow: visible when the two rates coincide
            cx = sx(iso)
            parts.append(
                f'<path class="iso" d="M{cx:.1f},{y - d:.1f} L{cx + d:.1f},{y:.1f} L{cx:.1f},{y + d:.1f} '
                f'L{cx - d:.1f},{y:.1f} Z"><title>{_e(name)}: isolated / independence {pct(iso, 2)}</title></path>'
            )
    iso_note = "  ◆ isolated rate (end to end: independence prediction)" if any(r[3] is not None for r in rows) else ""
    legend = f'<text class="lab" x="{x0}" y="14">● rate  ─ interval{iso_note}</text>'
    return _svg("rates", h, [legend, *parts], "Rates with interval whiskers")


def latency_svg(results: Results) -> str:
    """Per step: a bar to p50, a box p50–p95 and a whisker to max, on a common linear axis.

    Args:
        results: The run's typed results.

    Returns:
        An inline ``<svg>`` element, or a note when no attempt was timed.
    """
    lat = [(s.id, s.latency_ms) for s in results.steps]
    vmax = max([v for _, d in lat for v in (d.max, d.p95, d.p50) if v is not None] + [0.0])
    if vmax <= 0:  # an in-process endpoint (mock, python) or cached attempts: no axis of zeros
        timed = any(d.p50 is not None for _, d in lat)
        return (
            '<p class="note" data-chart="latency-none">'
            + (
                "Every attempt reported 0 ms (an in-process endpoint, e.g. mock without latency_ms): "
                "no latency to chart."
                if timed
                else "No timed attempts (cached or none): no latency to chart."
            )
            + "</p>"
        )
    top_v = _nice(vmax)
    row_h, top = 30, 24
    h = top + row_h * len(lat) + 30
    x0, x1 = LABEL_W, W - 120

    def sx(v: float) -> float:
        return x0 + (x1 - x0) * min(v, top_v) / top_v

    parts = [f'<text class="lab" x="{x0}" y="14">▮ to p50  ▭ p50–p95  ─ to max (ms)</text>']
    for t in _ticks(0.0, top_v):
        parts.append(f'<line class="grid" x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top - 4}" y2="{h - 26}"/>')
        parts.append(f'<text class="lab" x="{sx(t):.1f}" y="{h - 10}" text-anchor="middle">{t:g}</text>')
    for i, (name, d) in enumerate(lat):
        y = top + i * row_h + row_h / 2
        p50, p95, mx = d.p50, d.p95, d.max
        parts.append(
            f'<text class="lab" x="{x0 - 8}" y="{y + 4:.1f}" text-anchor="end">{_e(truncate(name, 18))}</text>'
        )
        if p50 is None:
            parts.append(f'<text class="lab" x="{x0 + 4}" y="{y + 4:.1f}">no attempts</text>')
            continue
        parts.append(
            f'<rect class="p50" x="{x0}" y="{y - 6:.1f}" width="{max(sx(p50) - x0, 1.0):.1f}" height="12">'
            f"<title>{_e(name)}: p50 {ms(p50)} ms</title></rect>"
        )
        if p95 is not None:
            parts.append(
                f'<rect class="p95" x="{sx(p50):.1f}" y="{y - 6:.1f}" width="{max(sx(p95) - sx(p50), 1.0):.1f}" '
                f'height="12"><title>{_e(name)}: p95 {ms(p95)} ms</title></rect>'
            )
        if mx is not None:
            parts.append(
                f'<line class="whisker" x1="{sx(p95 or p50):.1f}" x2="{sx(mx):.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
                f'<line class="whisker" x1="{sx(mx):.1f}" x2="{sx(mx):.1f}" y1="{y - 6:.1f}" y2="{y + 6:.1f}">'
                f"<title>{_e(name)}: max {ms(mx)} ms</title></line>"
            )
        parts.append(f'<text class="val" x="{x1 + 8}" y="{y + 4:.1f}">{ms(p50)} · {ms(p95)} · {ms(mx)}</text>')
    return _svg("latency", h, parts, "Latency per step")


def _what_if(results: Results) -> str:
    if not results.what_if:
        return ""
    body = "".join(
        f"<tr><td><code>{_e(w.step)}</code></td><td class=n>{w.retries_now}→{w.retries_then}</td>"
        f"<td class=n>{pct(w.first_try_rate)}</td><td class=n>{pct(w.recovery_rate)}</td>"
        f"<td class=n>{pct(w.end_to_end_now)}</td><td class=n>{pct(w.end_to_end_independent)}</td>"
        f"<td class=n>{pct(w.end_to_end_measured)}</td></tr>"
        for w in results.what_if
    )
    return (
        "<section><h2>What if: one more retry on a step</h2><table><thead><tr><th>step</th><th>retries</th>"
        "<th>1st try</th><th>measured recovery</th><th>e2e now</th><th>e2e (independence)</th>"
        "<th>e2e (measured recovery)</th></tr></thead><tbody>" + body + "</tbody></table></section>"
    )


def _failures(results: Results) -> str:
    rows = []
    omitted = 0
    for s in results.steps:
        omitted += s.failures_omitted
        for f in s.failures:
            what = f.outcome if not f.error_kind else f"{f.outcome}/{f.error_kind}"
            rows.append(
                f"<tr><td><code>{_e(s.id)}</code></td><td><code>{_e(f.case)}[{_e(f.trial)}]</code></td>"
                f"<td>{_e(what)}</td><td>{_e(f.reason)}</td><td><pre>{_e((f.output or '')[:400])}"
                "</pre></td></tr>"
            )
    if not rows:
        return "<section><h2>Failing units</h2><p>None.</p></section>"
    note = f"<p>{omitted} more failing units are not stored in results.json.</p>" if omitted else ""
    return (
        f'<section><h2>Failing units ({len(rows)})</h2><input id="filter" type="search" '
        'placeholder="filter by step, case, reason…" aria-label="filter failing units">'
        '<div class="scroll"><table id="failures"><thead><tr><th>step</th><th>unit</th><th>outcome</th>'
        "<th>reason</th><th>output excerpt</th></tr></thead><tbody>"
        + "".join(rows)
        + f"</tbody></table></div>{note}</section>"
    )


def _svg(kind: str, h: int, parts: Sequence[str], title: str) -> str:
    return (
        f'<svg class="chart" data-chart="{kind}" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>' + "".join(parts) + "</svg>"
    )


def _axis_y(left: int, top: int, plot_h: int, width: int) -> str:
    out = []
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - t)
        out.append(
            f'<line class="grid" x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="lab" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{t * 100:g}%</text>'
        )
    return "".join(out)


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    step = _nice((hi - lo) / count) if hi > lo else 1.0
    start = math.ceil(lo / step) * step
    out, v = [], start
    while v <= hi + 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def _nice(v: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above ``v``."""
    if v <= 0:
        return 1.0
    exp = math.floor(math.log10(v))
    for m in (1, 2, 5, 10):
        if m * 10**exp >= v - 1e-12:
            return float(m * 10**exp)
    return float(10 ** (exp + 1))


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:0 16px 40px;color:#1f2328;background:#fff}
header{border-bottom:4px solid #999;padding:12px 0}header.pass{border-color:#1a7f37}header.fail{border-color:#cf222e}header.error{border-color:#bf8700}
h1{margin:0;font-size:22px}h2{font-size:17px;margin:26px 0 8px}.sub{color:#57606a;margin:4px 0}
.verdict{font-weight:700;font-size:18px}.pass .verdict{color:#1a7f37}.fail .verdict{color:#cf222e}.error .verdict{color:#bf8700}
.big{font-size:18px;font-weight:600}table{border-collapse:collapse;font-size:13px}th,td{border-bottom:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.bad td{background:#ffebe9}tr.ok td:nth-child(2){color:#1a7f37}tr.bad td:nth-child(2){color:#cf222e;font-weight:700}
.scroll{overflow-x:auto}pre{margin:0;white-space:pre-wrap;max-width:380px;font-size:12px}code{font-size:12px}
svg.chart{max-width:100%;height:auto;display:block}svg text{font-size:11px;fill:#57606a}svg text.val{fill:#1f2328;font-weight:600}
.alive{fill:#0969da}.lost{fill:#cf222e;opacity:.75}.lostlabel{fill:#cf222e !important}.grid{stroke:#eaeef2}
.whisker{stroke:#1f2328;stroke-width:1.5}.rate{fill:#0969da}.iso{fill:none;stroke:#bf8700;stroke-width:2}
table.steps th{white-space:normal;max-width:96px;vertical-align:bottom}table.steps td{white-space:nowrap}table.steps td:nth-child(n+2){padding:4px 6px}
.kind{display:inline-block;white-space:nowrap;margin:0 4px 2px 0}table.steps td .kind{font-size:12px}.note{color:#57606a}.p50{fill:#0969da}.p95{fill:#54aeff}
#filter{margin:0 0 8px;padding:4px 8px;width:320px}footer{margin-top:30px;color:#8c959f;font-size:12px}
"""

JS = """
(function(){
  var f=document.getElementById('filter'),t=document.getElementById('failures');
  if(f&&t){f.addEventListener('input',function(){var q=f.value.toLowerCase();
    t.querySelectorAll('tbody tr').forEach(function(r){r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':'';});});}
  var charts=document.querySelectorAll('svg.chart'),ok=charts.length>0;
  charts.forEach(function(c){var b=c.getBBox();var n=c.querySelectorAll('rect,circle,line,path').length;
    c.setAttribute('data-marks',n);if(!(b.width>0&&b.height>0&&n>0))ok=false;});
  document.body.setAttribute('data-rendered',ok?'yes':'no');
})();
"""
