"""The response cache: a local SQLite database of HTTP exchanges, so a re-run pays only for
the requests that changed.

Where: ``.relcheck/cache.sqlite`` under the working directory, or the path in
``RELCHECK_CACHE`` (``RELCHECK_CACHE=off`` turns it off). ``relcheck eval`` uses it by default
for local runs and not when ``CI`` is set (a CI run answers from a committed cassette, or
calls the model: a runner's stale cache would hide a regression); ``RELCHECK_CACHE=PATH``
turns it on in CI too. ``--no-cache`` bypasses it; ``--cache-only`` makes a miss an ``error``
of kind ``cache_miss`` instead of a call. It is never used with ``--record`` or ``--replay``
(a cassette must hold every exchange; a replay is already offline). The HTTP endpoints
(``openai``, ``anthropic``, ``http``) and the tool calls of ``mcp`` endpoints are cached:
``mock`` and ``python`` cost nothing, and a LangGraph node's model calls are the graph's own
code, which relcheck does not intercept.

An MCP tool call's key is the SHA-256 of the endpoint's identity (its ``url`` with
credential-like query values masked, or its ``command`` and the *names* of its ``env``
variables, never their values), the tool, the exact arguments, and the unit and attempt as
above. Only results without ``isError`` are stored (a tool's error is retried live next
time), as JSON, and not when they hold a secret's value (the endpoint's ``env`` and
``headers`` values included, as for cassettes).

The key is the SHA-256 of the endpoint's type, the method, the URL (credentials in the query
masked), the exact JSON body sent, and the unit and attempt (``case``, ``trial``, ``step``,
``attempt``, ``phase``): trials and retries stay independent samples, and editing one step's
prompt changes the key of that step (and, through its output, of the steps after it) only.
Headers are not in the key, and nothing of the request is stored but that hash. Only 2xx
responses are stored (an error is retried live next time), with the allow-listed headers of
:data:`~.cassette.HEADER_ALLOW`; a response body holding the value of a secret (an API key a
server echoes back, any ``${VAR}`` value) is not stored.

Concurrency: WAL mode and a busy timeout, so concurrent runs, shards and resumed runs share
one database; each write is its own short transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Request

if TYPE_CHECKING:  # the transport imports httpx: not for a run of mock or python endpoints only
    from .transport import Exchange

__all__ = [
    "DEFAULT_PATH",
    "ENV",
    "CacheStats",
    "ResponseCache",
    "cache_info",
    "clear_cache",
    "configured_path",
    "open_cache",
    "release",
    "resolve_path",
]

DEFAULT_PATH = Path(".relcheck") / "cache.sqlite"
ENV = "RELCHECK_CACHE"
SCHEMA = 1
_OFF = frozenset({"0", "off", "false", "no", "none"})
_MIN_SECRET = 4

_DDL = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    endpoint_type TEXT NOT NULL,
    host TEXT NOT NULL,
    step TEXT NOT NULL,
    status INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    latency_ms REAL NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def configured_path(environ: Mapping[str, str] | None = None) -> str:
    """The database ``relcheck cache`` reads: ``$RELCHECK_CACHE`` when it names a path, else the default."""
    env = os.environ if environ is None else environ
    value = (env.get(ENV) or "").strip()
    return value if value and value.lower() not in _OFF else str(DEFAULT_PATH)


def resolve_path(
    *, no_cache: bool = False, cache_only: bool = False, environ: Mapping[str, str] | None = None
) -> str | None:
    """The cache ``relcheck eval`` uses, or None for none (see the module docstring).

    Raises:
        UsageError: ``--cache-only`` with the cache turned off.
    """
    from ..errors import UsageError

    env = os.environ if environ is None else environ
    value = (env.get(ENV) or "").strip()
    if no_cache:
        if cache_only:
            raise UsageError("--no-cache and --cache-only cannot be combined")
        return None
    if value.lower() in _OFF:
        if cache_only:
            raise UsageError(
                f"--cache-only: the cache is turned off ({ENV}={value})",
                hint=f"unset {ENV} or set it to the database's path",
            )
        return None
    if value:
        return value
    if _truthy(env.get("CI")) and not cache_only:
        return None
    return str(DEFAULT_PATH)


def _truthy(value: str | None) -> bool:
    return bool(value) and str(value).strip().lower() not in ("0", "false", "no", "")


def _digest(request: Request, **what: Any) -> str:
    """SHA-256 of what was asked (``what``), with the unit and attempt it was asked for (so that
    trials and retries stay independent samples), in canonical JSON."""
    from .cassette import canonical

    k = request.key
    unit = {"case": k.case, "trial": k.trial, "step": k.step, "attempt": k.attempt, "phase": request.phase}
    material = canonical({"v": SCHEMA, **what, **unit})
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stored: int = 0
    refused: int = 0  # a 2xx body (or tool result) holding a secret's value


class ResponseCache:
    """One SQLite connection per process and path, shared by the endpoints of a run."""

    def __init__(self, path: str, secrets: Sequence[str] = (), only: bool = False) -> None:
        self.path = path
        self.only = only
        self.stats = CacheStats()
        self._secrets = [s for s in secrets if len(s) >= _MIN_SECRET]
        self._lock = threading.Lock()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(target)

    @staticmethod
    def key(endpoint_type: str, method: str, url: str, body: Any, request: Request) -> str:
        """The key of one HTTP request (see the module docstring)."""
        from .cassette import safe_url

        return _digest(request, type=endpoint_type, method=method, url=safe_url(url), body=body)

    @staticmethod
    def tool_key(identity: Mapping[str, Any], tool: str, arguments: Any, request: Request) -> str:
        """The key of one MCP tool call (see the module docstring)."""
        return _digest(request, type="mcp", endpoint=identity, tool=tool, arguments=arguments)

    def get_result(self, key: str) -> dict[str, Any] | None:
        """A stored MCP tool result (a hit), or None (a miss)."""
        with self._lock:
            row = self._db.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        if row is not None:
            try:
                result = json.loads(bytes(row[0]).decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                result = None
            if isinstance(result, dict):
                self.stats.hits += 1
                return result
        self.stats.misses += 1
        return None

    def put_result(self, key: str, host: str, step: str, result: Mapping[str, Any], latency_ms: float) -> bool:
        """Store an MCP tool result; False (not stored) for an ``isError`` result or one holding
        a secret's value."""
        if result.get("isError"):
            return False
        body = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        if self._holds_secret(body):
            self.stats.refused += 1
            return False
        self._insert(key, "mcp", host, step, 200, "{}", body.encode("utf-8", "surrogatepass"), latency_ms)
        return True

    def _holds_secret(self, text: str) -> bool:
        return any(s in text or json.dumps(s)[1:-1] in text for s in self._secrets)

    def add_secrets(self, secrets: Sequence[str]) -> None:
        """More values never to store (an MCP endpoint's ``env`` and ``headers``)."""
        for value in secrets:
            if len(value) >= _MIN_SECRET and value not in self._secrets:
                self._secrets.append(value)

    def _insert(
        self, key: str, endpoint_type: str, host: str, step: str, status: int, headers: str, body: bytes, latency: float
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, endpoint_type, host, step, status, headers, body, "
                "latency_ms, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, endpoint_type, host, step, status, headers, body, float(latency), time.time()),
            )
        self.stats.stored += 1

    def get(self, key: str) -> Exchange | None:
        with self._lock:
            row = self._db.execute("SELECT status, headers, body FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        status, headers, body = row
        from .transport import Exchange

        return Exchange(int(status), json.loads(headers), bytes(body), 0.0)

    def put(self, key: str, endpoint_type: str, url: str, step: str, exchange: Exchange) -> bool:
        """Store a 2xx exchange; False (not stored) when its body holds a secret's value."""
        from .cassette import HEADER_ALLOW

        if not 200 <= exchange.status < 300:
            return False
        text = exchange.body.decode("utf-8", "replace")
        if self._holds_secret(text):
            self.stats.refused += 1
            return False
        headers = {k.lower(): v for k, v in exchange.headers.items() if k.lower() in HEADER_ALLOW}
        from urllib.parse import urlsplit

        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            host = ""
        self._insert(
            key,
            endpoint_type,
            host,
            step,
            exchange.status,
            json.dumps(headers),
            exchange.body,
            float(exchange.latency_ms),
        )
        return True

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _connect(path: Path) -> sqlite3.Connection:
    # autocommit (isolation_level=None): every statement is its own short transaction
    db = sqlite3.connect(str(path), timeout=60, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 60000")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never corrupt
    db.executescript(_DDL)
    db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', ?)", (str(SCHEMA),))
    return db


# One cache per database file and process, shared by every endpoint of the run.
_OPEN: dict[str, tuple[ResponseCache, int]] = {}


def open_cache(path: str, secrets: Sequence[str] = (), only: bool = False) -> ResponseCache:
    ident = os.path.abspath(path)
    if ident in _OPEN:
        cache, refs = _OPEN[ident]
        _OPEN[ident] = (cache, refs + 1)
        return cache
    cache = ResponseCache(path, secrets, only)
    _OPEN[ident] = (cache, 1)
    return cache


def release(cache: ResponseCache) -> None:
    for ident, (held, refs) in list(_OPEN.items()):
        if held is cache:
            if refs > 1:
                _OPEN[ident] = (held, refs - 1)
            else:
                del _OPEN[ident]
                held.close()
            return


# ---------------------------------------------------------------------- relcheck cache info|clear


def cache_info(path: str) -> dict[str, Any]:
    """What the database holds: entries, bytes, by endpoint type and host, oldest and newest."""
    p = Path(path)
    info: dict[str, Any] = {
        "path": str(p),
        "exists": p.exists(),
        "entries": 0,
        "bytes": 0,
        "by_endpoint": [],
        "by_step": [],
        "oldest": None,
        "newest": None,
    }
    if not p.exists():
        return info
    info["bytes"] = sum(f.stat().st_size for f in (p, Path(f"{p}-wal"), Path(f"{p}-shm")) if f.exists())
    db = _connect(p)
    try:
        n, oldest, newest = db.execute("SELECT COUNT(*), MIN(created), MAX(created) FROM responses").fetchone()
        info["entries"] = int(n)
        info["oldest"], info["newest"] = _iso(oldest), _iso(newest)
        info["by_endpoint"] = [
            {"type": t, "host": h, "entries": int(c)}
            for t, h, c in db.execute(
                "SELECT endpoint_type, host, COUNT(*) FROM responses GROUP BY endpoint_type, host ORDER BY 3 DESC"
            )
        ]
        info["by_step"] = [
            {"step": s, "entries": int(c)}
            for s, c in db.execute("SELECT step, COUNT(*) FROM responses GROUP BY step ORDER BY 2 DESC")
        ]
    finally:
        db.close()
    return info


def clear_cache(path: str) -> int:
    """Delete every entry (and give the space back); returns how many there were."""
    p = Path(path)
    if not p.exists():
        return 0
    db = _connect(p)
    try:
        (n,) = db.execute("SELECT COUNT(*) FROM responses").fetchone()
        db.execute("DELETE FROM responses")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
    finally:
        db.close()
    return int(n)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")
