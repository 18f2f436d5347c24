"""Checks: promptfoo-compatible assertions that judge one attempt's output.

``run_check(spec, inp)`` judges a rendered check mapping against a :class:`CheckInput` and
returns a :class:`Verdict`; ``validate_spec(spec)`` lists a check mapping's problems before
anything runs; :data:`REGISTRY` holds every type (see :mod:`.registry`).
"""

from ..records import ToolCall
from ._common import parse_json_output
from .base import CheckCodeError, CheckInput, Verdict, normalize
from .registry import ALL_KEYS, REGISTRY, get, run_check, validate_spec

__all__ = [
    "ALL_KEYS",
    "REGISTRY",
    "CheckCodeError",
    "CheckInput",
    "ToolCall",
    "Verdict",
    "get",
    "normalize",
    "parse_json_output",
    "run_check",
    "validate_spec",
]
