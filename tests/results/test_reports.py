"""JUnit, Markdown and HTML reports; the HTML one rendered in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reliability_cli.reports import render

from .helpers import run, write_pipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reports")
    pipeline = write_pipeline(
        tmp / "p",
        [("plan", 0.1, "wrong"), ("call", 0.05, "error"), ("answer", 0.08, "wrong")],
        300,
        gates="end_to_end: {min: 0.9}\nsteps: {plan: {min: 0.8}}",
    )
    outcome = run(pipeline, tmp / "r", isolate=True, trials=2)
    assert outcome.exit_code == 1  # seeded: the 0.9 end-to-end gate fails
    return outcome.results


def _junit(results, tmp_path):
    from junitparser import JUnitXml

    path = tmp_path / "junit.xml"
    path.write_text(render(results, "junit"))
    return JUnitXml.fromfile(str(path))


def test_junit_has_one_testcase_per_unit_and_per_gate(results, tmp_path):
    from junitparser import Failure, Skipped

    suites = list(_junit(results, tmp_path))
    assert len(suites) == 1 and suites[0].name == "p"
    cases = list(suites[0])
    units, gates = results.to_dict()["units"], results.to_dict()["gates"]
    assert len(cases) == len(units) + len(gates) == suites[0].tests
    names = [c.name for c in cases]
    assert names[: len(units)] == [f"{u['case']}[{u['trial']}]" for u in units]
    assert names[len(units) :] == [f"gate {g['name']}" for g in gates]
    by_name = {c.name: c for c in cases}
    for u in units:  # failing units stay visible, as skipped cases naming the step and reason
        res = by_name[f"{u['case']}[{u['trial']}]"].result
        if u["passed"]:
            assert res == []
            continue
        (r,) = res
        assert isinstance(r, Skipped)
        assert r.message.startswith(
            f"unit {'errored' if u['outcome'] == 'error' else 'failed'} at step {u['failed_step']}: "
        )
    # Only gates fail: exactly the failed ones, and no errors.
    failing = [g for g in gates if not g["passed"]]
    assert failing and suites[0].failures == len(failing) and suites[0].errors == 0
    assert suites[0].skipped == sum(1 for u in units if not u["passed"]) > 0
    failed_cases = [c.name for c in cases if any(isinstance(r, Failure) for r in c.result)]
    assert failed_cases == [f"gate {g['name']}" for g in failing]


def test_junit_of_a_passing_run_with_failing_units_has_no_failures(tmp_path):
    from junitparser import Skipped

    pipeline = write_pipeline(
        tmp_path / "p", [("plan", 0.1, "wrong"), ("call", 0.05, "error")], 200, gates="end_to_end: {min: 0.5}"
    )
    outcome = run(pipeline, tmp_path / "r")
    assert outcome.exit_code == 0 and outcome.results.verdict == "pass"
    (suite,) = list(_junit(outcome.results, tmp_path))
    assert suite.failures == 0 and suite.errors == 0
    cases = list(suite)
    assert not any(r for c in cases for r in c.result if not isinstance(r, Skipped))
    assert suite.skipped == sum(1 for u in outcome.results.to_dict()["units"] if not u["passed"]) > 0


def test_junit_is_well_formed_against_the_schema_shape(results):
    import xml.etree.ElementTree as ET

    root = ET.fromstring(render(results, "junit").split("\n", 1)[1])
    assert root.tag == "testsuites"
    for suite in root:
        assert suite.tag == "testsuite" and {"name", "tests", "failures", "errors"} <= set(suite.attrib)
        for child in suite:
            assert child.tag in ("properties", "testcase")
            if child.tag == "testcase":
                assert {"name", "classname"} <= set(child.attrib)
                assert len([c for c in child if c.tag in ("failure", "error", "skipped")]) <= 1


def test_markdown_summary(results):
    md = render(results, "markdown", show_failures=2)
    assert md.startswith("## ") and "### Steps" in md and "### Gates" in md
    assert "| `plan` |" in md and "isolated" in md
    assert "Failing units (up to 2 per step)" in md


def test_html_is_self_contained(results):
    html = render(results, "html")
    assert html.count('<svg class="chart"') == 2  # the in-process mock reports 0 ms: a note, not an empty axis
    for kind in ("waterfall", "rates", "latency-none"):
        assert f'data-chart="{kind}"' in html
    # nothing is fetched at view time: no src/href to another place, no @import, no url()
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "@import" not in html and "url(" not in html
    failures = sum(len(s.failures) for s in results.steps)
    assert html.count('<details class="unit fail') + html.count('<details class="unit error') >= failures
    # every failing unit is listed, openable


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_html_renders_in_headless_chromium(results, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (`.ci/run` installs Debian's chromium with apt-get)")
    page = tmp_path / "report.html"
    page.write_text(render(results, "html"), encoding="utf-8")
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "html-report.png"
    if shot.exists():
        shot.unlink()
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
    env = {**os.environ, "HOME": str(tmp_path)}

    def chrome(*extra: str) -> subprocess.CompletedProcess[str]:
        profile = tmp_path / f"profile-{len(extra)}-{extra[0][:8].strip('-')}"
        return subprocess.run(
            [browser, *flags, f"--user-data-dir={profile}", *extra, page.as_uri()],
            capture_output=True,
            text=True,
            timeout=90,
            env=env,
        )

    dom = chrome("--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-rendered="yes"' in dom.stdout, "the page's check found a chart with no laid-out box"
    marks = [int(m) for m in re.findall(r'data-marks="(\d+)"', dom.stdout)]
    assert len(marks) == 2 and all(m > 0 for m in marks)
    assert chrome(f"--screenshot={shot}", "--window-size=1200,2400").returncode == 0
    assert shot.exists() and shot.stat().st_size > 10_000
