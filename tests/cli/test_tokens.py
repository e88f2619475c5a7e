"""`fleetpipe tokens create|list|revoke` on real SQLite files: a key the API's authentication
accepts, listed by id and name, refused once revoked; the store used is named, and a missing
one is never made unless asked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from cli.main import app
from settings import get_settings
from store.audit import list_actions
from store.db import make_engine
from store.definitions.tenants import (
    ensure_enterprise,
    enterprise_for_key,
    find_enterprise,
    list_tokens,
)
from store.migrations import current_revision, head_revision


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'fleetpipe.db'}"
    monkeypatch.setenv("FLEETPIPE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_tokens_create_prints_a_key_the_store_accepts(database_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    first = runner.invoke(app, ["tokens", "create", "--enterprise", "acme"])
    second = runner.invoke(app, ["tokens", "create", "--enterprise", "acme", "--name", "ci"])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    key, other_key = first.stdout.strip(), second.stdout.strip()
    assert key != other_key

    engine = make_engine(database_url)
    try:
        acme = ensure_enterprise(engine, "acme")  # created by the command, found here
        assert enterprise_for_key(engine, key) == acme.id
        assert enterprise_for_key(engine, other_key) == acme.id
        assert enterprise_for_key(engine, key + "x") is None
    finally:
        engine.dispose()


def test_tokens_create_needs_an_enterprise(database_url: str) -> None:
    result = CliRunner().invoke(app, ["tokens", "create"])
    assert result.exit_code != 0


def test_tokens_create_refuses_a_store_not_at_head_naming_the_command(database_url: str) -> None:
    Path(database_url.removeprefix("sqlite:///")).touch()  # a database file without tables
    result = CliRunner().invoke(app, ["tokens", "create", "--enterprise", "acme"])
    assert result.exit_code == 1, result.output
    assert "has no tables yet. Run `fleetpipe db upgrade`" in result.output
    assert "Traceback" not in result.output


def _path(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite:///"))


def test_every_tokens_command_names_its_store(database_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    for argv in (["tokens", "create", "--enterprise", "acme"],
                 ["tokens", "list", "--enterprise", "acme"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output
        assert f"using the store at {database_url}" in result.stderr
        assert database_url not in result.stdout  # the key (or the table) alone on stdout


def test_tokens_create_refuses_to_make_a_store_where_there_is_none(database_url: str) -> None:
    result = CliRunner().invoke(app, ["tokens", "create", "--enterprise", "acme"])
    assert result.exit_code == 1, result.output
    assert f"no store at {_path(database_url)}: the file does not exist" in result.output
    assert "The path is FLEETPIPE_DATABASE_URL's" in result.output
    assert "pass --create" in result.output
    assert "Traceback" not in result.output
    assert not _path(database_url).exists()


def test_the_default_store_missing_from_another_folder_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("FLEETPIPE_DATABASE_URL", raising=False)
    monkeypatch.delenv("FLEETPIPE_DATA_DIR", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        for argv in (["tokens", "create", "--enterprise", "acme"],
                     ["tokens", "list", "--enterprise", "acme"],
                     ["tokens", "revoke", "00000000-0000-0000-0000-000000000000"]):
            result = runner.invoke(app, argv)
            assert result.exit_code == 1, result.output
            assert (f"no store at {elsewhere / '.fleetpipe' / 'fleetpipe.db'}: the file does not "
                    "exist") in result.output
            assert "FLEETPIPE_DATABASE_URL is not set, so it is the default" in result.output
            assert f"in the current folder ({elsewhere})" in result.output
        assert list(elsewhere.iterdir()) == []  # not even the data directory was made

        made = runner.invoke(app, ["tokens", "create", "--enterprise", "acme", "--create"])
        assert made.exit_code == 0, made.output
        assert "making a new store at sqlite:///" in made.stderr
        store = make_engine(get_settings().resolved_database_url())
        try:
            assert current_revision(store) == head_revision()
            assert enterprise_for_key(store, made.stdout.strip()) is not None
        finally:
            store.dispose()
    finally:
        get_settings.cache_clear()


def test_tokens_create_with_create_makes_the_tables_of_an_empty_store(database_url: str) -> None:
    _path(database_url).touch()
    result = CliRunner().invoke(app, ["tokens", "create", "--enterprise", "acme", "--create"])
    assert result.exit_code == 0, result.output
    assert f"made the store's tables (revision {head_revision()})" in result.stderr
    engine = make_engine(database_url)
    try:
        assert enterprise_for_key(engine, result.stdout.strip()) is not None
    finally:
        engine.dispose()


def test_tokens_are_listed_by_id_and_name_and_revoked(database_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    first = runner.invoke(app, ["tokens", "create", "--enterprise", "acme", "--name", "ci"])
    second = runner.invoke(app, ["tokens", "create", "--enterprise", "acme"])
    other = runner.invoke(app, ["tokens", "create", "--enterprise", "globex", "--name", "theirs"])
    keys = [result.stdout.strip() for result in (first, second, other)]

    listed = runner.invoke(app, ["tokens", "list", "--enterprise", "acme"])
    assert listed.exit_code == 0, listed.output
    header, *lines = listed.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "CREATED", "REVOKED"]
    assert len(lines) == 2  # acme's two, not globex's
    ids = [line.split()[0] for line in lines]
    assert [line.split()[1] for line in lines] == ["ci", "-"]  # oldest first
    assert all(line.rstrip().endswith("UTC  -") for line in lines)
    assert not any(key in listed.output for key in keys)  # keys are never shown again

    revoked = runner.invoke(app, ["tokens", "revoke", ids[0]])
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked token {ids[0]} (ci)" in revoked.stdout
    again = runner.invoke(app, ["tokens", "revoke", ids[0]])
    assert again.exit_code == 0, again.output
    assert f"token {ids[0]} (ci) was already revoked at " in again.stdout

    engine = make_engine(database_url)
    try:
        assert enterprise_for_key(engine, keys[0]) is None
        acme = find_enterprise(engine, "acme")
        assert acme is not None and enterprise_for_key(engine, keys[1]) == acme.id
        assert enterprise_for_key(engine, keys[2]) is not None
    finally:
        engine.dispose()

    lines = runner.invoke(app, ["tokens", "list", "--enterprise", "acme"]).stdout.splitlines()[1:]
    assert lines[0].split()[0] == ids[0] and not lines[0].rstrip().endswith("-")
    assert lines[1].rstrip().endswith("UTC  -")


def test_tokens_revoke_and_list_refuse_what_is_not_there(database_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    for argv, words in [
        (["tokens", "revoke", "not-an-id"], "'not-an-id' is not a token id"),
        (["tokens", "revoke", "00000000-0000-0000-0000-000000000000"],
         "no API token with id 00000000-0000-0000-0000-000000000000"),
        (["tokens", "list", "--enterprise", "nope"], "no enterprise named 'nope'"),
    ]:
        result = runner.invoke(app, argv)
        assert result.exit_code == 1, result.output
        assert words in result.output
        assert "Traceback" not in result.output


def test_token_create_and_revoke_are_in_the_audit_trail_as_the_cli(database_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    created = runner.invoke(app, ["tokens", "create", "--enterprise", "acme", "--name", "ci"])
    assert created.exit_code == 0, created.output
    engine = make_engine(database_url)
    try:
        acme = ensure_enterprise(engine, "acme")
        (token,) = list_tokens(engine, acme.id)
        for _ in range(2):  # the second finds it revoked already
            revoked = runner.invoke(app, ["tokens", "revoke", str(token.id)])
            assert revoked.exit_code == 0, revoked.output
        with Session(engine) as session:
            actions = list_actions(session, acme.id).items
        assert [(a.action, a.outcome) for a in actions] == [
            ("token_create", "done"), ("token_revoke", "done"), ("token_revoke", "refused")]
        assert all(a.key_id is None and a.actor == "cli" and a.subject == "api_token"
                   and a.subject_id == token.id and a.pipeline_run_id is None for a in actions)
        assert actions[0].request == {"enterprise": "acme", "name": "ci"}
    finally:
        engine.dispose()
