"""Bad input a new user hit (#11): an unknown --filter-tag, a misspelt expect.<step> column."""

from __future__ import annotations

import json

from tests.results.helpers import write_pipeline


def _tagged(tmp_path):
    path = write_pipeline(tmp_path / "p", [("classify", 0.0, "wrong")], 4)
    rows = [json.loads(x) for x in (path.parent / "cases.jsonl").read_text().splitlines()]
    for i, row in enumerate(rows):
        row["tags"] = ["smoke"] if i % 2 else ["nightly", "smoke"]
    (path.parent / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_an_unknown_filter_tag_is_bad_input_naming_the_tags_that_exist(tmp_path, cli):
    path = _tagged(tmp_path)
    code, out, err = cli("eval", path, "--filter-tag", "nosuch", "--out", tmp_path / "r", "-q")
    assert code == 2, err
    assert "--filter-tag nosuch: no case has this tag" in err
    assert "the eval set's tags: nightly, smoke" in err and "Traceback" not in err
    assert not (tmp_path / "r" / "results.json").exists()
    # a tag that exists still runs
    code, out, err = cli("eval", path, "--filter-tag", "nightly", "--out", tmp_path / "r2", "-q")
    assert code == 0, err


def test_a_csv_expect_column_naming_no_step_is_an_error_with_did_you_mean(tmp_path, cli):
    path = write_pipeline(tmp_path / "p", [("classify", 0.0, "wrong")], 1)
    csv = tmp_path / "cases.csv"
    csv.write_text("id,vars.x,expect.clasify\nc1,1,classify-1\n")
    for command in ("validate", "eval"):
        code, out, err = (
            cli(command, path, "--evalset", csv, "--out", tmp_path / command, "-q")
            if command == "eval"
            else cli(command, path, "--evalset", csv)
        )
        assert code == 2, (command, err)
        assert f"{csv}:1" in err and "CSV column 'expect.clasify' names no step" in err
        assert "did you mean 'expect.classify'?" in err and "Traceback" not in err
    csv.write_text("id,vars.x,expect.classify\nc1,1,classify-1\n")
    assert cli("validate", path, "--evalset", csv)[0] == 0
