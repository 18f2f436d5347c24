"""Text from cases and models on its way out: files, terminals, CI logs, Markdown.

Case ids, vars and model output are untrusted text. They may hold what no output format can
take as it is, and relcheck's promise is that they are shown, never obeyed:

* **Lone surrogates** (``"\\ud800"``, which JSON allows and UTF-8 cannot encode). In JSON
  files (``results.json``, ``attempts.jsonl``, ``--json``) each is written as its JSON
  escape ``\\ud800``, so the file is valid UTF-8 and reads back to exactly the same string.
  In text outputs (Markdown, HTML, JUnit XML, the terminal) each becomes U+FFFD ``�``.
* **Control characters** (ESC, BEL, CR, backspace …) printed to a terminal: shown as
  ``\\x1b``-style escapes by :func:`terminal`, so an id cannot clear the screen or recolour it.
* **GitHub workflow commands**: a line starting ``::`` in a CI log is a command to the
  runner. :func:`workflow_data` / :func:`workflow_property` escape ``%``, CR and LF (and
  ``:``/``,`` in properties) by GitHub's rules, so a case id holding ``\\n::error::`` stays
  data inside one annotation.
* **HTML in Markdown**: :func:`markdown_cell` escapes ``& < >`` and the table's ``|`` so
  model output in a report cell is text, never markup.
"""

from __future__ import annotations

import codecs
import html
import re

__all__ = [
    "JSON_ERRORS",
    "TEXT_ERRORS",
    "markdown_cell",
    "no_surrogates",
    "terminal",
    "workflow_data",
    "workflow_property",
]

JSON_ERRORS = "relcheck-json-escape"
TEXT_ERRORS = "relcheck-replacement"
_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_escape(exc: UnicodeError) -> tuple[str, int]:
    """Encode error handler for JSON text: a surrogate can only occur inside a JSON string
    (keys and values), where ``\\udXXX`` is exactly its escape."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(f"\\u{ord(ch):04x}" for ch in bad), exc.end


def _replacement(exc: UnicodeError) -> tuple[bytes, int]:
    """Encode error handler for UTF-8 text: U+FFFD, given as its UTF-8 bytes (the UTF-8
    encoder accepts only ASCII text or bytes from a handler)."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return "\ufffd".encode() * (exc.end - exc.start), exc.end


codecs.register_error(JSON_ERRORS, _json_escape)
codecs.register_error(TEXT_ERRORS, _replacement)


def no_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (for text outputs)."""
    return _SURROGATE.sub("\ufffd", text) if not text.isascii() else text


# C0 controls but tab and newline, DEL, C1 controls, and the bidi overrides that reorder text.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_ALL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text: str, *, newlines: bool = True) -> str:
    """``text`` safe to print: control characters as visible escapes (``\\x1b``); lone
    surrogates as U+FFFD. ``newlines=False`` escapes newlines and tabs too (one-line fields)."""
    if text.isascii() and text.isprintable() and "\x7f" not in text:
        return text
    pattern = _CONTROL if newlines else _CONTROL_ALL
    return pattern.sub(_escaped, no_surrogates(text))


def workflow_data(text: str) -> str:
    """The message of a GitHub workflow command (``::error::MESSAGE``), escaped by GitHub's
    rules (``%`` → ``%25``, CR → ``%0D``, LF → ``%0A``) so it stays one command."""
    text = no_surrogates(text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: str) -> str:
    """A property value of a workflow command (``title=…``): also ``:`` and ``,``."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")


def markdown_cell(text: str, *, html_escape: bool = True) -> str:
    """Untrusted text as one Markdown table cell: HTML escaped (``html_escape=False`` inside a
    code span, where HTML is shown as written), ``|`` escaped, control characters and newlines
    shown, not obeyed."""
    text = terminal(text, newlines=False)
    return (html.escape(text, quote=False) if html_escape else text).replace("|", "\\|")
