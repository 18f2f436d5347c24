"""Templates that only look values up are evaluated without jinja2: the text, the value and the
error must be jinja2's own, for every kind of template and context (templating._lookups)."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

import pytest

from reliability_cli.sandbox import MAX_RENDERED
from reliability_cli.templating import RenderError, Template, compile_template


class Sub(dict):  # type: ignore[type-arg]
    def __getitem__(self, key: Any) -> Any:
        return "from the subclass"


class Text(str):
    def __str__(self) -> str:
        return "str() of the subclass"


CONTEXTS: list[dict[str, Any]] = [
    {
        "vars": {"ticket": "Hi {{ 7*7 }}", "n": 3, "none": None, "l": [1, 2], "d": {"k": "v"}, "items": "an item"},
        "expect": {"plan": "P", "0": "zero", 0: "int zero", "items": "the key"},
        "case": {"id": "c1", "tags": ["a"]},
        "steps": {"extract": {"output": "Alice", "text": "Alice", "json": None, "tool_calls": []}},
        "step": {"id": "plan"},
        "trial": 1,
        "attempt": 2,
    },
    {
        "vars": MappingProxyType({"ticket": "proxy"}),
        "expect": Sub(plan="P"),
        "steps": {"extract": {"output": Text("subclass")}},
        "step": {"id": ["unhashable"]},
        "trial": 1,
        "attempt": 1,
    },
    {"vars": {}, "expect": {}, "steps": {}, "step": {"id": "missing"}, "trial": 1, "attempt": 1},
    {"vars": "a string", "expect": [1, 2, 3], "steps": {"extract": "not a mapping"}, "step": {"id": 0}},
]

SOURCES = [
    "{{ vars.ticket }}",
    " {{ vars.ticket }}\n",
    "Find the account of {{ steps.extract.output }}.",
    "{{ expect[step.id] }}",
    "{{ expect['plan'] }}",
    "{{ expect[0] }}",
    "{{ expect['0'] }}",
    "{{ vars.n }}",
    "{{ vars.none }}",
    "{{ vars.l }}",
    "{{ vars.d }}",
    "{{ vars.d.k }}",
    "{{ vars.items }}",
    "{{ vars['items'] }}",
    "{{ expect.items }}",
    "{{ expect['items'] }}",
    "{{ vars.keys }}",
    "{{ vars.get }}",
    "{{ vars.__class__ }}",
    "{{ vars.missing }}",
    "{{ nowhere }}",
    "{{ steps.extract.output }}/{{ steps.extract.text }}",
    "{{ steps.extract.json }}",
    "{{ steps.nope.output }}",
    "{{- vars.ticket -}}  and {# a comment #}{{ step.id }}",
    "{% raw %}{{ vars.ticket }}{% endraw %} {{ vars.ticket }}",
    "{{ vars.ticket }}{% if true %}!{% endif %}",
    "{{ vars.ticket | upper }}",
    "{{ case.tags[0] }}",
    "{{ vars[vars.ticket] }}",
    "{{ trial }}-{{ attempt }}",
]


def _slow(template: Template) -> Template:
    return dataclasses.replace(template, _parts=None, _path=None)


def _outcome(call: Any, context: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", call(context)
    except RenderError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("source", SOURCES)
def test_text_value_and_error_are_jinjas(source: str) -> None:
    fast = compile_template(source)
    slow = _slow(fast)
    for context in CONTEXTS:
        assert _outcome(fast.render, context) == _outcome(slow.render, context), (source, context)
        got, want = _outcome(fast.value, context), _outcome(slow.value, context)
        assert got == want and type(got[1]) is type(want[1]), (source, context)


def test_the_lookups_are_used_where_they_apply() -> None:
    assert compile_template("Find {{ steps.extract.output }}.")._parts == (
        "Find ",
        ("steps", "extract", "output"),
        ".",
    )
    assert compile_template("{{ expect[step.id] }}")._path == ("expect", ("step", "id"))
    for source in ("{{ vars.items }}", "{{ vars.x | upper }}", "{% for x in vars %}{{ x }}{% endfor %}"):
        assert compile_template(source)._parts is None


def test_a_looked_up_text_past_the_bound_is_refused_as_before() -> None:
    context = {"vars": {"big": "x" * (MAX_RENDERED + 1)}}
    for source in ("{{ vars.big }}", "a{{ vars.big }}"):
        with pytest.raises(RenderError, match=f"{MAX_RENDERED:,} characters"):
            compile_template(source).render(context)
    assert compile_template("{{ vars.big }}").value(context) == context["vars"]["big"]
