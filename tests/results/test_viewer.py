"""The HTML report as a viewer: every kept unit openable to the detail of ``relcheck show``,
filters, a search box, ``#unit=CASE/TRIAL`` opening on load — checked statically and in
headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reliability_cli.reports import render
from reliability_cli.results.schema import load as load_results
from tests.core.helpers import LONG, SECRET, TEAM, show_handler, show_pipeline
from tests.endpoints.helpers import raw_server, run


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any], Path]:
    tmp = tmp_path_factory.mktemp("viewer")
    mp = pytest.MonkeyPatch()
    mp.setenv("SHOW_TEST_KEY", SECRET)
    mp.setenv("SHOW_TEAM_TOKEN", TEAM)
    try:
        with raw_server(show_handler([])) as url:
            path = show_pipeline(tmp, url)
            # a model output that tries to be markup
            text = (
                path.with_name("cases.jsonl")
                .read_text()
                .replace('"reply": "c"', '"reply": "<script>alert(1)</script>c"')
            )
            path.with_name("cases.jsonl").write_text(text)
            run(path, tmp / "run", trials=2, concurrency=1)
    finally:
        mp.undo()
    model = load_results(tmp / "run")
    return render(model, "html"), model.to_dict(), tmp


def _units(html: str) -> list[str]:
    return re.findall(r'<details class="unit [a-z]+" data-unit="([^"]+)"', html)


def test_every_unit_is_in_the_viewer_with_its_detail(report: tuple[str, dict[str, Any], Path]) -> None:
    html, results, _ = report
    assert sorted(_units(html)) == sorted(f"{u['case']}/{u['trial']}" for u in results["units"])
    assert "LONG\nREPLY: &lt;script&gt;alert(1)&lt;/script&gt;c" in html  # the rendered prompt, escaped
    assert "<script>alert(1)" not in html
    assert LONG in html  # the full output
    assert "create_ticket({" in html and "&#34;priority&#34;: &#34;high&#34;" in html  # tool call arguments
    assert "✗ fail <code>tool-call</code>" in html and "✓ pass <code>contains</code>" in html
    assert "HTTP 500" in html  # the retried error
    assert SECRET not in html and TEAM not in html
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)  # still self-contained
    for select in ("f-step", "f-outcome", "f-kind", "f-tag", "f-q"):
        assert f'id="{select}"' in html
    assert "<option>http_500</option>" not in html  # filters list final error kinds only
    assert "<option>x</option>" in html and "<option>y</option>" in html


def test_without_the_run_directory_the_failures_table_stands(
    report: tuple[str, dict[str, Any], Path], tmp_path: Path
) -> None:
    html, results, tmp = report
    doc = (tmp / "run" / "results.json").read_text()
    moved = tmp_path / "results.json"
    moved.write_text(doc.replace(json.dumps(results["run"]["dir"]), '"/nonexistent/run"'))
    out = render(load_results(moved), "html")
    assert "<details" not in out and 'id="failures"' in out


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _dom(browser: str, page: Path, fragment: str, tmp: Path) -> str:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=2000",
    ]
    profile = tmp / f"profile-{abs(hash(fragment))}"
    out = subprocess.run(
        [browser, *flags, f"--user-data-dir={profile}", "--dump-dom", page.as_uri() + fragment],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "HOME": str(tmp)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _visible(dom: str) -> list[str]:
    out = []
    for attrs in re.findall(r"<details ([^>]*)>", dom):
        if 'class="unit' in attrs and " hidden" not in f" {attrs}":
            out.append(re.search(r'data-unit="([^"]+)"', attrs).group(1))  # type: ignore[union-attr]
    return out


def test_viewer_in_headless_chromium(report: tuple[str, dict[str, Any], Path], tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (`.ci/run` installs Debian's chromium with apt-get)")
    html, results, _ = report
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    dom = _dom(browser, page, "#unit=c/2", tmp_path)
    opened = re.findall(r'<details class="unit [a-z]+" data-unit="([^"]+)"[^>]*\sopen=""', dom)
    assert opened == ["c/2"]
    start = dom.index('data-unit="c/2"')
    detail = dom[start : dom.index("</details>", start)]
    assert "REPLY: &lt;script&gt;alert(1)&lt;/script&gt;c" in detail  # the unit's prompt is in the rendered DOM
    assert "contains" in detail and "does not contain" in detail  # and its check's reason
    assert len(_visible(dom)) == len(results["units"])  # no filter: every unit
    passing = sorted(f"{u['case']}/{u['trial']}" for u in results["units"] if u["passed"])
    assert sorted(_visible(_dom(browser, page, "#outcome=pass", tmp_path))) == passing
    assert sorted(_visible(_dom(browser, page, "#step=act&outcome=fail", tmp_path))) == ["a/1", "a/2"]
    assert sorted(_visible(_dom(browser, page, "#tag=y", tmp_path))) == ["b/1", "b/2"]
    assert sorted(_visible(_dom(browser, page, "#q=THE-END", tmp_path))) == ["c/1", "c/2"]
    assert 'id="f-count">4 of 6 units' in _dom(browser, page, "#tag=x&outcome=fail&step=classify", tmp_path)


def test_report_command_finds_the_run_directory(
    report: tuple[str, dict[str, Any], Path], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``relcheck report RUN_DIR --format html`` from another working directory still has the detail."""
    _, results, tmp = report
    monkeypatch.chdir(tmp_path)
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp / "run", moved)
    doc = (moved / "results.json").read_text()
    (moved / "results.json").write_text(doc.replace(json.dumps(results["run"]["dir"]), '"/nonexistent/run"'))
    assert "/nonexistent/run" in (moved / "results.json").read_text()
    code, out, _ = cli("report", moved, "--format", "html")
    assert code == 0 and len(_units(out)) == len(results["units"])
