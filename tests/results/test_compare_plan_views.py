"""``compare`` and ``plan`` as people read them: at 80 and 200 columns, wrapped and never cut,
an improvement worded as a gain; and their ``--json`` exactly as before the typed results."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from rich.cells import cell_len

from reliability_cli.reports.compare import CompareView, UnpairedView
from reliability_cli.reports.plan import PlanView
from reliability_cli.reports.views import plain_text
from reliability_cli.results.compare import change_text, compare, row_detail
from reliability_cli.results.planning import plan
from reliability_cli.results.schema import load
from reliability_cli.results.unpaired import compare_unpaired
from reliability_cli.textfmt import signed

from . import view_inputs as vi

#: (golden file, input builder, extra arguments, exit code)
COMPARES = {
    "compare_paired": (vi.paired_pair, ["--max-drop", "0.01"], 1),
    "compare_improved": (vi.improved_pair, [], 0),
    "compare_trials": (vi.trials_pair, ["--max-drop", "0.02"], 1),
    "compare_unpaired": (vi.unpaired_pair, ["--unpaired"], 1),
}
PLANS = {
    "plan_reachable": (["--target", "0.97"], 0),
    "plan_unreachable": (["--target", "0.999", "--max-retries", "1"], 1),
}
#: a negative zero, or "drop" followed by a sign: an improvement printed as a drop
NEGATIVE_ZERO = re.compile(r"[-−]0\.0+(?![0-9]*[1-9])")
SIGNED_DROP = re.compile(r"\bdrops?\s+[-−+]")


def _args(tmp_path: Path, name: str) -> tuple[list[str], int]:
    if name in COMPARES:
        build, extra, code = COMPARES[name]
        base, cand = build(tmp_path / name)
        return ["compare", str(base), str(cand), *extra], code
    extra, code = PLANS[name]
    return ["plan", str(vi.plan_results(tmp_path / name)), *extra], code


def _key_order(value: object) -> object:
    """The keys of a JSON document, in order, recursively (values left out)."""
    if isinstance(value, dict):
        return [(k, _key_order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_key_order(v) for v in value]
    return None


@pytest.mark.parametrize("name", [*COMPARES, *PLANS])
def test_json_output_is_unchanged_by_the_typed_results(cli, tmp_path: Path, name: str) -> None:
    """Golden files written by the dict-returning code: same keys in the same order, same values."""
    args, code = _args(tmp_path, name)
    exit_code, out, _ = cli(*args, "--json", "-")
    golden = json.loads((vi.GOLDEN / f"{name}.json").read_text())
    doc = json.loads(out)  # stdout holds the JSON alone
    assert exit_code == code
    assert _key_order(doc) == _key_order(golden)
    _assert_same(doc, golden)


def _assert_same(value: object, golden: object, where: str = "") -> None:
    """Equal, floats to 1e-12 (the same arithmetic; only a platform's last bits may differ)."""
    if isinstance(golden, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        assert value == pytest.approx(golden, rel=1e-12, abs=1e-15), where
    elif isinstance(golden, dict):
        assert isinstance(value, dict) and value.keys() == golden.keys(), where
        for k in golden:
            _assert_same(value[k], golden[k], f"{where}.{k}")
    elif isinstance(golden, list):
        assert isinstance(value, list) and len(value) == len(golden), where
        for i, (v, g) in enumerate(zip(value, golden)):
            _assert_same(v, g, f"{where}[{i}]")
    else:
        assert type(value) is type(golden) and value == golden, where


def _lines(out: str) -> list[str]:
    return out.rstrip("\n").split("\n")


@pytest.mark.parametrize("name", [*COMPARES, *PLANS])
def test_fits_80_and_200_columns_wrapped_never_cut(cli, tmp_path: Path, name: str) -> None:
    args, code = _args(tmp_path, name)
    outputs = {}
    for width in (80, 200):
        exit_code, out, _ = cli(*args, env={"COLUMNS": str(width)})
        assert exit_code == code
        assert "\x1b" not in out  # not a terminal: no colour, every fact in the text
        too_wide = [line for line in _lines(out) if cell_len(line) > width]
        assert not too_wide, f"{width} columns: {too_wide}"
        assert not [line for line in _lines(out) if line != line.rstrip()], "trailing spaces"
        outputs[width] = out
    # wrapping moves words to other lines, never splits one: the same words at both widths
    assert Counter(outputs[80].split()) == Counter(outputs[200].split())
    # the table is shown whole at 80 columns (its header line), not replaced by row lines
    header = "step" if name.startswith("plan") else "row"
    assert any(line.split()[:1] == [header] for line in _lines(outputs[80]))
    for out in outputs.values():
        assert not NEGATIVE_ZERO.search(out), NEGATIVE_ZERO.search(out)
        assert not SIGNED_DROP.search(out), SIGNED_DROP.search(out)


def test_an_improvement_reads_as_a_gain_and_a_drop_as_a_drop(cli, tmp_path: Path) -> None:
    base, cand = vi.improved_pair(tmp_path / "i")
    code, out, _ = cli("compare", base, cand, env={"COLUMNS": "80"})
    assert code == 0
    assert re.search(r"End to end: gain \d+\.\d\d pts \(\d", out)
    assert "drop" not in out.replace("max_drop", "").replace("its drop exceeds", "")
    rows = [line.split() for line in _lines(out) if line.startswith(("end_to_end", "step:"))]
    assert rows and all(r[3].startswith("+") and r[-1] == "ok" for r in rows)  # delta column: signed gains
    # swapped, the same change is a drop
    code, out, _ = cli("compare", cand, base, env={"COLUMNS": "80"})
    assert code == 1 and re.search(r"End to end: drop \d+\.\d\d pts", out) and "gain" not in out
    assert re.search(r"^end_to_end .* -\d+\.\d\d .* REGRESSED$", out, re.MULTILINE)


def test_paired_rows_with_a_gain_and_without_change(tmp_path: Path) -> None:
    """One run: a step that regressed, a step that improved, steps that did not change."""
    base, cand = vi.paired_pair(tmp_path / "p")
    c = compare(load(base), load(cand), 0.01, 0.05)
    rows = {r.name: r for r in c.rows}
    assert rows["step:draft"].drop < 0 and rows["step:lookup"].drop > 0 and rows["step:plan"].drop == 0
    assert row_detail(rows["step:draft"], 0.01, 0.05).startswith("gain 0.92 pts (")
    assert row_detail(rows["step:lookup"], 0.01, 0.05).startswith("drop 6.67 pts (")
    assert row_detail(rows["step:plan"], 0.01, 0.05).startswith("no change (0.00 pts) (")
    text = plain_text([CompareView(c)], 80)
    assert re.search(r"^step:draft .* \+0\.92 .* ok$", text, re.MULTILINE)
    assert re.search(r"^step:plan .* \+0\.00 .* ok$", text, re.MULTILINE)
    assert "Steps in only one run (not compared): verify, review" in text
    assert "Verdict: REGRESSION (exit 1): 2 of 6 rows" in text


def test_change_words_and_signs_around_zero() -> None:
    assert change_text(-0.0027) == "gain 0.27 pts"
    assert change_text(0.0027) == "drop 0.27 pts"
    for tiny in (0.0, -0.0, 1e-9, -1e-9, -0.00004):
        assert change_text(tiny) == "no change (0.00 pts)"
    assert [signed(v) for v in (-1e-9, -0.0, 0.0, 0.004, -0.006, 1.5)] == [
        "+0.00",
        "+0.00",
        "+0.00",
        "+0.00",
        "-0.01",
        "+1.50",
    ]
    assert signed(-0.04, 1) == "+0.0" and signed(-0.06, 1) == "-0.1"


@pytest.mark.parametrize("width", [40, 60])
def test_narrower_than_the_table_each_row_is_one_wrapped_line(tmp_path: Path, width: int) -> None:
    base, cand = vi.paired_pair(tmp_path / "p")
    views = {
        "paired": CompareView(compare(load(base), load(cand), 0.01, 0.05)),
        "unpaired": UnpairedView(compare_unpaired(*map(load, vi.unpaired_pair(tmp_path / "u")))),
        "plan": PlanView(plan(load(vi.plan_results(tmp_path / "r")), 0.97)),
    }
    for name, view in views.items():
        wide, narrow = plain_text([view], 200), plain_text([view], width)
        assert all(cell_len(line) <= width for line in _lines(narrow)), name
        assert "───" in wide and "───" not in narrow  # no table: one line per row instead
        first = "extract" if name == "plan" else "end_to_end"
        assert re.search(rf"^  {first}: ", narrow, re.MULTILINE), name
        # the rows' figures are whole words in the narrow layout too
        for token in ("88.70%", "-6.67", "p=2.2e-13,") if name == "paired" else ():
            assert token in narrow.split(), token


def test_names_from_files_are_shown_not_interpreted(tmp_path: Path) -> None:
    from tests.helpers import results_from

    steps = [{"id": "[bold]boom[/bold]", "passed": 9, "reached": 10}]
    base = results_from(steps, {"passed": 9, "total": 10}, {"pipeline": "p\x1b[31m", "source": "eval"})
    cand = results_from(steps, {"passed": 5, "total": 10}, {"pipeline": "p\x1b[31m", "source": "traces"})
    text = plain_text([UnpairedView(compare_unpaired(base, cand))], 80, color=True)
    assert "step:[bold]boom[/bold]" in text
    assert "\x1b[31m" not in text.replace("\x1b[0m", "")  # the pipeline name's escape is shown as text


def test_plan_view_says_why_retries_cannot_help(tmp_path: Path) -> None:
    from tests.helpers import results_from

    rows = [
        {
            "id": "wrong",
            "max_attempts": 1,
            "reached": 100,
            "passed": 90,
            "first_try_rate": 0.9,
            "rate": 0.9,
            "attempts": 100,
            "attempt_outcomes": {"pass": 90, "fail": 10, "error": 0},
            "retry_on": ["error"],
        }
    ]
    p = plan(results_from(rows, {"rate": 0.9, "total": 100, "passed": 90}), 0.95)
    text = plain_text([PlanView(p)], 80)
    assert not p.reachable and "Target 95.00% is NOT reachable with ≤ 3 retries per step" in text.replace("\n", " ")
    assert "Retries cannot help:\n  wrong: retry.on [error] retries none of its failures" in text


@pytest.mark.parametrize("name", ["compare_trials", "compare_improved", "compare_unpaired"])
def test_markdown_says_gain_or_drop_and_never_minus_zero(cli, tmp_path: Path, name: str) -> None:
    args, code = _args(tmp_path, name)
    md = tmp_path / "c.md"
    assert cli(*args, "--markdown", md)[0] == code
    text = md.read_text()
    assert not NEGATIVE_ZERO.search(text) and not SIGNED_DROP.search(text)
    if name == "compare_improved":
        assert re.search(r"End to end: gain \d+\.\d\d pts\.", text) and "✅ relcheck compare" in text
    if name == "compare_trials":  # a bound of −0.00000… rounds to +0.00, as in the terminal
        assert "| `step:extract` | 100.00% | 100.00% | +0.00 pts | ≤ +0.00 |" in text
