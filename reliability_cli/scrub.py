"""The one registry of secret values, and the scrubbing every output goes through.

A *secret* is any value that came from an environment variable into a request: the key an
``api_key_env`` names, and every ``${VAR}`` substituted under ``endpoints:`` (``base_url``,
``headers``, ``query``, an ``http`` endpoint's ``url`` and ``json``) or in a step's
``prompt``/``params``. :func:`reliability_cli.config.load_pipeline` and the HTTP endpoints
register them; the few places that write anything — the journal, ``results.json``, report
files, cassettes, the endpoint response boundary and the CLI's error messages — pass their
text through :func:`scrub`, which replaces each value (raw, JSON-escaped and URL-encoded)
with ``***``.

The registry is process-wide: a value registered by one pipeline stays a secret until
:func:`clear` (tests call it between cases). Values shorter than :data:`MIN_LENGTH`
characters are not registered: they would match everywhere and are not credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "MIN_LENGTH", "clear", "contains_secret", "register", "scrub", "scrub_value", "secrets"]

MASK = "***"
MIN_LENGTH = 4

_values: set[str] = set()
_forms: list[str] = []  # every spelling of every value, longest first (so a prefix never masks half)


def register(values: str | Iterable[str | None] | None) -> None:
    """Make ``values`` secrets from now on (``None`` and short values are ignored)."""
    if values is None:
        return
    items = [values] if isinstance(values, str) else list(values)
    added = False
    for value in items:
        if isinstance(value, str) and len(value) >= MIN_LENGTH and value not in _values:
            _values.add(value)
            added = True
    if added:
        forms: set[str] = set()
        for value in _values:
            forms.update(
                {
                    value,
                    json.dumps(value, ensure_ascii=False)[1:-1],
                    json.dumps(value)[1:-1],
                    quote(value, safe=""),
                    quote_plus(value, safe=""),
                }
            )
        _forms[:] = sorted((f for f in forms if len(f) >= MIN_LENGTH), key=len, reverse=True)


def secrets() -> frozenset[str]:
    """The registered values (for tests and for the cassette's refusal check)."""
    return frozenset(_values)


def clear() -> None:
    """Forget every registered value."""
    _values.clear()
    _forms.clear()


def scrub(text: str) -> str:
    """``text`` with every spelling of every secret replaced by ``***``."""
    if not _forms or not text:
        return text
    for form in _forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def contains_secret(text: str) -> bool:
    return any(form in text for form in _forms)


def scrub_value(value: Any) -> Any:
    """A JSON-like value with every string (keys too) scrubbed; other values unchanged."""
    if not _forms:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(scrub_value(v) for v in value)
    return value
