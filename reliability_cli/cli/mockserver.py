"""``relcheck mock-server``: a local OpenAI/Anthropic-compatible server that injects faults."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ..errors import UsageError
from .common import handle_errors


@handle_errors
def mockserver_command(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Loopback address to bind (127.0.0.1 or ::1).", metavar="HOST"
    ),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port; 0 picks a free one.", metavar="PORT"),
    fail_rate: float = typer.Option(
        0.0,
        "--fail-rate",
        min=0,
        max=1,
        help="Share of requests answered 200 with a wrong reply.",
        metavar="RATE",
    ),
    status_rate: str = typer.Option(
        "",
        "--status-rate",
        help="Injected statuses as STATUS=RATE pairs, e.g. 500=0.02,429=0.01.",
        metavar="RATE",
    ),
    retry_after: Optional[float] = typer.Option(
        None,
        "--retry-after",
        min=0,
        help="Seconds sent in Retry-After/retry-after-ms on 429 and 503.",
        metavar="SECONDS",
    ),
    latency_ms: float = typer.Option(0.0, "--latency-ms", min=0, help="Delay before every answer.", metavar="MS"),
    jitter_ms: float = typer.Option(0.0, "--jitter-ms", min=0, help="Latency drawn within ±jitter.", metavar="MS"),
    malformed_rate: float = typer.Option(
        0.0,
        "--malformed-rate",
        min=0,
        max=1,
        help="Share answered 200 with a body that is not JSON.",
        metavar="RATE",
    ),
    drop_rate: float = typer.Option(
        0.0,
        "--drop-rate",
        min=0,
        max=1,
        help="Share whose connection is closed mid-response.",
        metavar="RATE",
    ),
    hang_rate: float = typer.Option(0.0, "--hang-rate", min=0, max=1, help="Share never answered.", metavar="RATE"),
    quota_exhausted: bool = typer.Option(
        False, "--quota-exhausted", help="Answer every request 429 insufficient_quota."
    ),
    seed: int = typer.Option(0, "--seed", help="Seeds every injected fault.", metavar="SEED"),
) -> None:
    """Serve /v1/chat/completions, /v1/messages and /v1/models on loopback, injecting faults.

    Replies are derived from the request: a line "REPLY: <text>" in the last user message is
    answered with exactly <text>; a line "CALL: <tool> <json-args>" in a request that has
    tools (e.g. from tools_from) is answered with that tool call; otherwise the reply is
    "echo: <last user message>". On
    Ctrl-C it prints how many requests got each outcome.
    """
    from ..mockserver import FaultConfig, parse_status_rates, serve

    try:
        config = FaultConfig(
            fail_rate=fail_rate,
            status_rates=parse_status_rates(status_rate),
            retry_after=retry_after,
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            malformed_rate=malformed_rate,
            drop_rate=drop_rate,
            hang_rate=hang_rate,
            seed=seed,
            quota_exhausted=quota_exhausted,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    def ready(base_url: str) -> None:
        sys.stderr.write(
            f"relcheck mock-server listening on {base_url}\n"
            f"  openai:    base_url: {base_url}/v1\n"
            f"  anthropic: base_url: {base_url}\n"
            "  Ctrl-C to stop\n"
        )
        sys.stderr.flush()

    try:
        counts = serve(config, host, port, on_ready=ready)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no requests"
    sys.stderr.write(f"relcheck mock-server stopped: {summary}\n")
