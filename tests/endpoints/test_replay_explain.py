"""Replay that explains itself: a miss names the closest recording and the first field that
differs; ``--replay OLD --record NEW`` brings a cassette up to date after a prompt change."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from reliability_cli.endpoints.cassette import first_difference

from .helpers import Counter, attempts, free_port, run, write_pipeline

N = 4
DRAFT = "Draft for {{ vars.q }}\nREPLY: {{ vars.answer }}"
FINAL = "Polish: {{ steps.draft.output }}\nREPLY: {{ steps.draft.output }}"
EDITED = "Polish, kindly: {{ steps.draft.output }}\nREPLY: {{ steps.draft.output }}"


def _pipeline(directory: Path, final_prompt: str) -> Path:
    pipeline = {
        "name": "rx",
        "endpoints": {
            "llm": {"type": "openai", "base_url": "${RX_URL}", "model": "m", "timeout_s": 5, "api_key_env": "RX_KEY"}
        },
        "steps": [
            {
                "id": "draft",
                "endpoint": "llm",
                "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": DRAFT}],
                "checks": [{"type": "equals", "value": "{{ expect.draft }}"}],
            },
            {
                "id": "final",
                "endpoint": "llm",
                "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": final_prompt}],
                "checks": [{"type": "contains", "value": "{{ expect.draft }}"}],
            },
        ],
    }
    cases = [
        {
            "id": f"c{i}",
            "vars": {"q": f"q{i}", "answer": f"d{i}"},
            "expect": {"draft": ("WRONG" if i == 0 else "") + f"d{i}"},
        }
        for i in range(N)
    ]
    return write_pipeline(directory, pipeline, cases)


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Counter, str]:
    from .helpers import raw_server

    counter = Counter()
    monkeypatch.setenv("RX_KEY", "sk-rx-secret-value-123")
    with raw_server(counter.handler()) as url:
        monkeypatch.setenv("RX_URL", url)
        run(_pipeline(tmp_path / "p", FINAL), tmp_path / "r0", record=str(tmp_path / "old.jsonl"))
        assert counter.take() == 2 * N - 1
        yield tmp_path, counter, url


def test_a_miss_names_the_first_differing_field(
    recorded: tuple[Path, Counter, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path, counter, _ = recorded
    monkeypatch.setenv("RX_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens: replay only
    monkeypatch.delenv("RX_KEY")
    results = run(_pipeline(tmp_path / "p", EDITED), tmp_path / "r1", replay=str(tmp_path / "old.jsonl"))
    misses = [a for a in attempts(tmp_path / "r1") if a["error_kind"] == "replay_miss"]
    assert len(misses) == N - 1 and {m["step"] for m in misses} == {"final"}
    at = len(os.path.commonprefix(["Polish: d1", "Polish, kindly: d1"]))
    assert at == 6
    reason = next(m["reason"] for m in misses if m["case"] == "c1")
    assert reason.startswith(f"step final, attempt 1: messages[1].content differs at char {at} ")
    assert '(", kindly: d1\\nREP…" vs recorded ": d1\\nREPLY: d1")' in reason
    assert "case c1, trial 1" in reason
    assert results["exit_code"] == 3 and counter.take() == 0


def test_replay_old_record_new_updates_the_cassette(
    recorded: tuple[Path, Counter, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path, counter, _ = recorded
    edited = _pipeline(tmp_path / "p", EDITED)
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    updated = run(edited, tmp_path / "r1", replay=str(old), record=str(new))
    assert counter.take() == N - 1  # only the misses were sent
    assert updated["exit_code"] == 0 and not any(a["error_kind"] for a in attempts(tmp_path / "r1"))
    lines = [json.loads(x) for x in new.read_text().splitlines()][1:]
    assert len(lines) == 2 * N - 1  # hits copied, misses recorded: a complete cassette
    assert "sk-rx-secret-value-123" not in new.read_text()
    finals = [x for x in lines if x["step"] == "final"]
    assert all("kindly" in x["body"]["messages"][1]["content"] for x in finals)
    # the new cassette replays the edited pipeline offline, with no key
    monkeypatch.setenv("RX_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("RX_KEY")
    again = run(edited, tmp_path / "r2", replay=str(new))
    assert again["exit_code"] == 0 and counter.take() == 0
    assert again["end_to_end"] == updated["end_to_end"]


def test_a_step_never_recorded_is_named(recorded: tuple[Path, Counter, str], monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path, _, _ = recorded
    monkeypatch.setenv("RX_URL", f"http://127.0.0.1:{free_port()}")
    results = run(_pipeline(tmp_path / "p", FINAL), tmp_path / "r1", replay=str(tmp_path / "old.jsonl"), trials=2)
    reasons = {
        a["case"]: a["reason"]
        for a in attempts(tmp_path / "r1")
        if a["error_kind"] == "replay_miss" and a["trial"] == 2
    }
    assert sorted(reasons) == [f"c{i}" for i in range(N)]
    assert reasons["c2"] == (
        "step draft, attempt 1: old.jsonl has this request for case c2, trial 1, not for "
        "case c2, trial 2 (recorded with fewer trials or other cases?)"
    )
    assert results["exit_code"] == 3


@pytest.mark.parametrize(
    ("sent", "recorded", "expected"),
    [
        ({"a": "xyz"}, {"a": "xyz"}, None),
        (
            {"messages": [{"content": "hello"}, {"content": "abcdef"}]},
            {"messages": [{"content": "hello"}, {"content": "abXdef"}]},
            'messages[1].content differs at char 2 ("cdef" vs recorded "Xdef")',
        ),
        ({"model": "m", "t": 1}, {"model": "m"}, "t is sent but was not recorded"),
        ({"model": "m"}, {"model": "m", "t": 1}, "t was recorded but is not sent"),
        ({"m": [1, 2]}, {"m": [1]}, "m has 2 items, the recording 1"),
        ({"t": 0.5}, {"t": 0.7}, "t is 0.5, recorded 0.7"),
        ({"t": 1}, {"t": True}, "t is 1, recorded true"),
    ],
)
def test_first_difference(sent: Any, recorded: Any, expected: str | None) -> None:
    assert first_difference(sent, recorded) == expected
