"""CSV eval sets are streamed: same cases, locations, hashes and errors as a whole-file read."""

from __future__ import annotations

import hashlib
import io
import random
import tracemalloc

import pytest

from reliability_cli.config import load_evalsets
from reliability_cli.config.evalset import _csv_rows, iter_evalsets
from reliability_cli.errors import EvalSetError, Location

HEADER = "id,tags,vars.q,expect.a"


def _write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _summary(path):
    es = load_evalsets([path])
    return [(c.id, c.tags, dict(c.vars), dict(c.expect), c.location.line) for c in es.cases], es.hashes


def _whole_file(path):
    """What the loader did before CSV was streamed: decode everything, parse one string."""
    text = path.read_bytes().decode("utf-8-sig")
    return [(row, loc.line) for row, loc in _csv_rows(io.StringIO(text, newline=""), str(path))]


FILES = {
    "plain": (
        f"{HEADER}\nc1,x;y,hello,hello\nc2,,bye,bye\n".encode(),
        [("c1", ("x", "y"), {"q": "hello"}, {"a": "hello"}, 2), ("c2", (), {"q": "bye"}, {"a": "bye"}, 3)],
    ),
    "bom": (
        b"\xef\xbb\xbf" + f"{HEADER}\nc1,x,h\xe9llo,\xe9\n".encode(),
        [("c1", ("x",), {"q": "h\xe9llo"}, {"a": "\xe9"}, 2)],
    ),
    "crlf": (
        f"{HEADER}\r\nc1,,a,b\r\n\r\nc2,t,c,d\r\n".encode(),
        [("c1", (), {"q": "a"}, {"a": "b"}, 2), ("c2", ("t",), {"q": "c"}, {"a": "d"}, 4)],
    ),
    "multiline": (
        f'{HEADER}\nc1,,"line one\nline two\r\nline, three",x\nc2,,"say ""hi""",y\n'.encode(),
        [
            ("c1", (), {"q": "line one\nline two\r\nline, three"}, {"a": "x"}, 2),
            ("c2", (), {"q": 'say "hi"'}, {"a": "y"}, 5),
        ],
    ),
    "bom_crlf_multiline_no_final_newline": (
        b"\xef\xbb\xbf" + f'{HEADER}\r\nc1,,"a\r\nb",x\r\nc2,,z,y'.encode(),
        [("c1", (), {"q": "a\r\nb"}, {"a": "x"}, 2), ("c2", (), {"q": "z"}, {"a": "y"}, 4)],
    ),
    "lone_cr": (
        f'{HEADER}\rc1,,"a\rb",x\rc2,,z,y\r'.encode(),
        [("c1", (), {"q": "a\rb"}, {"a": "x"}, 2), ("c2", (), {"q": "z"}, {"a": "y"}, 4)],
    ),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_csv_stream_same_cases_and_hash(tmp_path, name):
    data, expected = FILES[name]
    path = _write(tmp_path, f"{name}.csv", data)
    cases, hashes = _summary(path)
    assert cases == expected
    assert hashes == {str(path): hashlib.sha256(data).hexdigest()}
    streamed = [(row, loc.line) for row, loc in _csv_rows(iter(_lines_of(path)), str(path))]
    assert streamed == _whole_file(path)


def _lines_of(path):
    from reliability_cli.config.evalset import _text_lines

    with open(path, "rb") as fh:
        yield from _text_lines(fh, str(path), hashlib.sha256())


def test_csv_stream_matches_whole_file_on_random_files(tmp_path):
    """Line endings (\\n, \\r\\n, lone \\r), quoted fields across lines, BOM: rows and lines agree."""
    rng = random.Random(20240611)
    bits = ["a", "\xe9", " ", ",", '"', "\n", "\r", "\r\n", "\u2028", "\x85", "\x0c", ";"]
    for i in range(300):
        newline = rng.choice(["\n", "\r\n", "\r"])
        rows = ["id,tags,vars.q"]
        for j in range(rng.randint(1, 5)):
            value = "".join(rng.choice(bits) for _ in range(rng.randint(0, 6)))
            rows.append(f'c{j},,"{value.replace(chr(34), chr(34) * 2)}"')
        text = rng.choice(["", "\ufeff"]) + newline.join(rows) + rng.choice(["", newline, newline * 2])
        data = text.encode()
        path = _write(tmp_path, f"r{i}.csv", data)
        assert [(r, loc.line) for r, loc in _csv_rows(_lines_of(path), str(path))] == _whole_file(path), data
        hashes: dict[str, str] = {}
        assert len(list(iter_evalsets([path], None, hashes))) == len(rows) - 1
        assert hashes[str(path)] == hashlib.sha256(data).hexdigest()


def _error(path) -> EvalSetError:
    with pytest.raises(EvalSetError) as exc:
        load_evalsets([path])
    return exc.value


def test_csv_not_utf8_on_line_3(tmp_path):
    path = _write(tmp_path, "bad.csv", b"id,vars.q\nc1,ok\nc2,b\xffd\nc3,x\n")
    err = _error(path)
    assert err.message == "not UTF-8 text (byte 0xff)"
    assert err.location == Location(str(path), 3)
    assert str(err) == f"{path}:3: not UTF-8 text (byte 0xff)"


def test_csv_not_utf8_after_a_multiline_field_names_the_physical_line(tmp_path):
    path = _write(tmp_path, "bad.csv", b'id,vars.q\nc1,"two\nlines"\nc2,\xc3(\n')
    err = _error(path)
    assert err.message == "not UTF-8 text (byte 0xc3)" and err.location == Location(str(path), 4)


def test_csv_not_utf8_after_a_bom_shows_the_bad_byte(tmp_path):
    path = _write(tmp_path, "bad.csv", b"\xef\xbb\xbfid,vars.q\nc1,ok\nc2,\xfe\n")
    err = _error(path)
    assert err.message == "not UTF-8 text (byte 0xfe)" and err.location == Location(str(path), 3)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xef\xbb\xbf", b"id,vars.q\n", b"id,vars.q\n\n  ,  \n"],
    ids=["empty", "bom-only", "header-only", "blank-rows"],
)
def test_csv_without_cases_is_empty(tmp_path, data):
    path = _write(tmp_path, "e.csv", data)
    err = _error(path)
    assert err.message == "the eval set is empty: no cases" and err.location == Location(str(path))


def test_csv_header_errors_keep_their_place(tmp_path):
    path = _write(tmp_path, "h.csv", b"id,question\nc1,x\n")
    err = _error(path)
    assert err.message == "unknown CSV column 'question'"
    assert err.location == Location(str(path), 1, None, "question")
    assert err.hint == "columns are id, tags, vars.<name>, expect.<step>"
    path = _write(tmp_path, "n.csv", b"vars.q\nx\n")
    err = _error(path)
    assert err.message == "the CSV has no 'id' column" and err.location == Location(str(path), 1)


def test_csv_ragged_row_after_multiline_field_names_its_first_line(tmp_path):
    path = _write(tmp_path, "r.csv", b'id,vars.q\r\nc1,"a\r\nb\r\nc"\r\nc2,x,y\r\n')
    err = _error(path)
    assert err.message == "row has 3 fields, the header has 2" and err.location == Location(str(path), 5)


def test_large_csv_is_streamed(tmp_path):
    """50,000 rows: peak traced memory while reading every case stays far below the file's size."""
    rows = 50_000
    data = b"id\n" + b"".join(b"case-%06d-%s\n" % (i, b"x" * 200) for i in range(rows))  # few objects a row
    path = _write(tmp_path, "big.csv", data)
    load_evalsets([_write(tmp_path, "warm.csv", b"id\nc\n")])  # first-use imports are not the file's
    hashes: dict[str, str] = {}
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_evalsets([path], None, hashes, unique=False))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows
    assert hashes == {str(path): hashlib.sha256(data).hexdigest()}
    assert len(data) > 10_000_000
    assert peak < len(data) / 20, f"peak {peak:,} bytes for a {len(data):,}-byte file"
