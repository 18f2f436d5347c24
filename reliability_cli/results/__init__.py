"""The results of a run, and everything derived from them.

- :mod:`.schema` — the typed ``results.json`` document (``Results`` and its rows), ``load``, ``write``;
- :mod:`.units` — the one derivation of "which step did this unit reach" and per-case shares;
- :mod:`.analysis` — journal → ``Results``;
- :mod:`.gates` — ``Results`` + gate settings → verdicts and the exit code;
- :mod:`.compare` — two ``Results`` paired unit by unit;
- :mod:`.merge` — shard ``Results`` → the run they split;
- :mod:`.planning` — the cheapest retry budget that reaches a target.

This package reads journals and results; it never calls an endpoint or the runner.
"""
