"""The operator's CLI says in one line what is wrong: the API unreachable (naming the URL and
the variable that moves it), a key the API refuses, no key at all, an unknown pipeline; and it
finds the API and key in flags, the environment or the config file, in that order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.cli.operator_stack import Stack, free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_an_unreachable_api_is_named_with_the_setting_that_moves_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = CliRunner().invoke(app, ["runs", "list"], env={
        "FLEETPIPE_API_URL": url, "FLEETPIPE_TOKEN": "fp_x", "XDG_CONFIG_HOME": str(tmp_path)})
    assert result.exit_code == 1
    line, = result.stderr.strip().splitlines()
    assert line.startswith(f"fleetpipe: cannot reach the API at {url} (")
    assert "Set FLEETPIPE_API_URL or pass --api-url" in line


def test_no_key_says_where_one_goes(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["runs", "list"], env={
        "FLEETPIPE_TOKEN": "", "XDG_CONFIG_HOME": str(tmp_path)})
    assert result.exit_code == 1
    assert "no API key: set FLEETPIPE_TOKEN, pass --token" in result.stderr
    assert str(tmp_path / "fleetpipe" / "config.toml") in result.stderr


async def test_a_refused_key_and_an_unknown_pipeline_are_one_line_each(stack: Stack) -> None:
    refused = await stack.cli("runs", "list", env=stack.env(FLEETPIPE_TOKEN="fp_not-a-key"))
    assert refused.exit_code == 1
    line, = refused.stderr.strip().splitlines()
    assert line.startswith("fleetpipe: the API refused the key (401): ")
    unknown = await stack.cli("runs", "start", "nowhere")
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == ("fleetpipe: no pipeline named 'nowhere' (see the API's GET "
                                      "/pipelines, or create it with `fleetpipe apply -f FILE`)")
    assert "Traceback" not in refused.output + unknown.output


async def test_flags_then_environment_then_config_file(stack: Stack, tmp_path: Path) -> None:
    await stack.ok("POST", "/pipelines", {"name": "found"})
    config = stack.home / "fleetpipe" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'api_url = "{stack.url}"\ntoken = "{stack.key}"\n')
    only_file = await stack.cli("runs", "list", "found", "-o", "json",
                                env={"XDG_CONFIG_HOME": str(stack.home), "FLEETPIPE_TOKEN": "",
                                     "FLEETPIPE_API_URL": ""})
    assert only_file.exit_code == 0, only_file.output
    assert json.loads(only_file.stdout) == []

    # The environment wins over the file, and a flag over both.
    wrong = stack.env(FLEETPIPE_TOKEN="fp_wrong")
    from_env = await stack.cli("runs", "list", env=wrong)
    assert from_env.exit_code == 1 and "(401)" in from_env.stderr
    from_flag = await stack.cli("runs", "list", "--token", stack.key, env=wrong)
    assert from_flag.exit_code == 0, from_flag.output
    elsewhere = f"http://127.0.0.1:{free_port()}"
    flag_url = await stack.cli("runs", "list", "--api-url", elsewhere)
    assert flag_url.exit_code == 1 and f"cannot reach the API at {elsewhere}" in flag_url.stderr


def test_shell_completion_is_offered() -> None:
    result = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="fleetpipe",
                                env={"SHELL": "/bin/bash"})
    assert result.exit_code == 0, result.output
    assert "_FLEETPIPE_COMPLETE" in result.stdout
