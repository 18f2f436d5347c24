"""``relcheck history PIPELINE --html F``: the rates of a pipeline's runs over time as one
self-contained HTML file (inline SVG; ``templates/history.html.j2``, autoescape).

Input is the ``relcheck.history/v1`` document of :func:`reliability_cli.runs.history_json`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..textfmt import pct, pct_range

WIDTH, HEIGHT, LEFT, TOP, BOTTOM = 760, 200, 48, 12, 24


def _chart(label: str, series: Sequence[Mapping[str, Any] | None], ids: Sequence[str], lo: float) -> dict[str, Any]:
    n = len(series)

    def sx(i: int) -> float:
        return round(LEFT + (WIDTH - LEFT - 20) * (i / (n - 1) if n > 1 else 0.5), 1)

    def sy(v: float) -> float:
        return round(TOP + (HEIGHT - TOP - BOTTOM) * (1 - (v - lo) / (1 - lo)), 1)

    points, upper, lower = [], [], []
    for i, s in enumerate(series):
        if not s or s.get("rate") is None:
            continue
        ci = s.get("ci") or {}
        points.append(
            {
                "x": sx(i),
                "y": sy(s["rate"]),
                "title": f"{ids[i]}: {pct(s['rate'])}" + (f" ({pct_range(ci['low'], ci['high'])})" if ci else ""),
            }
        )
        if ci:
            upper.append((sx(i), sy(ci["high"])))
            lower.append((sx(i), sy(ci["low"])))
    line = "M" + " L".join(f"{p['x']},{p['y']}" for p in points) if len(points) > 1 else ""
    band = ""
    if len(upper) > 1:
        band = "M" + " L".join(f"{x},{y}" for x, y in upper + lower[::-1]) + " Z"
    return {"label": label, "points": points, "line": line, "band": band}


def render_history_html(doc: Mapping[str, Any]) -> str:
    """A pipeline's rates over its runs as one self-contained HTML page.

    Args:
        doc: The ``relcheck.history/v1`` document (:func:`reliability_cli.runs.history_json`).

    Returns:
        The HTML page: one chart per series (end to end, then each step) with interval bands,
        the pipeline changes marked, and a table of the runs.
    """
    from .viewer import _environment

    runs = doc["runs"]
    ids = [r["id"] for r in runs]
    series = {"end to end": [r["end_to_end"] for r in runs]}
    for step in doc["steps"]:
        series[step] = [r["steps"].get(step) for r in runs]
    values = [
        v
        for s in series.values()
        for x in s
        if x
        for v in (x.get("rate"), (x.get("ci") or {}).get("low"))
        if v is not None
    ]
    lo = max(0.0, (int(min(values, default=0.0) * 10) / 10) - 0.1) if values else 0.0
    lo = min(lo, 0.9)
    charts = [_chart(label, s, ids, lo) for label, s in series.items()]
    step_ticks = 0.1 if 1 - lo <= 0.5 else 0.25
    ticks, t = [], lo
    while t <= 1.0 + 1e-9:
        ticks.append({"y": round(TOP + (HEIGHT - TOP - BOTTOM) * (1 - (t - lo) / (1 - lo)), 1), "label": pct(t, 0)})
        t += step_ticks
    n = len(runs)
    changed = (
        [
            round(LEFT + (WIDTH - LEFT - 20) * (i / (n - 1)), 1)
            for i in range(1, n)
            if runs[i].get("pipeline_hash") != runs[i - 1].get("pipeline_hash")
        ]
        if n > 1
        else []
    )
    rows = [
        {
            "id": r["id"],
            "started_at": r.get("started_at"),
            "units": r.get("units"),
            "rate": pct(r["end_to_end"].get("rate")),
            "ci": pct_range(ci["low"], ci["high"]) if (ci := r["end_to_end"].get("ci")) else "",
            "verdict": r.get("verdict"),
        }
        for r in runs
    ]
    template = _environment().get_template("history.html.j2")
    return str(
        template.render(
            pipeline=doc["pipeline"],
            runs=rows,
            charts=charts,
            ticks=ticks,
            changed=changed,
            width=WIDTH,
            height=HEIGHT,
            left=LEFT,
            top=TOP,
            bottom=BOTTOM,
        )
    )
