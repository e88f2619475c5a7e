"""`fleetpipe worker --check` (the worker container's healthcheck) and the start-up refusal of
a store not at head by the worker and the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app
from settings import Settings, get_settings
from store.db import make_engine
from store.migrations import StoreNotAtHead, upgrade
from worker import serve


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'fleetpipe.db'}"
    monkeypatch.setenv("FLEETPIPE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _upgraded(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def _temporal_at(env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETPIPE_TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    get_settings.cache_clear()


def test_check_passes_with_the_store_at_head_and_temporal_up(
    database_url: str, temporal_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upgraded(database_url)
    _temporal_at(temporal_env, monkeypatch)
    result = CliRunner().invoke(app, ["worker", "--check"])
    assert result.exit_code == 0, result.output
    assert "worker ready" in result.output


def test_check_fails_naming_the_upgrade_when_the_store_is_not_at_head(
    database_url: str, temporal_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    _temporal_at(temporal_env, monkeypatch)
    result = CliRunner().invoke(app, ["worker", "--check"])
    assert result.exit_code == 1, result.output
    assert "Run `fleetpipe db upgrade`" in result.output


def test_check_fails_naming_temporal_when_it_does_not_answer(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upgraded(database_url)
    monkeypatch.setenv("FLEETPIPE_TEMPORAL_ADDRESS", "127.0.0.1:1")  # nothing listens there
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["worker", "--check"])
    assert result.exit_code == 1, result.output
    assert "Temporal does not answer at 127.0.0.1:1" in result.output


def test_check_fails_naming_the_store_when_it_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEETPIPE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["worker", "--check"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert "the store at postgresql" in result.output and "does not answer" in result.output


async def test_the_worker_refuses_a_store_not_at_head(database_url: str) -> None:
    with pytest.raises(StoreNotAtHead, match="Run `fleetpipe db upgrade`"):
        await serve(Settings(database_url=database_url, temporal_address="127.0.0.1:1"))


async def test_the_api_refuses_a_store_not_at_head(database_url: str) -> None:
    api = create_app(Settings(database_url=database_url))
    with pytest.raises(StoreNotAtHead, match="Run `fleetpipe db upgrade`"):
        async with api.router.lifespan_context(api):
            pass
