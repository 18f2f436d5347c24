"""Environment failures are bad input, not bugs: exit 2, one clear message, no traceback
(issue 10, item 15).

Tests run as root, so ``chmod`` denies nothing: a full disk is ``/dev/full`` (every write
fails with ENOSPC) or a patched write; a path that cannot be created is one under a regular
file; a permission denied is a read-only kernel file (``/sys/kernel/notes``) where it denies
root, else a patched open raising EACCES / EROFS.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from tests.endpoints.helpers import always, completion, raw_server, write_pipeline


def _clean(code: int, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err and err.startswith("relcheck: error: "), err


@pytest.mark.parametrize("flag", ["--json", "--junit", "--markdown", "--html"])
def test_a_report_to_a_full_disk(project: Path, cli, flag: str) -> None:
    code, _, err = cli(
        "eval", project, "--limit", "2", "--out", project.parent / "run", flag, "/dev/full", "--no-progress", "-q"
    )
    _clean(code, err)
    assert "/dev/full: No space left on device (the disk is full)" in err
    assert (project.parent / "run" / "results.json").exists()  # the run itself is saved


def test_record_to_a_full_disk(tmp_path: Path, cli) -> None:
    with raw_server(always(200, completion("hi"))) as url:
        pipeline = {
            "name": "r",
            "endpoints": {"llm": {"type": "openai", "base_url": url + "/v1", "model": "m"}},
            "steps": [{"id": "s", "endpoint": "llm", "prompt": "hi"}],
        }
        path = write_pipeline(tmp_path / "p", pipeline, [{"id": "a", "vars": {}}])
        code, _, err = cli("eval", path, "--out", tmp_path / "run", "--record", "/dev/full", "--no-progress")
    _clean(code, err)
    assert "--record /dev/full: cannot write the cassette: No space left on device" in err


def test_paths_that_cannot_be_created(project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = project.parent / "a-file"
    blocker.write_text("")
    for flags, where in [
        (["--out", blocker / "run"], f"{blocker / 'run'}: Not a directory"),
        (["--out", project.parent / "r1", "--json", blocker / "x.json"], "Not a directory"),
        (["--out", project.parent / "r2", "--markdown", blocker / "m.md"], "Not a directory"),
    ]:
        code, _, err = cli("eval", project, "--limit", "2", *flags, "--no-progress", "-q")
        _clean(code, err)
        assert where in err, err
    # `.relcheck` itself unusable (a file where the directory should be).
    monkeypatch.chdir(project.parent)
    Path(".relcheck").write_text("")
    code, _, err = cli("eval", project, "--limit", "2", "--no-progress", "-q")
    _clean(code, err)
    assert ".relcheck/runs/" in err and "Not a directory" in err


def test_permission_denied_and_read_only(project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    denied = Path("/sys/kernel/notes")
    try:
        with open(denied, "w"):
            pass
        real = False
    except OSError:
        real = True
    if real:
        code, _, err = cli(
            "eval", project, "--limit", "2", "--out", project.parent / "run0", "--html", denied, "--no-progress", "-q"
        )
        _clean(code, err)
        assert f"{denied}: Permission denied" in err
    import pathlib

    original_mkdir = pathlib.Path.mkdir

    def read_only_mkdir(self, *args, **kwargs):
        if self.name == "ro-run":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return original_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only_mkdir)
    code, _, err = cli("eval", project, "--limit", "2", "--out", project.parent / "ro-run", "--no-progress", "-q")
    _clean(code, err)
    assert "ro-run: Read-only file system" in err
    original_open = pathlib.Path.open

    def denied_open(self, mode="r", *args, **kwargs):
        if self.name == "denied.xml" and "w" in mode:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return original_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", denied_open)
    code, _, err = cli(
        "eval",
        project,
        "--limit",
        "2",
        "--out",
        project.parent / "run1",
        "--junit",
        project.parent / "denied.xml",
        "--no-progress",
        "-q",
    )
    _clean(code, err)
    assert "denied.xml: Permission denied" in err


def test_a_full_disk_during_the_run_then_a_resume(project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from reliability_cli import journal

    original = journal.JournalWriter.__init__
    written = {"n": 0}

    class FillingDisk:
        """The journal's file, on a disk that fills up after a dozen lines."""

        def __init__(self, fh) -> None:
            self.fh = fh

        def write(self, data: bytes) -> int:
            written["n"] += 1
            if written["n"] > 12:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.fh.write(data)

        def __getattr__(self, name: str):
            return getattr(self.fh, name)

    def init(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        self._fh = FillingDisk(self._fh)

    monkeypatch.setattr(journal.JournalWriter, "__init__", init)
    run = project.parent / "run"
    code, _, err = cli("eval", project, "--limit", "6", "--out", run, "--no-progress", "-q")
    _clean(code, err)
    assert "attempts.jsonl: cannot write the journal: No space left on device (the disk is full)" in err
    assert f"--resume {run}" in err
    assert not list(run.glob("*.tmp"))
    monkeypatch.setattr(journal.JournalWriter, "__init__", original)  # space freed
    code, _, err = cli("eval", project, "--limit", "6", "--resume", run, "--no-progress", "-q")
    assert code in (0, 1), err
    assert len(json.loads((run / "results.json").read_text())["units"]) == 6


# ---------------------------------------------------------------- malformed cassettes


def _cassette_pipeline(tmp_path: Path) -> Path:
    pipeline = {
        "name": "r",
        "endpoints": {"llm": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}},
        "steps": [{"id": "s", "endpoint": "llm", "prompt": "hi"}],
    }
    return write_pipeline(tmp_path / "p", pipeline, [{"id": "a", "vars": {}}])


GOOD_LINE = {
    "endpoint": "llm",
    "method": "POST",
    "url": "http://x/v1/chat/completions",
    "path": "/v1/chat/completions",
    "body": {},
    "case": "a",
    "trial": 1,
    "step": "s",
    "attempt": 1,
    "status": 200,
    "response_headers": {},
    "response": "{}",
    "latency_ms": 1.0,
    "error": None,
}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"case": None}, "case"),
        ({"status": "two hundred"}, "status"),
        ({"status": 2000}, "status"),
        ({"status": None, "error": None}, "status"),
        ({"latency_ms": float("nan")}, "latency_ms"),
        ({"latency_ms": -5}, "latency_ms"),
        ({"trial": "1"}, "trial"),
        ({"response": 5}, "response"),
    ],
)
def test_malformed_cassette_lines(tmp_path: Path, cli, change: dict, key: str) -> None:
    line = {**GOOD_LINE, **change}
    if change == {"case": None}:
        del line["case"]
    cassette = tmp_path / "c.jsonl"
    cassette.write_text('{"relcheck_cassette": 1}\n' + json.dumps(GOOD_LINE) + "\n" + json.dumps(line) + "\n")
    code, _, err = cli(
        "eval", _cassette_pipeline(tmp_path), "--out", tmp_path / "run", "--replay", cassette, "--no-progress"
    )
    _clean(code, err)
    assert f"--replay {cassette}: line 3: '{key}'" in err, err


# ---------------------------------------------------------------- hand-broken results.json


BREAKS = {
    "truncated": lambda text: text[: len(text) // 2],
    "nan": lambda text: text.replace('"rate": 1.0', '"rate": NaN', 1),
    "steps-not-a-list": lambda text: _edit(text, lambda d: d.update(steps=5)),
    "rate-is-text": lambda text: _edit(text, lambda d: d["steps"][0].update(rate="high")),
    "unit-without-case": lambda text: _edit(text, lambda d: d["units"][0].pop("case")),
    "trial-is-text": lambda text: _edit(text, lambda d: d["units"][1].update(trial="second")),
    "gate-without-name": lambda text: _edit(text, lambda d: d.update(gates=[{"passed": True}])),
    "e2e-not-a-mapping": lambda text: _edit(text, lambda d: d.update(end_to_end=[])),
    "not-utf8": lambda text: text.replace('"verdict"', '"verdict\udcff"'),
}


def _edit(text: str, change) -> str:
    data = json.loads(text)
    change(data)
    return json.dumps(data, indent=2)


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_a_hand_broken_results_file(finished_run: Path, cli, name: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    text = BREAKS[name]((finished_run / "results.json").read_text())
    broken.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert broken.read_bytes() != (finished_run / "results.json").read_bytes()
    for args in (
        ["report", broken],
        ["report", broken, "--format", "html", "-o", tmp_path / "r.html"],
        ["compare", finished_run, broken],
        ["compare", broken, finished_run],
        ["merge", broken, "-o", tmp_path / "m.json"],
        ["plan", broken, "--target", "0.9"],
    ):
        code, _, err = cli(*args)
        _clean(code, err)
        assert str(broken) in err, (args, err)
