"""``Attempt.line`` spells its fields out (it runs once per attempt): it must stay the journal
line of every field but ``context``, in declaration order, ``cached`` only when true."""

import dataclasses

from reliability_cli.runner.engine import Attempt


def test_the_line_holds_every_journaled_field_in_order_with_its_value():
    values = {}
    for number, f in enumerate(dataclasses.fields(Attempt)):
        if f.name == "context":
            values[f.name] = {"json": None}
        elif f.name == "cached":
            values[f.name] = True
        else:  # a distinct value per field, so that a swapped pair shows
            values[f.name] = f"v{number}"
    attempt = Attempt(**values)
    line = attempt.line()
    assert tuple(line) == Attempt.JOURNALED == tuple(f.name for f in dataclasses.fields(Attempt) if f.name != "context")
    assert line == {name: values[name] for name in Attempt.JOURNALED}


def test_cached_is_written_only_when_true():
    plain = Attempt("c1", 1, "answer", 1, "chained", "pass")
    assert "cached" not in plain.line()
    assert tuple(plain.line()) == Attempt.JOURNALED[:-1]
