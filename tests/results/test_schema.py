"""The typed results document: every producer's file loads, validates and writes back unchanged."""

from __future__ import annotations

import json

import pytest

from reliability_cli.errors import ResultsError
from reliability_cli.results import schema
from reliability_cli.runner import RunOptions, run_eval
from tests.helpers import SIX, assert_round_trips


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"trials": 2, "isolate": True, "retries": 1},
        {"shard": (1, 2)},
    ],
    ids=["plain", "trials-isolate-retries", "shard"],
)
def test_eval_results_round_trip(tmp_path, options):
    out = tmp_path / "run"
    outcome = run_eval(str(SIX), RunOptions(out=str(out), limit=60, **options))
    assert assert_round_trips(out / "results.json")
    assert schema.load(out) == outcome.results
    doc = json.loads((out / "results.json").read_text())
    # stored, not re-derived: first-try passes, and per-case counts of the isolated pass with trials
    for row in doc["steps"]:
        assert row["first_try_passed"] == round(row["first_try_rate"] * row["reached"])
        if options.get("trials", 1) > 1:
            assert sum(n for _, n in row["isolated"]["case_counts"].values()) == row["isolated"]["reached"]
    assert doc["run"]["source"] == "eval"
    # keys written only when they apply
    assert ("isolated" in doc["steps"][0]) == bool(options.get("isolate"))
    assert ("pass_at_k" in doc["end_to_end"]) == (options.get("trials", 1) > 1)


def test_merged_and_baseline_gated_results_round_trip(tmp_path, cli):
    for i in (1, 2):
        run_eval(str(SIX), RunOptions(out=str(tmp_path / f"s{i}"), limit=60, shard=(i, 2)))
    code, _, _ = cli("merge", tmp_path / "s1", tmp_path / "s2", "-o", tmp_path / "merged.json", "-q")
    assert code == 0
    assert assert_round_trips(tmp_path / "merged.json")
    assert schema.load(tmp_path / "merged.json").run.source == "merge"
    outcome = run_eval(str(SIX), RunOptions(out=str(tmp_path / "cand"), limit=60))
    from reliability_cli.results.schema import GateOverrides

    gated = run_eval(
        str(SIX),
        RunOptions(
            out=str(tmp_path / "gated"),
            limit=60,
            gate_overrides=GateOverrides(baseline_path=str(tmp_path / "merged.json")),
        ),
    )
    assert assert_round_trips(tmp_path / "gated" / "results.json")
    assert any(g.p_value is not None for g in gated.results.gates)  # baseline gates keep their test figures
    assert outcome.results.run.source == "eval"


def test_a_wrong_type_names_the_key(tmp_path):
    out = tmp_path / "run"
    run_eval(str(SIX), RunOptions(out=str(out), limit=5))
    doc = json.loads((out / "results.json").read_text())
    doc["steps"][2]["reached"] = "many"
    (out / "results.json").write_text(json.dumps(doc))
    with pytest.raises(ResultsError) as exc:
        schema.load(out)
    assert "steps.2.reached" in str(exc.value)


def test_stop_reason_is_packed_in_one_place():
    stop = schema.Stop("endpoint_rejected", "llm", "http_401")
    assert str(stop) == "endpoint_rejected:llm:http_401"
    assert schema.Stop.parse(str(stop)) == stop
    assert schema.Stop.parse("max_cost") == schema.Stop("max_cost")
    assert schema.Stop.parse(None) is None


def test_a_units_line_is_what_json_dumps_writes_for_every_kind_of_value():
    """``results.json``'s unit lines come from a template (speed); they must equal the
    encoder's, for odd strings and for values of unexpected types (which take the encoder)."""
    import dataclasses

    odd = [
        "plain",
        'quote " and \\ back',
        "line\nbreak\ttab",
        "\x00\x1f\x7f",
        "ünï ☃ 𝄞",
        "\ud800 lone",
        "\u2028\u2029",
        "",
    ]
    units = []
    for i, text in enumerate(odd):
        units.append(schema.UnitRecord(text, i, i % 2 == 0, None if i % 2 else text, "error", text or None, i + 1, i))
        units.append(schema.UnitRecord(text, 0, False, text, text, None, 1, 10**20 + i))
    units.append(schema.UnitRecord("bool", True, True, None, "pass", None, 1, 0))  # type: ignore[arg-type]
    for u in units:
        values = dataclasses.asdict(u)
        expected = json.dumps(values, ensure_ascii=False)
        assert schema.unit_line(u) == expected
        assert list(json.loads(expected)) == list(schema.UNIT_KEYS)
