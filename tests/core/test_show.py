"""``relcheck show``: a unit read whole — request, full output, tool calls, every check — from
the run directory, at any width, on finished and interrupted runs."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from reliability_cli.show import Selection, load_units, printable, render, to_json
from tests.core.helpers import LONG, SECRET, TEAM, show_handler, show_pipeline
from tests.endpoints.helpers import raw_server, run


@pytest.fixture
def finished_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[dict[str, Any]]]:
    monkeypatch.setenv("SHOW_TEST_KEY", SECRET)
    monkeypatch.setenv("SHOW_TEAM_TOKEN", TEAM)
    seen: list[dict[str, Any]] = []
    with raw_server(show_handler(seen)) as url:
        path = show_pipeline(tmp_path, url)
        run(path, tmp_path / "run", trials=2, concurrency=1)
    return tmp_path / "run", seen


def _text(shown: Any, width: int) -> str:
    from rich.console import Console

    buf = StringIO()
    render(shown, Console(file=buf, width=width, color_system=None, highlight=False))
    return buf.getvalue()


def test_a_failing_unit_is_shown_whole(finished_run: tuple[Path, list[dict[str, Any]]]) -> None:
    run_dir, seen = finished_run
    assert seen and all(r["headers"]["authorization"] == f"Bearer {SECRET}" for r in seen)  # the key was sent
    shown = load_units(run_dir, Selection(case="c", trial=2))
    (unit,) = shown.units
    assert (unit["case"], unit["trial"], unit["outcome"], unit["failed_step"]) == ("c", 2, "fail", "classify")
    assert unit["vars"] == {"q": "LONG", "reply": "c"} and unit["expect"] == {"classify": "nope"}
    att = unit["steps"][0]["attempts"][0]
    assert att["output"] == LONG  # full, not the 2 KiB journal excerpt nor a terminal-width cut
    assert len(LONG) > 700
    assert att["request"]["messages"] == [{"role": "user", "content": "LONG\nREPLY: c"}]
    assert att["sent"]["url"].endswith("/chat/completions") and att["sent"]["body"]["model"] == "m"
    assert att["checks"] == [{"type": "contains", "passed": False, "reason": att["checks"][0]["reason"]}]
    assert "nope" in att["checks"][0]["reason"]
    assert (att["tokens_in"], att["tokens_out"]) == (5, 3)


def test_retries_and_tool_calls_are_in_the_detail(finished_run: tuple[Path, list[dict[str, Any]]]) -> None:
    run_dir, _ = finished_run
    (unit,) = load_units(run_dir, Selection(case="b", trial=1)).units
    classify, act = unit["steps"]
    assert [a["outcome"] for a in classify["attempts"]] == ["error", "pass"]
    assert classify["attempts"][0]["error_kind"] == "http_500" and "boom" in classify["attempts"][0]["reason"]
    assert act["attempts"][0]["tool_calls"] == [{"name": "create_ticket", "arguments": {"priority": "high"}}]
    assert unit["outcome"] == "pass"
    # the failing tool call of case a: the check's reason in full
    (a,) = load_units(run_dir, Selection(case="a", trial=1)).units
    check = a["steps"][1]["attempts"][0]["checks"][0]
    assert check["type"] == "tool-call" and not check["passed"] and "priority" in check["reason"]


def test_no_secret_reaches_the_run_directory(finished_run: tuple[Path, list[dict[str, Any]]]) -> None:
    run_dir, seen = finished_run
    assert any(r["headers"].get("x-team") == TEAM for r in seen)
    for f in run_dir.iterdir():
        text = f.read_text(encoding="utf-8")
        assert SECRET not in text and TEAM not in text, f.name


def test_filters(finished_run: tuple[Path, list[dict[str, Any]]]) -> None:
    run_dir, _ = finished_run

    def keys(**kw: Any) -> list[tuple[str, int]]:
        return [(u["case"], u["trial"]) for u in load_units(run_dir, Selection(**kw)).units]

    assert keys() == [("a", 1), ("a", 2), ("c", 1), ("c", 2)]  # failing by default, in eval-set order
    assert keys(outcome="pass") == [("b", 1), ("b", 2)]
    assert keys(step="act") == [("a", 1), ("a", 2)]
    assert keys(step="act", outcome="pass") == [("b", 1), ("b", 2)]
    assert keys(step="classify", outcome="fail") == [("c", 1), ("c", 2)]
    assert keys(tag="y", outcome="all") == [("b", 1), ("b", 2)]
    assert keys(trial=2, tag="x") == [("a", 2), ("c", 2)]
    assert keys(outcome="error") == []
    assert keys(outcome="all", limit=3) == [("a", 1), ("a", 2), ("b", 1)]
    shown = load_units(run_dir, Selection(outcome="all", limit=3))
    assert shown.matched == 6
    assert "3 more unit(s) match" in _text(shown, 80)


@pytest.mark.parametrize("width", [80, 200])
def test_terminal_text_wraps_and_never_cuts(finished_run: tuple[Path, list[dict[str, Any]]], width: int) -> None:
    run_dir, _ = finished_run
    text = _text(load_units(run_dir, Selection(outcome="all")), width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert max(len(line) for line in lines) > width - 15  # it does use the width
    joined = " ".join(line.strip() for line in lines)
    assert "THE-END" in joined  # the long output, whole
    words = " ".join(LONG.split())
    assert words in " ".join(joined.split())  # every word, in order, across the wrapped lines
    assert "error: endpoint llm: HTTP 500" in joined
    assert 'tool call: create_ticket({"priority": "high"})' in joined
    assert "✗ fail tool-call" in joined and "✓ pass contains" in joined
    assert "attempt 2 · pass" in joined


def test_json_and_cli(finished_run: tuple[Path, list[dict[str, Any]]], cli: Any) -> None:
    run_dir, _ = finished_run
    code, out, _ = cli("show", run_dir, "--case", "b", "--trial", "2", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "relcheck.show/v1" and doc["matched"] == 1
    assert doc == json.loads(json.dumps(to_json(load_units(run_dir, Selection(case="b", trial=2)))))
    code, out, err = cli("show", run_dir, "--step", "nosuch")
    assert code == 2 and "--step nosuch" in err and "classify, act" in err
    code, out, err = cli("show", run_dir / "nosuch")
    assert code == 2 and "not a run directory" in err


def test_an_interrupted_run_is_shown(finished_run: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    """No results.json, a unit without unit_done, a torn last line: still readable."""
    run_dir, _ = finished_run
    cut = tmp_path / "cut"
    cut.mkdir()
    lines = (run_dir / "attempts.jsonl").read_text().splitlines(keepends=True)
    last_done = max(i for i, line in enumerate(lines) if '"unit_done"' in line)
    kept = lines[:last_done]  # drop the last unit's unit_done and what follows
    (cut / "attempts.jsonl").write_text("".join(kept) + '{"case": "c", "tri')
    (cut / "requests.jsonl").write_text((run_dir / "requests.jsonl").read_text())
    shown = load_units(cut, Selection(outcome="incomplete"))
    assert not shown.complete
    assert [(u["case"], u["trial"], u["outcome"]) for u in shown.units] == [("c", 2, "incomplete")]
    assert shown.units[0]["steps"][0]["attempts"][0]["output"] == LONG
    assert len(load_units(cut, Selection(outcome="all")).units) == 6


def test_a_run_without_sidecar_falls_back_to_the_journal(
    finished_run: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    run_dir, _ = finished_run
    old = tmp_path / "old"
    old.mkdir()
    (old / "attempts.jsonl").write_text((run_dir / "attempts.jsonl").read_text())
    (unit,) = load_units(old, Selection(case="c", trial=1)).units
    att = unit["steps"][0]["attempts"][0]
    assert att["request"] is None and not att["full_output"] and att["output"].startswith("Dear customer")
    assert "excerpt" in _text(load_units(old, Selection(case="c", trial=1)), 80)


def test_control_characters_are_made_visible() -> None:
    assert printable("a\x1b[31mred\x07\tb\nc") == "a\\x1b[31mred\\x07\tb\nc"


def test_passing_units_beyond_the_budget_keep_no_detail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every unit that did not pass keeps its detail; passing ones up to PASSING_KEPT."""
    import reliability_cli.runner.details as details

    monkeypatch.setattr(details, "PASSING_KEPT", 1)
    monkeypatch.setenv("SHOW_TEST_KEY", SECRET)
    monkeypatch.setenv("SHOW_TEAM_TOKEN", TEAM)
    with raw_server(show_handler([])) as url:
        run(
            show_pipeline(tmp_path, url), tmp_path / "run", trials=3, concurrency=1
        )  # one at a time: which b trial is kept first is fixed
    lines = [json.loads(x) for x in (tmp_path / "run" / "requests.jsonl").read_text().splitlines()]
    assert lines[0] == {"schema": "relcheck.requests/v1", "passing_kept": 1}
    units = sorted((x["case"], x["trial"]) for x in lines if x.get("unit"))
    assert [k for k in units if k[0] != "b"] == [("a", 1), ("a", 2), ("a", 3), ("c", 1), ("c", 2), ("c", 3)]
    assert len([k for k in units if k[0] == "b"]) == 1  # b passes: one of its three trials kept
    shown = load_units(tmp_path / "run", Selection(case="b"))
    assert sum(att["full_output"] for u in shown.units for s in u["steps"] for att in s["attempts"]) == 3
    assert "requests.jsonl holds no detail of this attempt" in " ".join(_text(shown, 80).split())
