"""Per-step reliability from production traces (``relcheck traces``).

Readers for OTLP JSON (:mod:`.otlp`), LangSmith runs (:mod:`.langsmith`) and Langfuse
observations (:mod:`.langfuse`) yield one normalised :class:`~.records.TraceRecord` each;
:mod:`.steps` names each record's step; :mod:`.spill` groups records by trace on disk;
:mod:`.units` turns a trace into the journal lines of one unit; :mod:`.run` writes the run
directory and builds the results with the same analysis and gates as ``eval``.
"""

from .run import TraceOptions, TraceOutcome, detect_format, read_traces

__all__ = ["TraceOptions", "TraceOutcome", "detect_format", "read_traces"]
