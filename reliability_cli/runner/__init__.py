"""Scheduling, retries and the journal. Emits progress through callbacks; never prints."""

from .run import RunOptions, RunOutcome, prepare, run_eval

__all__ = ["RunOptions", "RunOutcome", "prepare", "run_eval"]
