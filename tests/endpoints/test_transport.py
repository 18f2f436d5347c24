"""The buffered aiohttp transport behind httpx's API, against real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import json
import ssl
import subprocess

import httpx
import pytest

from reliability_cli.endpoints import transport
from reliability_cli.endpoints.transport import AiohttpTransport, make_client, send

from .helpers import always, raw_server

seen: list[tuple[str, dict[str, str], bytes]] = []


def exchange(url: str, kind: str = "aiohttp", n: int = 1, **headers: str) -> list[transport.Exchange]:
    async def go() -> list[transport.Exchange]:
        client = make_client(4, kind)
        try:
            return [
                await send(
                    client,
                    "POST",
                    f"{url}/v1/chat?x=1",
                    headers={"x-test": "1", **headers},
                    params=None,
                    content=b'{"q": "\xc3\xa9"}',
                    deadline_s=5,
                )
                for _ in range(n)
            ]
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_the_default_transport_is_the_buffered_aiohttp_one(monkeypatch):
    monkeypatch.delenv("RELCHECK_HTTP_TRANSPORT", raising=False)

    async def kinds() -> tuple[type, type]:
        default, fallback = make_client(2), make_client(2, "httpx")
        try:
            return type(default.raw_transport), type(fallback.raw_transport)
        finally:
            await default.aclose()
            await fallback.aclose()

    assert asyncio.run(kinds()) == (AiohttpTransport, httpx.AsyncHTTPTransport)


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
def test_request_and_gzip_response_round_trip(kind):
    seen.clear()
    body = json.dumps({"choices": [{"message": {"content": "é ok"}}]}).encode()
    with raw_server(always(200, gzip.compress(body), {"content-encoding": "gzip", "retry-after": "3"}, seen)) as url:
        got = exchange(url, kind, n=3, authorization="Bearer k")
    # three requests on one kept-alive connection pool, each read whole and decoded
    assert [g.body for g in got] == [body] * 3
    assert got[0].status == 200
    assert got[0].headers == {"content-type": "application/json", "retry-after": "3"}
    line, headers, sent = seen[0]
    assert line.startswith("POST /v1/chat?x=1 HTTP/1.1")
    assert sent == b'{"q": "\xc3\xa9"}'
    assert headers["x-test"] == "1" and headers["authorization"] == "Bearer k"
    assert headers["user-agent"] == "relcheck"
    assert headers["content-length"] == str(len(sent))


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
def test_an_error_status_is_an_exchange_not_an_exception(kind):
    with raw_server(always(503, b'{"error": {"message": "busy"}}', {"retry-after-ms": "250"})) as url:
        got = exchange(url, kind)[0]
    assert got.status == 503
    assert got.headers["retry-after-ms"] == "250"
    assert json.loads(got.body)["error"]["message"] == "busy"


def test_plain_http_loads_no_certificates_and_https_still_verifies(tmp_path):
    # Loading a TLS context's roots costs ~0.1 s: a run against http:// endpoints never pays it.
    transport._ssl_context.cache_clear()
    with raw_server(always(200, b"{}", {}, [])) as url:
        assert exchange(url)[0].status == 200
    assert transport._ssl_context.cache_info().currsize == 0
    # A self-signed certificate is not in httpx's (certifi's) roots: the https request fails.
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-days", "1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    with raw_server(always(200, b"{}", {}, []), tls=server_side) as url:
        assert url.startswith("https://")
        with pytest.raises(Exception) as failed:
            exchange(url)
    assert "certificate" in str(failed.value).lower()
    assert transport._ssl_context.cache_info().currsize == 1
