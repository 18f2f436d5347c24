"""`relcheck merge` with a shard missing names it and the files given (#11); `-q` names the merge."""

from __future__ import annotations

from .helpers import run, write_pipeline


def test_merge_with_missing_shards_names_them_and_the_files(tmp_path, cli):
    path = write_pipeline(tmp_path / "p", [("a", 0.1, "wrong")], 40)
    files = []
    for i in (1, 3):
        run(path, tmp_path / f"s{i}", shard=(i, 4))
        files.append(tmp_path / f"s{i}" / "results.json")
    code, out, err = cli("merge", *files, "-o", tmp_path / "m.json", "-q")
    assert code == 3, err
    assert "missing shards 2/4, 4/4" in err
    assert f"given: {files[0]} (shard 1/4), {files[1]} (shard 3/4)" in err
    assert "None" not in out and "run merged from 2 shards" in out, out


def test_quiet_merge_of_every_shard_names_no_none(tmp_path, cli):
    path = write_pipeline(tmp_path / "p", [("a", 0.1, "wrong")], 20)
    files = []
    for i in (1, 2):
        run(path, tmp_path / f"s{i}", shard=(i, 2))
        files.append(tmp_path / f"s{i}")
    code, out, err = cli("merge", *files, "-o", tmp_path / "m.json", "-q")
    assert code == 0, err
    assert "missing" not in err and "None" not in out and "run merged from 2 shards" in out
