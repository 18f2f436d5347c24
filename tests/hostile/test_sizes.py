"""Reply size caps on both transports: a gzip bomb and an endless chunked body end the attempt
as ``too_large`` (issue 10, item 12), in a relcheck process whose memory is capped so that a
regression fails the test instead of exhausting the machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ..endpoints.helpers import always, attempts, completion, raw_server, run, write_pipeline
from .servers import bomb_server, endless_server, gzip_bomb, limited_relcheck

TRANSPORTS = ["aiohttp", "httpx"]


def _pipeline(tmp_path: Path, url: str, **endpoint: Any) -> Path:
    return write_pipeline(
        tmp_path,
        {
            "name": "sizes",
            "endpoints": {"llm": {"type": "openai", "base_url": url, "model": "m", "timeout_s": 30, **endpoint}},
            "steps": [
                {
                    "id": "answer",
                    "endpoint": "llm",
                    "prompt": "{{ vars.q }}",
                    "checks": [{"type": "contains", "value": "a"}],
                    "retry": {"max_attempts": 2, "on": ["error"], "backoff": {"initial_s": 0, "max_s": 0}},
                }
            ],
        },
        [{"id": "c0", "vars": {"q": "q"}}],
    )


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb(2048)  # 2 GiB decoded, about 2 MiB sent


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("server", ["gzip_bomb", "endless_chunked"])
def test_hostile_body_is_too_large_under_a_memory_limit(tmp_path, bomb, transport, server):
    handler = bomb_server(bomb) if server == "gzip_bomb" else endless_server()
    with raw_server(handler) as url:
        proc = limited_relcheck(
            "eval",
            _pipeline(tmp_path, url),
            "--out",
            tmp_path / "run",
            "--no-progress",
            env={"RELCHECK_HTTP_TRANSPORT": transport},
        )
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr, proc.stderr
    assert proc.returncode == 3, proc.stderr  # every unit ended in an infrastructure error
    (only,) = attempts(tmp_path / "run")  # too_large is not retried, though retry.on has error
    assert only["error_kind"] == "too_large", only
    assert "max_response_bytes (10 MiB)" in only["reason"]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["units"][0]["error_kind"] == "too_large"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_max_response_bytes_is_per_endpoint_and_counts_decoded_bytes(tmp_path, monkeypatch, transport):
    import gzip

    monkeypatch.setenv("RELCHECK_HTTP_TRANSPORT", transport)
    text = "a" * 3000
    body = gzip.compress(json.dumps(completion(text)).encode())  # ~100 bytes sent, ~3.1 KB decoded
    assert len(body) < 2048
    with raw_server(always(200, body, {"content-encoding": "gzip"})) as url:
        run(_pipeline(tmp_path / "small", url, max_response_bytes=2048), tmp_path / "small" / "run")
        run(_pipeline(tmp_path / "big", url, max_response_bytes=4096), tmp_path / "big" / "run")
    (small,) = attempts(tmp_path / "small" / "run")
    assert small["error_kind"] == "too_large" and "(2 KiB) once decoded" in small["reason"]
    (big,) = attempts(tmp_path / "big" / "run")
    assert big["outcome"] == "pass"


def test_max_response_bytes_is_validated_and_in_the_schema(tmp_path, cli):
    path = _pipeline(tmp_path, "http://127.0.0.1:9", max_response_bytes=10)
    code, _, err = cli("validate", path)
    assert code == 2 and "max_response_bytes" in err
    code, out, _ = cli("schema")
    assert code == 0 and "max_response_bytes" in out


def test_unsupported_content_encoding_is_a_parse_error(tmp_path):
    with raw_server(always(200, b"\x00\x01garbage", {"content-encoding": "br"})) as url:
        run(_pipeline(tmp_path, url), tmp_path / "run")
    first = attempts(tmp_path / "run")[0]
    assert first["error_kind"] == "parse" and "content-encoding" in first["reason"]
