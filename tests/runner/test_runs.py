"""``relcheck runs``, ``--prune --keep N`` (a locked run survives) and ``relcheck history``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reliability_cli.errors import UsageError
from reliability_cli.runner import RunOptions, run_eval
from reliability_cli.runner.resume import RunLock
from reliability_cli.runs import history, list_runs, prune_runs, sparkline
from reliability_cli.stats import wilson
from tests.endpoints.helpers import write_pipeline


def _pipeline(directory: Path, fail_rate: float, name: str = "hist") -> Path:
    return write_pipeline(
        directory,
        {
            "name": name,
            "endpoints": {"m": {"type": "mock", "reply": "{{ expect.a }}", "fail_rate": fail_rate}},
            "steps": [
                {"id": "one", "endpoint": "m", "checks": [{"type": "equals", "value": "{{ expect.a }}"}]},
                {"id": "two", "endpoint": "m", "checks": [{"type": "equals", "value": "{{ expect.a }}"}]},
            ],
        },
        [{"id": f"c{i}", "expect": {"a": f"x{i}"}} for i in range(20)],
    )


@pytest.fixture
def runs_root(tmp_path: Path) -> tuple[Path, list[dict[str, Any]], Path]:
    root = tmp_path / "runs"
    results = []
    first = _pipeline(tmp_path / "p", 0.4)
    for k, rate in enumerate((0.4, 0.3, 0.1, 0.0)):
        path = _pipeline(tmp_path / "p", rate)
        results.append(run_eval(str(path), RunOptions(out=str(root / f"2026-run-{k}"), seed=k)).results.to_dict())
    other = _pipeline(tmp_path / "q", 0.0, name="other")
    run_eval(str(other), RunOptions(out=str(root / "2026-run-9")))
    return root, results, first


def test_runs_lists_every_run(runs_root: tuple[Path, list[dict[str, Any]], Path], cli: Any) -> None:
    root, results, _ = runs_root
    runs = list_runs(root)
    assert [r.id for r in runs] == [f"2026-run-{k}" for k in (0, 1, 2, 3, 9)]
    for info, res in zip(runs, results):
        assert info.pipeline == "hist" and info.units == 20 and info.verdict == res["verdict"]
        assert info.e2e_rate == res["end_to_end"]["rate"] and info.size_bytes > 0 and not info.locked
    code, out, _ = cli("runs", "--dir", root)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "started", "pipeline", "units", "e2e", "verdict", "size"]
    assert lines[1].split()[:4] == ["2026-run-0", runs[0].started_at.replace("+00:00", "Z"), "hist", "20"]
    assert f"{results[0]['end_to_end']['rate'] * 100:.1f}%" in lines[1]
    assert "5 run(s)" in lines[-1]
    code, out, _ = cli("runs", "--dir", root, "--json")
    assert [r["id"] for r in json.loads(out)] == [r.id for r in runs]


def test_an_interrupted_run_is_listed_incomplete(runs_root: tuple[Path, list[dict[str, Any]], Path]) -> None:
    root, _, _ = runs_root
    (root / "2026-run-1" / "results.json").unlink()
    info = next(r for r in list_runs(root) if r.id == "2026-run-1")
    assert info.verdict == "incomplete" and info.e2e_rate is None
    assert len(history("hist", root).runs) == 3


def test_prune_keeps_the_newest_and_every_locked_run(
    runs_root: tuple[Path, list[dict[str, Any]], Path], cli: Any
) -> None:
    root, _, _ = runs_root
    lock = RunLock(root / "2026-run-0").acquire()  # as if a relcheck were resuming it
    try:
        assert [r.locked for r in list_runs(root)] == [True, False, False, False, False]
        code, out, _ = cli("runs", "--dir", root, "--prune", "--keep", "2")
        assert code == 0
        assert "kept " + str(root / "2026-run-0") in out and "2 run(s) deleted" in out
    finally:
        lock.release()
    assert sorted(p.name for p in root.iterdir()) == ["2026-run-0", "2026-run-3", "2026-run-9"]
    assert (root / "2026-run-0" / "results.json").exists()
    pruned = prune_runs(0, root)
    assert len(pruned.deleted) == 3 and not list(root.iterdir())
    code, _, err = cli("runs", "--dir", root, "--prune")
    assert code == 2 and "--keep" in err


def test_history_follows_the_rates(runs_root: tuple[Path, list[dict[str, Any]], Path], cli: Any) -> None:
    root, results, first = runs_root
    hist = history(str(first), root)  # by file; and by name
    assert (
        [r.id for r in hist.runs] == [f"2026-run-{k}" for k in range(4)] == [r.id for r in history("hist", root).runs]
    )
    assert hist.steps == ["one", "two"]
    for info, res in zip(hist.runs, results):
        e2e = res["end_to_end"]
        assert info.e2e_rate == e2e["rate"]
        low, high = wilson(e2e["passed"], e2e["total"], 0.95)
        assert info.e2e_ci == pytest.approx({"low": low, "high": high})
    rates = [r.e2e_rate for r in hist.runs]
    assert rates[-1] == 1.0 and rates[0] < rates[-1]
    code, out, _ = cli("history", "hist", "--dir", root)
    assert code == 0
    e2e_line = next(line for line in out.splitlines() if line.startswith("end to end"))
    assert sparkline(rates) in e2e_line and e2e_line.split()[-1] == "83.9–100.0"
    assert out.count("pipeline changed") == 3  # fail_rate edited between runs: a new pipeline hash
    code, out, _ = cli("history", "hist", "--dir", root, "--json")
    doc = json.loads(out)
    assert [r["end_to_end"]["rate"] for r in doc["runs"]] == rates
    assert doc["runs"][0]["steps"]["one"]["rate"] == results[0]["steps"][0]["rate"]
    code, _, err = cli("history", "nosuch", "--dir", root)
    assert code == 2 and "no finished run" in err and "hist, other" in err
    with pytest.raises(UsageError):
        history("nosuch", root)


def test_sparkline() -> None:
    assert sparkline([0.0, 0.5, 1.0]) == "▁▅█"
    assert sparkline([0.95, 0.96, None, 0.97]) == "▇▇ █"  # a 2-point wobble is a small step
    assert sparkline([1.0, 1.0]) == "██"
    assert sparkline([None]) == " "


def test_history_html_chart(runs_root: tuple[Path, list[dict[str, Any]], Path], cli: Any, tmp_path: Path) -> None:
    import re

    root, results, _ = runs_root
    out = tmp_path / "history.html"
    code, _, err = cli("history", "hist", "--dir", root, "--html", out)
    assert code == 0, err
    html = out.read_text()
    assert re.findall(r'data-series="([^"]+)"', html) == ["end to end", "one", "two"]
    e2e = html[html.index('data-series="end to end"') : html.index('data-series="one"')]
    titles = re.findall(r"<title>([^<]+)</title>", e2e)
    assert titles == [
        # the interval as every report writes it (README): 18.1–56.7%, one % after both ends
        f"2026-run-{k}: {r['end_to_end']['rate'] * 100:.1f}% ({r['end_to_end']['ci']['low'] * 100:.1f}"
        f"–{r['end_to_end']['ci']['high'] * 100:.1f}%)"
        for k, r in enumerate(results)
    ]
    assert html.count('class="changed"') == 3 * 3  # three pipeline changes, one mark per chart
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    code, _, err = cli("history", "hist", "--dir", root, "--html", root / "2026-run-0" / "chart.html")
    assert code == 2 and "inside a run directory" in err
