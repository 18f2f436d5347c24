"""``compare --unpaired``: Newcombe's hybrid score interval, the score test and Holm,
checked against statsmodels."""

from __future__ import annotations

import pytest

from reliability_cli.results.schema import Results
from reliability_cli.results.unpaired import (
    compare_unpaired,
    newcombe_unpaired,
    score_test_two_sided,
)
from tests.helpers import results_from


@pytest.mark.parametrize(
    "x1,n1,x2,n2",
    [(45, 50, 30, 50), (999, 1200, 28, 40), (10, 10, 3, 12), (0, 20, 1, 25), (7, 9, 7, 9), (120, 130, 88, 95)],
)
def test_newcombe_and_score_test_equal_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    lo, hi = newcombe_unpaired(x1, n1, x2, n2, 0.95)
    # statsmodels gives the interval of p1 - p2; ours is of p2 - p1
    slo, shi = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff", alpha=0.05)
    assert (lo, hi) == pytest.approx((-shi, -slo), abs=1e-12)
    if 0 < x1 + x2 < n1 + n2:
        _, p = proportions_ztest([x1, x2], [n1, n2])
        assert score_test_two_sided(x1, n1, x2, n2) == pytest.approx(p, rel=1e-9)
    else:
        assert score_test_two_sided(x1, n1, x2, n2) == 1.0


def _doc(steps: dict[str, tuple[int, int]], e2e: tuple[int, int], trials: int = 1) -> Results:
    return results_from(
        [{"id": k, "passed": p, "reached": n} for k, (p, n) in steps.items()],
        {"passed": e2e[0], "total": e2e[1], "rate": None},
        {"trials": trials, "source": "eval"},
    )


def test_holm_across_steps_equals_statsmodels_and_names_direction() -> None:
    from statsmodels.stats.multitest import multipletests

    base = _doc({"a": (95, 100), "b": (50, 100), "c": (80, 100), "only_base": (1, 1)}, (40, 100))
    cand = _doc({"a": (70, 100), "b": (75, 100), "c": (78, 100), "only_cand": (1, 1)}, (45, 100))
    doc = compare_unpaired(base, cand, max_drop=0.0, alpha=0.05)
    rows = {r.name: r for r in doc.rows}
    raw = [r.p_value for r in doc.rows]
    _, adjusted, _, _ = multipletests(raw, alpha=0.05, method="holm")
    assert [r.p_adjusted for r in doc.rows] == pytest.approx(list(adjusted))
    assert rows["step:a"].estimate == "over" and rows["step:a"].regressed
    assert rows["step:b"].estimate == "under" and not rows["step:b"].regressed
    assert rows["step:c"].estimate == "agrees"
    assert doc.steps_not_compared == ("only_base", "only_cand")
    assert doc.regressed
    # a drop within max_drop is significant but not a regression
    assert not compare_unpaired(base, cand, max_drop=0.3).regressed


def test_repeated_trials_are_refused() -> None:
    from reliability_cli.errors import ResultsError

    with pytest.raises(ResultsError, match="trials"):
        compare_unpaired(_doc({}, (1, 2), trials=3), _doc({}, (1, 2)))


def test_cli_writes_markdown_and_json(cli, tmp_path) -> None:
    import json

    from reliability_cli.results import schema

    base = results_from([{"id": "a", "passed": 95, "reached": 100}], {"passed": 95, "total": 100}, {"source": "eval"})
    cand = results_from([{"id": "a", "passed": 60, "reached": 100}], {"passed": 60, "total": 100}, {"source": "traces"})
    schema.write(base, tmp_path / "b.json")
    schema.write(cand, tmp_path / "c.json")
    code, out, _ = cli(
        "compare",
        tmp_path / "b.json",
        tmp_path / "c.json",
        "--unpaired",
        "--markdown",
        tmp_path / "c.md",
        "--json",
        tmp_path / "c.out.json",
    )
    assert code == 1
    md = (tmp_path / "c.md").read_text()
    assert "| step:a | 95.00% (100) | 60.00% (100) | -35.0 pts |" in md and "eval vs traces" in md
    doc = json.loads((tmp_path / "c.out.json").read_text())
    assert doc["rows"][1]["estimate"] == "over" and doc["regressed"]
