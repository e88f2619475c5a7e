"""The dev stack's payload codec key: made once in the data dir (owner-only), the same on
every start and for every child, and never in place of the operator's own setting."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cli.dev_stack import CODEC_KEYS_FILE, child_env, dev_codec_keys
from settings import Settings
from tests.conftest import TEST_CODEC_KEYS
from workflows.codec import CodecKeysInvalid, parse_keyring


def test_a_dev_key_is_made_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = child_env(settings, {})["FLEETPIPE_CODEC_KEYS"]
    ring = parse_keyring(first)
    assert ring.configured and ring.current[0] == "dev-1"
    path = tmp_path / CODEC_KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dev_codec_keys(Settings(data_dir=tmp_path)) == first  # the next start: the same key


def test_the_operators_keys_win_and_no_file_is_made(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, codec_keys=TEST_CODEC_KEYS)
    assert child_env(settings, {})["FLEETPIPE_CODEC_KEYS"] == TEST_CODEC_KEYS
    assert not (tmp_path / CODEC_KEYS_FILE).exists()


def test_a_damaged_key_file_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / CODEC_KEYS_FILE
    path.write_text("dev-1:not-a-key\n")
    with pytest.raises(CodecKeysInvalid, match=str(path)):
        dev_codec_keys(Settings(data_dir=tmp_path))
    assert path.read_text() == "dev-1:not-a-key\n"
