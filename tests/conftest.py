from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _forget_secrets():
    """Secrets registered by one test's pipeline must not mask another test's output."""
    from reliability_cli import scrub

    scrub.clear()
    yield
    scrub.clear()


@pytest.fixture
def cli():
    """Run relcheck in-process with typer's CliRunner; returns (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from reliability_cli.cli import app

    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        result = runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


@pytest.fixture(scope="session", autouse=True)
def _every_results_file_round_trips(tmp_path_factory):
    """After the suite: every results document any test wrote loads and writes back unchanged."""
    yield
    from tests.helpers import assert_round_trips

    base = tmp_path_factory.getbasetemp()
    for path in base.rglob("*.json"):
        assert_round_trips(path)


@pytest.fixture(autouse=True)
def _no_response_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """``relcheck eval`` caches live responses in ./.relcheck/cache.sqlite by default: tests
    stay independent of each other (and of the checkout) unless a test turns it on."""
    monkeypatch.setenv("RELCHECK_CACHE", "off")
