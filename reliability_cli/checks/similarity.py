"""The ``similar`` check: the output is close to ``value`` (a string, or a list of strings).

promptfoo's ``similar`` (``src/assertions/similar.ts``) compares embeddings from a model.
relcheck runs offline with no model, so this score is **lexical, not embedding-based**: two
texts that say the same thing in different words score low. On both texts, after the check's
``normalize`` steps, lower-cased and with runs of whitespace collapsed, the score is the
larger of

- ``difflib.SequenceMatcher(None, a, b).ratio()``: the share of characters in common, in
  order (texts are cut to their first 4,000 characters to bound the cost), and
- the cosine of the two sets of word tokens (``\\w+``): ``|A ∩ B| / sqrt(|A| · |B|)``,
  insensitive to word order.

Both are in 0..1 and equal 1 for identical texts. The check passes when the score reaches
``threshold`` (default 0.8; promptfoo's default for its embedding cosine is 0.75). With a list
``value`` it passes when the output is similar to any of them, as in promptfoo, so
``not-similar`` passes only when the output is dissimilar to every one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ._common import CheckValueError, excerpt, held, js_string, steps_of, subject
from .base import CheckInput, Verdict, normalize

DEFAULT_THRESHOLD = 0.8
_MAX_CHARS = 4000
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")


def similarity(a: str, b: str) -> float:
    """Lexical similarity of two texts in 0..1 (see the module docstring)."""
    a = _SPACE.sub(" ", a.lower()).strip()
    b = _SPACE.sub(" ", b.lower()).strip()
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    from difflib import SequenceMatcher

    ratio = SequenceMatcher(None, a[:_MAX_CHARS], b[:_MAX_CHARS]).ratio()
    words_a, words_b = set(_WORD.findall(a)), set(_WORD.findall(b))
    cosine = 0.0
    if words_a and words_b:
        cosine = len(words_a & words_b) / math.sqrt(len(words_a) * len(words_b))
    return max(ratio, cosine)


def threshold_of(spec: Mapping[str, Any]) -> float:
    """The spec's ``threshold`` (default 0.8), checked to be a number in 0..1."""
    value = spec.get("threshold", DEFAULT_THRESHOLD)
    if value is None:
        return DEFAULT_THRESHOLD
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise CheckValueError(f"similar needs a threshold between 0 and 1, got {excerpt(value)}")
    return float(value)


def similar(spec: Mapping[str, Any], inp: CheckInput) -> Verdict:
    """The output's lexical similarity to ``value`` (or to any item of it) ≥ threshold."""
    threshold = threshold_of(spec)
    value = spec.get("value")
    references = value if isinstance(value, (list, tuple)) else [value]
    if not references or any(v is None or isinstance(v, (Mapping, list)) for v in references):
        raise CheckValueError(f"similar needs a string or a list of strings, got {excerpt(value)}")
    steps = steps_of(spec)
    got = normalize(subject(inp), steps)
    best, best_ref = -1.0, ""
    for ref in references:
        text = normalize(js_string(ref), steps)
        score = similarity(got, text)
        if score > best:
            best, best_ref = score, text
        if score >= threshold:
            return held(f"similarity {score:.2f} ≥ {threshold:g} to {excerpt(text)}")
    return Verdict.fail(f"similarity {best:.2f} < {threshold:g} to {excerpt(best_ref)}: got {excerpt(got)}")
