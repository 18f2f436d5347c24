"""Pipeline and eval set loading: interpolation, scalars, formats, templates as data."""

from __future__ import annotations

import json
import textwrap

import pytest

from reliability_cli.config import load_evalsets, load_pipeline
from reliability_cli.errors import ConfigError
from tests.helpers import journal_text

PIPE = """\
version: 1
name: t
endpoints:
  sim: {type: mock, reply: "{{ vars.q }}", latency_ms: "${LAT:-0}"}
steps:
  - id: a
    endpoint: sim
    prompt: "{{ vars.q }}"
    checks:
      - {type: one-of, value: "{{ expect.options }}"}
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_env_interpolation_with_default(tmp_path):
    p = write(tmp_path, "p.yaml", PIPE)
    assert load_pipeline(p, environ={}).endpoints["sim"].latency_ms == 0
    assert load_pipeline(p, environ={"LAT": "5"}).endpoints["sim"].latency_ms == 5


def test_env_missing_names_place(tmp_path):
    p = write(tmp_path, "p.yaml", PIPE.replace("${LAT:-0}", "${LAT}"))
    with pytest.raises(ConfigError) as exc:
        load_pipeline(p, environ={})
    assert "LAT is not set" in str(exc.value) and f"{p}:4:" in str(exc.value)


def test_yaml_evalset_scalars_stay_as_written(tmp_path):
    p = write(tmp_path, "p.yaml", PIPE)
    e = write(
        tmp_path,
        "cases.yaml",
        """\
        - id: c1
          vars: {q: no, zip: 0123, version: 1.10, n: 42, x: -3, f: 2.5, t: true, z: null, d: 2024-01-02, o: on}
        """,
    )
    case = load_evalsets([e], load_pipeline(p, environ={})).cases[0]
    assert case.vars == {
        "q": "no",
        "zip": "0123",
        "version": "1.10",
        "n": 42,
        "x": -3,
        "f": 2.5,
        "t": True,
        "z": None,
        "d": "2024-01-02",
        "o": "on",
    }


def test_csv_evalset(tmp_path):
    e = write(tmp_path, "c.csv", "id,tags,vars.q,expect.a\nc1,x;y,hello,hello\nc2,,bye,bye\n")
    es = load_evalsets([e])
    assert [c.id for c in es.cases] == ["c1", "c2"]
    assert es.cases[0].tags == ("x", "y") and es.cases[0].vars == {"q": "hello"}
    assert es.cases[0].expect == {"a": "hello"}


def test_duplicate_ids_across_files(tmp_path):
    a = write(tmp_path, "a.jsonl", '{"id": "x"}\n')
    b = write(tmp_path, "b.jsonl", '{"id": "y"}\n{"id": "x"}\n')
    with pytest.raises(Exception) as exc:
        load_evalsets([a, b])
    assert "duplicate case id 'x'" in str(exc.value) and f"{b}:2" in str(exc.value) and f"{a}:1" in str(exc.value)


def test_native_value_and_template_injection_is_data(tmp_path):
    """A check value that is one expression gets a list; `{{ 7*7 }}` in data is sent verbatim."""
    from reliability_cli.runner import RunOptions, run_eval

    p = write(tmp_path, "p.yaml", PIPE)
    rows = [
        {"id": "inj", "vars": {"q": "{{ 7*7 }}"}, "expect": {"options": ["{{ 7*7 }}", "49"]}},
        {"id": "no", "vars": {"q": "49"}, "expect": {"options": ["{{ 7*7 }}"]}},
    ]
    e = write(tmp_path, "c.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    out = run_eval(str(p), RunOptions(evalsets=[str(e)], out=str(tmp_path / "r"), environ={}))
    units = {u["case"]: u for u in out.results.to_dict()["units"]}
    assert units["inj"]["passed"] is True
    assert units["no"]["passed"] is False
    attempts = [json.loads(line) for line in journal_text(tmp_path / "r" / "attempts.jsonl").splitlines()[1:]]
    sent = next(a for a in attempts if a.get("case") == "inj")
    assert sent["output"] == "{{ 7*7 }}"


def test_sandbox_refuses_unsafe_attribute(tmp_path):
    from reliability_cli.runner import RunOptions, run_eval

    p = write(tmp_path, "p.yaml", PIPE.replace('prompt: "{{ vars.q }}"', 'prompt: "{{ vars.__class__.__mro__ }}"'))
    e = write(tmp_path, "c.jsonl", '{"id": "c", "vars": {"q": "x"}, "expect": {"options": ["x"]}}\n')
    out = run_eval(str(p), RunOptions(evalsets=[str(e)], out=str(tmp_path / "r"), environ={}))
    unit = out.results.to_dict()["units"][0]
    assert unit["outcome"] == "error" and unit["error_kind"] == "template"


def test_on_key_is_not_a_boolean(tmp_path):
    p = write(tmp_path, "p.yaml", PIPE + "    retry: {max_attempts: 3, on: [fail]}\n")
    step = load_pipeline(p, environ={}).steps[0]
    assert step.retry.max_attempts == 3 and step.retry.on == frozenset({"fail"})
