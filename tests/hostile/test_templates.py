"""The template sandbox bounds arithmetic and sizes (issue 10, item 16): neither compiling
(``validate``, where Jinja folds constants) nor rendering (``eval``) can hang or flood memory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reliability_cli.sandbox import MAX_RENDERED, MAX_STR
from reliability_cli.templating import RenderError, compile_template

from ..helpers import ROOT, journal_text

CTX = {"vars": {"x": "abcdefghijklmnop" * 100, "n": 7, "w": 10**9}}

REFUSED = {
    "{{ 7 ** 999999999 > 0 }}": "100,000-bit integers",
    "{{ (vars.x|length) ** 999999999 }}": "100,000-bit integers",
    "{{ ([vars.x]*10**8)|join }}": "100,000 items",
    "{{ ([vars.x]*1000)|join }}": "join result",
    "{{ 'x' * 10**9 }}": "1,000,000 characters",
    "{{ 10**9 * 'x' }}": "1,000,000 characters",
    "{{ (2**60000) * (2**60000) }}": "100,000-bit integers",
    "{{ 'x'|center(10**9) }}": "center(",
    "{{ vars.x|indent(10**7) }}": "indent result",
    "{{ 'x'.ljust(vars.w) }}": "str.ljust(",
    "{{ 'x'.zfill(10**9) }}": "str.zfill(",
    "{{ '%999999999d' % 1 }}": "format width",
    "{{ '%*d' % (10**9, 1) }}": "'*' width",
    "{{ '%999999999d'|format(1) }}": "format width",
    "{{ '{:>999999999}'.format(1) }}": "format width",
    "{{ '{:>{w}}'.format(1, w=vars.w) }}": "format width",
    "{{ vars.x|replace('a', vars.x * 100) }}": "replace result",
    "{{ vars.x.replace('a', vars.x * 100) }}": "replace result",
    "{{ ' '.join([vars.x] * 1000) }}": "str.join result",
    "{{ ([vars.x] * 1000) + ([vars.x] * 99001) }}": "concatenation",
}


@pytest.mark.parametrize("source", sorted(REFUSED))
def test_refused_at_render_as_a_template_error(source):
    template = compile_template(source)  # compiling never evaluates the expression
    with pytest.raises(RenderError, match="refused by the sandbox") as info:
        template.render(CTX)
    assert REFUSED[source] in str(info.value)


def test_rendered_output_is_bounded_as_it_streams():
    """Loops over data cannot produce an unbounded text: rendering stops past MAX_RENDERED."""
    big = "y" * (MAX_STR // 2)
    template = compile_template("{% for a in vars.l %}{% for b in vars.l %}{{ vars.big }}{% endfor %}{% endfor %}")
    with pytest.raises(RenderError, match=f"{MAX_RENDERED:,} characters"):
        template.render({"vars": {"l": list(range(10)), "big": big}})


def test_ordinary_arithmetic_and_formatting_still_work():
    cases = {
        "{{ 2 ** 10 }}": "1024",
        "{{ 'ab' * 3 }}": "ababab",
        "{{ [1, 2] + [3] }}": "[1, 2, 3]",
        "{{ '%05.2f' % 3.14159 }}": "03.14",
        "{{ '{:>5}'.format('a') }}": "    a",
        "{{ 'a'|center(5) }}": "  a  ",
        "{{ 10 % 3 }}": "1",
        "{{ 2.5 ** 2 }}": "6.25",
        "{{ (vars.n * 6) }}": "42",
        "{{ 'ab'|replace('b', 'c') }}": "ac",
        "{{ ['a', 'b']|join('-') }}": "a-b",
        "{{ 'x'|indent(2, first=true) }}": "  x",
        "{{ '{a}-{b}'.format_map({'a': 1, 'b': 2}) }}": "1-2",
    }
    for source, expected in cases.items():
        assert compile_template(source).render(CTX) == expected, source


def test_native_values_are_bounded_too():
    with pytest.raises(RenderError, match="100,000-bit"):
        compile_template("{{ vars.n ** 999999999 }}").value(CTX)
    assert compile_template("{{ vars.n ** 2 }}").value(CTX) == 49


def _pipeline(tmp_path, prompt: str):
    (tmp_path / "cases.jsonl").write_text(json.dumps({"id": "c0", "vars": {"x": "abc"}}) + "\n")
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"""version: 1
name: bombs
evalset: cases.jsonl
endpoints:
  sim: {{type: mock, reply: ok, timeout_s: 1}}
steps:
  - id: a
    endpoint: sim
    prompt: "{prompt}"
""")
    return path


def test_validate_does_not_fold_a_huge_constant(tmp_path):
    """Jinja constant-folds at compile time; intercepted operators are never folded, so
    ``validate`` answers at once (a hang would hit the subprocess timeout)."""
    path = _pipeline(tmp_path, "{{ 7 ** 999999999 > 0 }}")
    proc = subprocess.run(
        [sys.executable, "-m", "reliability_cli", "validate", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_eval_records_a_template_error_instead_of_hanging(tmp_path):
    path = _pipeline(tmp_path, "{{ (vars.x|length) ** 999999999 }}")
    proc = subprocess.run(
        [sys.executable, "-m", "reliability_cli", "eval", str(path), "--out", str(tmp_path / "run"), "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr
    lines = [json.loads(x) for x in journal_text(tmp_path / "run" / "attempts.jsonl").splitlines()]
    attempt = next(x for x in lines if x.get("attempt"))
    assert attempt["error_kind"] == "template" and "100,000-bit" in attempt["reason"]
