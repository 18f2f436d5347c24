"""Every report reads the typed ``Results`` (no dict round-trip), and formats every rate, interval
and gap through ``textfmt`` — the same figure reads the same in every report."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path
from typing import Any

import pytest

from reliability_cli.reports import FORMATS, render
from reliability_cli.reports.history import render_history_html
from reliability_cli.reports.terminal import describe_stop
from reliability_cli.results.schema import Results, Stop
from reliability_cli.textfmt import gap_text, independence_gap, pct, pct_range, points
from tests.helpers import results_from

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "reliability_cli"

ENDPOINT = {
    "name": "llm",
    "type": "openai",
    "requests": 120,
    "status_429": 2,
    "status_503": 1,
    "throttled_share": 0.025,
    "congestion_errors": 0,
    "tokens": 9000,
    "duration_s": 3.0,
    "requests_per_min": 2381.4,
    "tokens_per_min": 180000.0,
    "limit_rpm": 2400.0,
    "limit_tpm": None,
    "concurrency_final": 27,
    "concurrency_peak": 30,
    "in_flight_peak": 29,
    "ceiling": 64,
    "paused_s": 0.0,
    "adaptive": True,
}
WHAT_IF = {
    "step": "plan",
    "retries_now": 0,
    "retries_then": 1,
    "first_try_rate": 0.8,
    "rate_now": 0.8,
    "recovery_rate": 0.5,
    "step_rate_independent": 0.96,
    "step_rate_measured": 0.9,
    "end_to_end_now": 0.72,
    "end_to_end_independent": 0.864,
    "end_to_end_measured": 0.81,
}
FAILURE = {"case": "c<2>", "trial": 1, "outcome": "error", "error_kind": "timeout", "reason": "slow", "output": "x"}


def _every_feature() -> Results:
    """A run with every optional block a report shows: isolated rows, graph figures, trials,
    the independence gap, endpoints, what-if, gates, failures and units."""
    iso = {"reached": 10, "passed": 9, "failed": 1, "errors": 0, "rate": 0.9, "ci": {"low": 0.6, "high": 0.98}}
    iso |= {"first_try_rate": 0.9, "attempts": 10, "skipped_no_gold": 0}
    step = {"reached": 10, "passed": 8, "failed": 1, "errors": 1, "rate": 0.8, "ci": {"low": 0.49, "high": 0.943}}
    step |= {"first_try_rate": 0.8, "recovery_rate": 0.5, "recovery_rate_independent": 0.8, "retried": 2}
    step |= {"attempts": 12, "tokens": {"input": 1200, "output": 300}, "cost_usd": 0.0123, "throttled": 3}
    step |= {"failures": [FAILURE], "failures_omitted": 1, "latency_ms": {"p50": 12.0, "p95": 30.0, "max": 41.0}}
    step |= {"isolated": iso, "reach_share": 1.0, "visits": {"total": 14, "per_unit": 1.4}, "survivors": 8}
    units = [
        {"case": f"c{i}", "trial": 1, "passed": i > 2, "failed_step": None if i > 2 else "plan"}
        | {"outcome": "pass" if i > 2 else "error", "error_kind": None if i > 2 else "timeout", "attempts": 1}
        | {"index": i}
        for i in range(10)
    ]
    e2e = {"passed": 8, "total": 10, "rate": 0.8, "ci": {"low": 0.49, "high": 0.943}, "cases": 5}
    e2e |= {"infra_errors": 1, "error_rate": 0.1, "pass_at_k": {"2": 0.9}, "pass_hat_k": {"2": 0.7}}
    e2e |= {"flaky": ["c1"], "independence_prediction": 0.9, "independence_gap": -0.1}
    e2e |= {"independence_gap_ci": {"low": -0.3, "high": 0.1}}
    run = {"pipeline": "every", "cases": 5, "trials": 2, "isolate": True, "retries": 0, "dir": None}
    run |= {"stop_reason": "endpoint_rejected:llm:auth"}
    gate = {"name": "end_to_end", "threshold": 0.9, "observed": 0.8, "passed": False, "detail": "observed 0.8 < 0.9"}
    return results_from(
        [{"id": "plan", **step}],
        end_to_end=e2e,
        run=run,
        units=units,
        what_if=[WHAT_IF],
        endpoints=[ENDPOINT],
        gates=[gate],
        verdict="error",
        exit_code=3,
    )


@pytest.fixture
def no_dicts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make turning the results into plain data an error: a report that round-trips fails."""

    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a report turned the typed Results into a dict")

    monkeypatch.setattr(Results, "to_dict", refuse)
    monkeypatch.setattr(Results, "model_dump", refuse)


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "json"])
def test_every_format_renders_from_the_typed_results_without_a_dict(fmt: str, no_dicts: None) -> None:
    text = render(_every_feature(), fmt, width=80)
    assert "every" in text and ("80.0%" in text or 'name="end_to_end_rate" value="0.8"' in text)


def test_emit_reports_prints_and_writes_without_a_dict(
    no_dicts: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from reliability_cli.cli.render import emit_reports

    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    files = {name: tmp_path / f"r.{name}" for name in ("junit", "markdown", "html")}
    emit_reports(_every_feature(), **{k: str(v) for k, v in files.items()})
    assert all(p.read_text(encoding="utf-8") for p in files.values())
    assert "Verdict: ERROR (exit 3)" in capsys.readouterr().out
    emit_reports(_every_feature(), quiet=True)
    assert capsys.readouterr().out == "relcheck: error (exit 3); e2e 80.0%; run synthetic\n"


def test_the_same_figure_reads_the_same_in_every_report() -> None:
    results = _every_feature()
    terminal, markdown, html = (render(results, fmt, width=120) for fmt in ("terminal", "markdown", "html"))
    interval = pct_range(0.49, 0.943)
    assert interval == "49.0–94.3%"
    assert f"95% CI {interval})" in terminal  # end to end
    assert f"95% CI {interval})" in markdown and f"| {interval} |" in markdown
    assert f"95% CI {interval})" in html and f"<td class=n>{interval}</td>" in html
    assert "49.0%–94.3%" not in html  # the HTML report wrote each end with its own % before
    gap = gap_text(-0.1, results.end_to_end.independence_gap_ci)
    assert gap == "gap -10.0 pts (CI -30.0…+10.0 pts: consistent with independent steps)"
    assert gap in terminal and gap in markdown and gap in html
    assert "pass@2 90.0%" in terminal and "pass@2 90.0%" in markdown and "pass@2 90.0%" in html


def test_terminal_shows_a_missing_interval_as_a_dash_not_a_dash_percent() -> None:
    text = render(results_from([{"id": "a"}]), "terminal", width=80)
    assert "End to end: 0/0 = —  (95% CI —)" in text.splitlines()


def test_textfmt_formatters() -> None:
    assert pct(0.8333) == "83.3%" and pct(None) == "—" and pct(0.5, 0) == "50%"
    assert pct_range(0.3, 0.95) == "30.0–95.0%" and pct_range(0.3, 0.95, unit=False) == "30.0–95.0"
    assert points(-0.0001) == "+0.0 pts" and points(0.017) == "+1.7 pts"
    # the plain-data form (results.json) and the typed form agree
    for ci in (None, {"low": -0.05, "high": -0.01}, {"low": 0.01, "high": 0.04}):
        typed = results_from([], end_to_end={"independence_gap": -0.03, "independence_gap_ci": ci}).end_to_end
        assert gap_text(typed.independence_gap, typed.independence_gap_ci) == independence_gap(
            {"independence_gap": -0.03, "independence_gap_ci": ci}
        )
    assert gap_text(None, None) == "gap —"


def test_history_chart_writes_intervals_like_the_reports() -> None:
    doc = {
        "schema": "relcheck.history/v1",
        "pipeline": "p",
        "steps": [],
        "runs": [
            {"id": f"r{i}", "started_at": None, "pipeline_hash": "h", "units": 4, "verdict": "pass"}
            | {"end_to_end": {"rate": 0.75, "ci": {"low": 0.3, "high": 0.95}}, "steps": {}}
            for i in range(2)
        ],
    }
    page = render_history_html(doc)
    assert "30.0–95.0%" in page and "30.0%–95.0%" not in page


def test_a_stop_without_a_kind_is_described_not_a_crash() -> None:
    results = results_from([])
    assert describe_stop(Stop("endpoint_rejected", "llm"), results) == (
        "endpoint 'llm' rejected its first requests: check its URL, model and API key"
    )
    assert describe_stop(Stop.parse("endpoint_rejected:llm:http_401") or Stop("?"), results) == (
        "endpoint 'llm' rejected its first requests (http_401): check its URL, model and API key"
    )
    assert describe_stop(Stop("endpoint_unreachable", "llm"), results) == "endpoint_unreachable:llm"


def test_no_report_keeps_a_percent_formatter_of_its_own() -> None:
    """``textfmt.pct`` is the one: no ``def _pct``/``def pct`` and no ``* 100:.1f}%`` in a report
    or in the commands that print runs (``compare`` and ``plan`` have views of their own)."""
    cli = [PACKAGE / "cli" / f"{name}.py" for name in ("render", "report", "runs", "history")]
    offenders = []
    for path in [*(PACKAGE / "reports").glob("*.py"), *cli]:
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") in ("pct", "short"):
                offenders.append(f"{path.name}: def {node.name}")
        if re.search(r"\* 100:\.\d+f\}%|:\.\d%\}", text):
            offenders.append(f"{path.name}: a rate formatted by hand")
    assert offenders == []


def test_terminal_report_is_a_renderable_of_the_typed_results(no_dicts: None) -> None:
    from rich.console import Console

    from reliability_cli.reports.terminal import TerminalReport

    buf = io.StringIO()
    Console(file=buf, width=120, color_system=None, no_color=True).print(TerminalReport(_every_feature()))
    text = buf.getvalue()
    assert "llm  2,381 req/min (limit 2,400) · 180,000 tokens/min · concurrency 27 · 3 throttled (2.5%)" in text
    assert "Graph: reach and visits per node" in text and "Isolated pass" in text and "Usage" in text
    assert "endpoint 'llm' rejected its first requests (auth)" in text


def test_the_viewer_uses_the_results_it_renders_instead_of_reading_results_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .helpers import run, write_pipeline

    outcome = run(write_pipeline(tmp_path / "p", [("plan", 0.5, "wrong")], 6), tmp_path / "r")
    reads: list[str] = []
    read_text = Path.read_text

    def counting(self: Path, *args: Any, **kwargs: Any) -> str:
        reads.append(self.name)
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    page = render(outcome.results, "html")
    assert "results.json" not in reads  # (it was read four times: twice per call of show.load_units)
    units = re.findall(r'<details class="unit [a-z]+" data-unit="([^"]+)"', page)
    assert units == [f"case-{i:05d}/1" for i in range(6) if not outcome.results.units[i].passed] + [
        f"case-{i:05d}/1" for i in range(6) if outcome.results.units[i].passed
    ]


def test_show_lists_the_journal_when_results_json_is_unreadable(tmp_path: Path) -> None:
    from reliability_cli.show import Selection, load_units

    from .helpers import run, write_pipeline

    run(write_pipeline(tmp_path / "p", [("plan", 0.5, "wrong")], 4), tmp_path / "r")
    (tmp_path / "r" / "results.json").write_text('{"schema": "relcheck.results/v1", "steps": 3}')
    shown = load_units(tmp_path / "r", Selection(outcome="all"))
    assert len(shown.units) == 4 and shown.complete and shown.steps == []
